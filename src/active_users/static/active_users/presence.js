/* "N here now": one WebSocket per [data-active-users-presence] element, heartbeats while
 * open, reconnects with a growing delay. Each message is also dispatched on document as an
 * "active-users-presence" event (detail = the message) for richer displays. */
(function () {
  "use strict";

  function watch(el) {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var url = scheme + "//" + location.host + el.dataset.url;
    var heartbeat = Math.max(1, parseFloat(el.dataset.heartbeat) || 20) * 1000;
    var delay = 1000, timer = null;

    function show(count) {
      el.dataset.count = String(count);
      var target = el.querySelector("[data-count]");
      if (target) { target.textContent = String(count); }
    }

    function open() {
      var socket = new WebSocket(url);
      socket.onopen = function () {
        delay = 1000;
        timer = setInterval(function () {
          socket.send(JSON.stringify({ type: "heartbeat" }));
        }, heartbeat);
      };
      socket.onmessage = function (event) {
        var message;
        try { message = JSON.parse(event.data); } catch (e) { return; }
        if (typeof message.count === "number") { show(message.count); }
        if (message.users) {
          el.title = message.users.map(function (u) { return u.name || "?"; }).join(", ");
        }
        document.dispatchEvent(new CustomEvent("active-users-presence", { detail: message }));
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
