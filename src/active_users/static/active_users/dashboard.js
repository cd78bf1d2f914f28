/* The admin dashboard of active_users: polls the admin's JSON views and redraws in place.
 * Charts: uPlot (vendored, MIT). Every text from the server goes in as textContent. */
(function () {
  "use strict";

  var root = document.getElementById("au-dashboard");
  if (!root || !window.uPlot) { return; }
  var cfg = root.dataset;
  var refreshMs = Math.max(1, parseFloat(cfg.refresh) || 5) * 1000;
  var number = new Intl.NumberFormat();
  var compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });
  var state = { range: "1h", cursor: null, next: null, search: "", history: null, days: null,
                lastHistory: 0, lastUniques: 0 };
  var charts = {};

  function $(id) { return document.getElementById(id); }

  function setText(id, value) { $(id).textContent = value; }

  function getJSON(url, params) {
    var query = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      if (params[k] !== null && params[k] !== "") { query.set(k, params[k]); }
    });
    var full = url + (query.toString() ? "?" + query.toString() : "");
    return fetch(full, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          if (!response.ok) {
            throw new Error(body.error || ("HTTP " + response.status));
          }
          return body;
        });
      });
  }

  function status(message, isError) {
    var el = $("au-status");
    el.textContent = message;
    el.classList.toggle("au-error", !!isError);
  }

  function css(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function palette() {
    return {
      fg: css("--body-fg", "#333"),
      grid: css("--hairline-color", "#e8e8e8"),
      users: css("--primary", "#79aec8"),
      visitors: "#e69f00",
      sessions: css("--body-quiet-color", "#666"),
    };
  }

  function axis(colors, values) {
    return { stroke: colors.fg, grid: { stroke: colors.grid, width: 1 },
             ticks: { stroke: colors.grid, width: 1 }, values: values };
  }

  function countAxis(colors) {
    return axis(colors, function (u, splits) {
      return splits.map(function (v) { return Number.isInteger(v) ? compact.format(v) : ""; });
    });
  }

  function yRange(u, min, max) { return [0, Math.max(1, Math.ceil((max || 0) * 1.1))]; }

  function width(el) { return Math.max(280, el.clientWidth - 8); }

  function buildHistory() {
    var el = $("au-history-chart");
    var colors = palette();
    var opts = {
      width: width(el), height: 260,
      scales: { x: { time: true }, y: { range: yRange } },
      axes: [axis(colors), countAxis(colors)],
      series: [
        {},
        { label: "Users", stroke: colors.users, width: 2, points: { show: false },
          fill: colors.users + "33", value: function (u, v) { return v == null ? "–" : number.format(v); } },
        { label: "Visitors", stroke: colors.visitors, width: 1.5, points: { show: false },
          value: function (u, v) { return v == null ? "–" : number.format(v); } },
        { label: "Sessions", points: { show: false }, stroke: colors.sessions, width: 1, dash: [4, 4],
          value: function (u, v) { return v == null ? "–" : number.format(v); } },
      ],
    };
    el.textContent = "";
    charts.history = new uPlot(opts, state.history || [[], [], [], []], el);
  }

  function buildUniques() {
    var el = $("au-uniques-chart");
    var colors = palette();
    var bars = uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined;
    var opts = {
      width: width(el), height: 180,
      scales: { x: { time: true }, y: { range: yRange } },
      axes: [axis(colors), countAxis(colors)],
      series: [
        {},
        { label: "Users", stroke: colors.users, fill: colors.users + "99", paths: bars,
          points: { show: false }, value: function (u, v) { return v == null ? "–" : number.format(v); } },
        { label: "Visitors", stroke: colors.visitors, width: 1.5, points: { show: false },
          value: function (u, v) { return v == null ? "–" : number.format(v); } },
      ],
    };
    el.textContent = "";
    charts.uniques = new uPlot(opts, state.days || [[], [], []], el);
  }

  function buildCharts() { buildHistory(); buildUniques(); }

  function showHistory(body) {
    var xs = [], users = [], visitors = [], entries = [];
    body.points.forEach(function (p) {
      xs.push(Date.parse(p.time) / 1000);
      users.push(p.users); visitors.push(p.visitors); entries.push(p.entries);
    });
    state.history = [xs, users, visitors, entries];
    charts.history.setData(state.history);
    var el = $("au-history-chart");
    el.dataset.points = String(xs.length);
    el.dataset.maxUsers = String(users.reduce(function (a, b) { return Math.max(a, b); }, 0));
  }

  function showUniques(body) {
    setText("au-dau", number.format(body.dau));
    setText("au-wau", number.format(body.wau));
    setText("au-mau", number.format(body.mau));
    setText("au-ratio", body.mau ? Math.round(body.dau_mau * 100) + " %" : "–");
    var xs = [], users = [], visitors = [];
    body.days.forEach(function (d) {
      var parts = d.date.split("-");
      xs.push(new Date(+parts[0], +parts[1] - 1, +parts[2]).getTime() / 1000);
      users.push(d.users); visitors.push(d.visitors);
    });
    state.days = [xs, users, visitors];
    charts.uniques.setData(state.days);
  }

  function showCounts(body) {
    // The chart's last point is now: the live counts (a minute is sampled only once).
    var h = state.history;
    if (h && h[0].length) {
      var last = h[0].length - 1;
      var live = [body.users, body.visitors, body.entries];
      for (var i = 0; i < 3; i++) {
        h[i + 1][last] = state.range === "30d" ? Math.max(h[i + 1][last], live[i]) : live[i];
      }
      charts.history.setData(h);
    }
    setText("au-users", number.format(body.users));
    setText("au-visitors", number.format(body.visitors));
    setText("au-total", number.format(body.users + body.visitors));
    setText("au-entries", number.format(body.entries));
  }

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) {
      var pill = document.createElement("span");
      pill.className = "au-pill " + className;
      pill.textContent = text;
      td.appendChild(pill);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
  }

  function ago(iso) {
    if (!iso) { return "never"; }
    var seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (seconds < 60) { return seconds + " s ago"; }
    if (seconds < 3600) { return Math.round(seconds / 60) + " min ago"; }
    if (seconds < 86400) { return Math.round(seconds / 3600) + " h ago"; }
    return new Date(iso).toLocaleString();
  }

  function showUsers(body) {
    var tbody = $("au-users-table").querySelector("tbody");
    tbody.textContent = "";
    body.users.forEach(function (u) {
      var row = document.createElement("tr");
      cell(row, u.username);
      cell(row, u.status, u.status);
      cell(row, ago(u.last_seen));
      cell(row, u.path || "");
      cell(row, u.ip || "");
      tbody.appendChild(row);
    });
    var empty = $("au-users-empty");
    empty.hidden = body.users.length > 0;
    empty.textContent = state.search ? "No user matches this search." : "Nobody is active right now.";
    state.next = body.next;
    $("au-next").disabled = !body.next;
    $("au-first").disabled = !state.cursor;
  }

  function showPages(body) {
    var tbody = $("au-pages-table").querySelector("tbody");
    tbody.textContent = "";
    body.pages.forEach(function (p) {
      var row = document.createElement("tr");
      cell(row, p.path);
      cell(row, number.format(p.people));
      tbody.appendChild(row);
    });
    $("au-pages-empty").hidden = body.pages.length > 0;
  }

  function loadUsers() {
    return getJSON(cfg.usersUrl, { cursor: state.cursor, search: state.search, limit: 25 })
      .then(showUsers);
  }

  function loadHistory() {
    state.lastHistory = Date.now();
    return getJSON(cfg.historyUrl, { range: state.range }).then(showHistory);
  }

  // With Channels routed, the counts are pushed over a WebSocket; polling covers the rest,
  // and the counts too whenever the socket is not open.
  var pushed = false;
  function listen() {
    if (!cfg.websocket || !window.WebSocket) { return; }
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(scheme + "//" + location.host + cfg.websocket);
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type !== "counts") { return; }
      if (message.error) { status(message.error, true); return; }
      pushed = true;
      root.dataset.pushed = "true";
      showCounts(message);
    };
    socket.onclose = function (event) {
      var wasPushed = pushed;
      pushed = false;
      root.dataset.pushed = "false";
      if (wasPushed) { setTimeout(listen, 5000); }
    };
  }

  function tick() {
    var now = Date.now();
    var work = [loadUsers(), getJSON(cfg.pagesUrl).then(showPages)];
    if (!pushed) { work.push(getJSON(cfg.countsUrl).then(showCounts)); }
    // Counts and tables every refresh; the slower-moving history and uniques less often.
    var historyEvery = state.range === "1h" ? refreshMs : 6 * refreshMs;
    if (now - state.lastHistory >= historyEvery) { work.push(loadHistory()); }
    if (now - state.lastUniques >= 12 * refreshMs) {
      state.lastUniques = now;
      work.push(getJSON(cfg.uniquesUrl, { days: 30, months: 0 }).then(showUniques));
    }
    return Promise.all(work).then(function () {
      status("Updated " + new Date().toLocaleTimeString() + " · refreshes every " +
             (refreshMs / 1000) + " s", false);
    }).catch(function (error) {
      status("Could not refresh: " + error.message, true);
    });
  }

  function pressRange(name) {
    state.range = name;
    root.querySelectorAll("[data-range]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.range === name ? "true" : "false");
    });
  }

  root.querySelectorAll("[data-range]").forEach(function (button) {
    button.addEventListener("click", function () {
      pressRange(button.dataset.range);
      loadHistory().catch(function (error) { status("Could not refresh: " + error.message, true); });
    });
  });
  $("au-search").addEventListener("submit", function (event) {
    event.preventDefault();
    state.search = $("au-search-text").value.trim();
    state.cursor = null;
    loadUsers().catch(function (error) { status("Could not search: " + error.message, true); });
  });
  $("au-search-clear").addEventListener("click", function () {
    $("au-search-text").value = "";
    state.search = ""; state.cursor = null;
    loadUsers().catch(function (error) { status("Could not refresh: " + error.message, true); });
  });
  $("au-next").addEventListener("click", function () {
    if (state.next) { state.cursor = state.next; loadUsers(); }
  });
  $("au-first").addEventListener("click", function () { state.cursor = null; loadUsers(); });

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      charts.history.setSize({ width: width($("au-history-chart")), height: 260 });
      charts.uniques.setSize({ width: width($("au-uniques-chart")), height: 180 });
    }, 150);
  });
  // The admin's theme toggle (and the system's) changes the CSS variables: redraw in them.
  new MutationObserver(buildCharts).observe(document.documentElement,
    { attributes: true, attributeFilter: ["data-theme"] });
  if (window.matchMedia) {
    var dark = window.matchMedia("(prefers-color-scheme: dark)");
    if (dark.addEventListener) { dark.addEventListener("change", buildCharts); }
  }

  pressRange(state.range);
  buildCharts();
  listen();
  tick();
  setInterval(function () { if (!document.hidden) { tick(); } }, refreshMs);
})();
