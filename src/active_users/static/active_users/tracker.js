/* active_users tracker: reports page views, visibility and heartbeats to the log endpoint.
 * Added by {% active_users_tracker %}, which passes its configuration as data-* attributes:
 * data-endpoint, data-heartbeat (seconds), data-csrf-token. No dependency, no inline script. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.JSON) return;
  var config = script.dataset;
  var endpoint = config.endpoint;
  var heartbeatMs = Math.max(1, parseFloat(config.heartbeat) || 30) * 1000;
  var token = config.csrfToken || "";
  var timer = null;
  var lastPath = null;

  function path() {
    return location.pathname + location.search + location.hash;
  }

  function event(name) {
    return { event: name, date: new Date().toISOString(), path: path(), referer: document.referrer };
  }

  function send(name) {
    var body = JSON.stringify(event(name));
    if (window.fetch) {
      fetch(endpoint, {
        method: "POST", body: body, credentials: "same-origin", keepalive: true,
        headers: { "Content-Type": "application/json", "X-CSRFToken": token }
      }).catch(function () {});
    } else {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", endpoint, true);
      xhr.setRequestHeader("Content-Type", "application/json");
      xhr.setRequestHeader("X-CSRFToken", token);
      xhr.send(body);
    }
  }

  // A beacon survives the page being closed, but cannot carry headers: the CSRF token goes
  // in the form body, as a form post would carry it.
  function beacon(name) {
    var data = event(name);
    var form = new URLSearchParams();
    for (var key in data) form.append(key, data[key]);
    form.append("csrfmiddlewaretoken", token);
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, form))) send(name);
  }

  function pageview() {
    if (path() === lastPath) return;
    lastPath = path();
    send("pageview");
  }

  function startHeartbeats() {
    if (timer === null) timer = setInterval(function () { send("heartbeat"); }, heartbeatMs);
  }

  function stopHeartbeats() {
    if (timer !== null) { clearInterval(timer); timer = null; }
  }

  var hidden = false;
  function onVisibility() {
    if (document.visibilityState === "hidden") {
      if (!hidden) { hidden = true; stopHeartbeats(); beacon("hidden"); }
    } else if (hidden) {
      hidden = false; send("visible"); startHeartbeats();
    }
  }

  // Single-page apps: pushState and replaceState do not fire an event of their own.
  ["pushState", "replaceState"].forEach(function (method) {
    var original = history[method];
    history[method] = function () {
      var result = original.apply(this, arguments);
      pageview();
      return result;
    };
  });
  window.addEventListener("popstate", pageview);
  window.addEventListener("hashchange", pageview);
  document.addEventListener("visibilitychange", onVisibility);
  window.addEventListener("pagehide", function () {
    if (!hidden) { hidden = true; stopHeartbeats(); beacon("hidden"); }
  });

  pageview();
  if (document.visibilityState !== "hidden") startHeartbeats();
  else hidden = true;
})();
