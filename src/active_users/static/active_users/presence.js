/* "N here now": one WebSocket per [data-active-users-presence] element, heartbeats while
 * open, reconnects with a growing delay. The socket presents the room token of the element's
 * data-token (signed by the template tag); while open, the server sends fresh ones
 * ("presence.token"), so a page left open can reconnect after its first token expired. Once
 * the newest token is older than its max age, reconnecting stops: the element gets
 * data-expired and the page a "presence.expired" event (reload to rejoin). Each message is
 * also dispatched on document as an "active-users-presence" event (detail = the message). */
(function () {
  "use strict";

  function watch(el) {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var url = scheme + "//" + location.host + el.dataset.url;
    var heartbeat = Math.max(1, parseFloat(el.dataset.heartbeat) || 20) * 1000;
    var token = el.dataset.token;
    var expires = Date.now() + (parseFloat(el.dataset.tokenMaxAge) || 300) * 1000;
    var delay = 1000, timer = null;
    if (!token) { return; }

    function show(count) {
      el.dataset.count = String(count);
      var target = el.querySelector("[data-count]");
      if (target) { target.textContent = String(count); }
    }

    function announce(message) {
      document.dispatchEvent(new CustomEvent("active-users-presence", { detail: message }));
    }

    function open() {
      if (Date.now() > expires) {
        el.dataset.expired = "";
        announce({ type: "presence.expired" });
        return;
      }
      var socket = new WebSocket(url + "?token=" + encodeURIComponent(token));
      socket.onopen = function () {
        delay = 1000;
        timer = setInterval(function () {
          socket.send(JSON.stringify({ type: "heartbeat" }));
        }, heartbeat);
      };
      socket.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        if (message.type === "presence.token") {
          token = message.token;
          expires = Date.now() + message.max_age * 1000;
          return;
        }
        if (typeof message.count === "number") { show(message.count); }
        if (message.users) {
          el.title = message.users.map(function (u) { return u.name || "?"; }).join(", ");
        }
        announce(message);
      };
      socket.onclose = function () {
        clearInterval(timer);
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }

    open();
  }

  document.querySelectorAll("[data-active-users-presence]").forEach(watch);
})();
