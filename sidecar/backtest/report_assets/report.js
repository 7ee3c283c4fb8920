/* Backtest report: draws the equity and drawdown charts (inline SVG) and the paged trade list
   from the JSON block #report-data. Data strings are only ever set with textContent. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var BAND_FILL = {
    reducing: "rgba(247,144,9,0.17)",
    halted: "rgba(217,45,32,0.15)",
    lock: "rgba(102,112,133,0.15)",
    blackout: "rgba(122,90,248,0.14)"
  };

  function svg(tag, attrs, parent) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function html(tag, cls, text, parent) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (parent) parent.appendChild(node);
    return node;
  }
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function fmtTime(sec) {
    var d = new Date(sec * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }
  function fmtMoney(x) {
    if (x === null || x === undefined || !isFinite(x)) return "\u2014";
    var s = Math.abs(x).toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (x < 0 ? "\u2212" : "") + s;
  }
  function axisFormatter(ticks) {
    // One unit and one number of decimals for every tick of an axis (10.5k, 11.0k, 11.5k).
    var top = 0, step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 1;
    ticks.forEach(function (v) { top = Math.max(top, Math.abs(v)); });
    var div = 1, unit = "";
    if (top >= 1e9) { div = 1e9; unit = "B"; } else if (top >= 1e6) { div = 1e6; unit = "M"; } else if (top >= 1e4) { div = 1e3; unit = "k"; }
    var s = step / div, dec = s >= 1 ? 0 : s >= 0.1 ? 1 : s >= 0.01 ? 2 : 3;
    return function (v) {
      var txt = (Math.abs(v) / div).toFixed(dec);
      if (!unit) txt = txt.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
      return (v < 0 ? "\u2212" : "") + txt + unit;
    };
  }

  // ---------------------------------------------------------------- axes
  function niceStep(span, count) {
    var raw = span / Math.max(1, count);
    var mag = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10));
    var r = raw / mag;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 2.5 ? 2.5 : r <= 5 ? 5 : 10) * mag;
  }
  function valueTicks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    var step = niceStep(hi - lo, count), out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  var H = 3600, DAY = 86400;
  var TIME_STEPS = [60, 300, 900, 1800, H, 2 * H, 3 * H, 6 * H, 12 * H, DAY, 2 * DAY, 7 * DAY, 14 * DAY];
  var MONTH_STEPS = [1, 2, 3, 6, 12, 24, 60, 120];
  function timeTicks(a, b, count) {
    var span = b - a, i, out = [], step;
    for (i = 0; i < TIME_STEPS.length; i++) {
      step = TIME_STEPS[i];
      if (span / step <= count) {
        var first = step === 7 * DAY || step === 14 * DAY
          ? Math.ceil((a - 4 * DAY) / step) * step + 4 * DAY   // Mondays (1970-01-05 was one)
          : Math.ceil(a / step) * step;
        for (var t = first; t <= b; t += step) out.push(t);
        return { ticks: out, label: step < DAY ? labelIntraday : labelDay };
      }
    }
    for (i = 0; i < MONTH_STEPS.length; i++) {
      var months = MONTH_STEPS[i];
      if (span / (months * 30.44 * DAY) <= count || i === MONTH_STEPS.length - 1) {
        var d = new Date(a * 1000), y = d.getUTCFullYear(), m = d.getUTCMonth() + 1;
        m = Math.ceil(m / months) * months;
        for (;;) {
          var ts = Date.UTC(y + Math.floor(m / 12), m % 12, 1) / 1000;
          if (ts > b) break;
          if (ts >= a) out.push(ts);
          m += months;
        }
        return { ticks: out, label: months >= 12 ? labelYear : labelMonth };
      }
    }
    return { ticks: out, label: labelDay };
  }
  function labelIntraday(t) {
    var d = new Date(t * 1000);
    if (d.getUTCHours() === 0 && d.getUTCMinutes() === 0) return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate();
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }
  function labelDay(t) { var d = new Date(t * 1000); return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate(); }
  function labelMonth(t) {
    var d = new Date(t * 1000);
    return d.getUTCMonth() === 0 ? String(d.getUTCFullYear()) : MONTHS[d.getUTCMonth()] + " " + String(d.getUTCFullYear()).slice(2);
  }
  function labelYear(t) { return String(new Date(t * 1000).getUTCFullYear()); }

  function lastAtOrBefore(ts, x) {
    var lo = 0, hi = ts.length - 1;
    if (hi < 0 || ts[0] > x) return -1;
    while (lo < hi) { var mid = (lo + hi + 1) >> 1; if (ts[mid] <= x) lo = mid; else hi = mid - 1; }
    return lo;
  }

  // ---------------------------------------------------------------- charts
  var charts = [];
  function drawChart(host, cfg) {
    while (host.firstChild) host.removeChild(host.firstChild);
    var W = Math.max(320, host.clientWidth || 1200), Hh = cfg.height;
    var m = { l: 70, r: 16, t: 8, b: cfg.xAxis ? 24 : 8 };
    var pw = W - m.l - m.r, ph = Hh - m.t - m.b;
    var x0 = D.start - D.t0, x1 = Math.max(D.end - D.t0, x0 + 1);
    var lo = Infinity, hi = -Infinity;
    cfg.series.forEach(function (s) {
      for (var i = 0; i < s.v.length; i++) { if (s.v[i] < lo) lo = s.v[i]; if (s.v[i] > hi) hi = s.v[i]; }
    });
    if (cfg.zeroTop) { hi = 0; if (!(lo < 0)) lo = -1; }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    var padv = (hi - lo) * 0.06;
    if (!cfg.zeroTop) { lo -= padv; hi += padv; } else { lo -= padv; }
    function sx(t) { return m.l + (t - x0) / (x1 - x0) * pw; }
    function sy(v) { return m.t + (hi - v) / (hi - lo) * ph; }

    var root = svg("svg", { width: W, height: Hh, viewBox: "0 0 " + W + " " + Hh, role: "img" }, host);
    svg("title", {}, root).textContent = cfg.title;
    var clipId = "clip-" + host.id;
    var defs = svg("defs", {}, root);
    svg("rect", { x: m.l, y: m.t, width: pw, height: ph }, svg("clipPath", { id: clipId }, defs));

    // grid + y axis
    var grid = svg("g", { "class": "grid" }, root), axis = svg("g", { "class": "axis" }, root);
    var yt = valueTicks(lo, hi, Math.max(3, Math.round(ph / 42)));
    var yFmt = cfg.yFmt || axisFormatter(yt);
    yt.forEach(function (v) {
      var y = sy(v);
      svg("line", { x1: m.l, x2: m.l + pw, y1: y, y2: y }, grid);
      var tx = svg("text", { x: m.l - 8, y: y + 3.5, "text-anchor": "end" }, axis);
      tx.textContent = yFmt(v);
    });
    // x axis
    var tt = timeTicks(D.start, Math.max(D.end, D.start + 1), Math.max(2, Math.floor(pw / 105)));
    tt.ticks.forEach(function (t) {
      var x = sx(t - D.t0);
      svg("line", { x1: x, x2: x, y1: m.t, y2: m.t + ph }, grid);
      if (cfg.xAxis) {
        var tx = svg("text", { x: x, y: m.t + ph + 16, "text-anchor": "middle" }, axis);
        tx.textContent = tt.label(t);
      }
    });

    // bands
    var bands = svg("g", { "clip-path": "url(#" + clipId + ")" }, root);
    D.bands.forEach(function (b) {
      var xa = sx(b[0]), xb = sx(b[1]);
      var r = svg("rect", { x: xa.toFixed(1), y: m.t, width: Math.max(2, xb - xa).toFixed(1), height: ph, fill: BAND_FILL[b[2]] || BAND_FILL.lock }, bands);
      svg("title", {}, r).textContent = b[3] + "\n" + fmtTime(b[0] + D.t0) + " \u2192 " + fmtTime(b[1] + D.t0) + " UTC";
    });

    // series
    var lines = svg("g", { "clip-path": "url(#" + clipId + ")" }, root);
    cfg.series.forEach(function (s) {
      if (!s.t.length) return;
      var parts = [];
      for (var i = 0; i < s.t.length; i++) parts.push((i ? "L" : "M") + sx(s.t[i]).toFixed(1) + " " + sy(s.v[i]).toFixed(1));
      if (s.fill) {
        var base = sy(Math.min(Math.max(0, lo), hi)).toFixed(1);
        svg("path", {
          d: parts.join("") + "L" + sx(s.t[s.t.length - 1]).toFixed(1) + " " + base + "L" + sx(s.t[0]).toFixed(1) + " " + base + "Z",
          fill: s.fill, stroke: "none"
        }, lines);
      }
      svg("path", { d: parts.join(""), fill: "none", stroke: s.color, "stroke-width": s.width, "stroke-linejoin": "round", "stroke-dasharray": s.dash || "none" }, lines);
    });
    svg("rect", { "class": "frame", x: m.l + 0.5, y: m.t + 0.5, width: pw - 1, height: ph - 1 }, root);

    // crosshair + tooltip
    var cross = svg("line", { "class": "cross", x1: 0, x2: 0, y1: m.t, y2: m.t + ph, visibility: "hidden" }, root);
    var tip = html("div", "tip", null, host);
    var overlay = svg("rect", { x: m.l, y: m.t, width: pw, height: ph, fill: "transparent" }, root);
    var chart = {
      show: function (t, withTip, px, py) {
        if (t === null) { cross.setAttribute("visibility", "hidden"); tip.style.display = "none"; return; }
        var x = sx(t);
        cross.setAttribute("x1", x); cross.setAttribute("x2", x); cross.setAttribute("visibility", "visible");
        if (!withTip) { tip.style.display = "none"; return; }
        while (tip.firstChild) tip.removeChild(tip.firstChild);
        html("b", null, fmtTime(t + D.t0) + " UTC", tip);
        tooltipRows(t).forEach(function (row) { html("div", null, row, tip); });
        tip.style.display = "block";
        var left = px + 14;
        if (left + tip.offsetWidth > W - 4) left = px - tip.offsetWidth - 14;
        tip.style.left = left + "px";
        tip.style.top = Math.max(0, Math.min(py - 10, Hh - tip.offsetHeight)) + "px";
      }
    };
    overlay.addEventListener("mousemove", function (ev) {
      var rect = root.getBoundingClientRect();
      var px = ev.clientX - rect.left, py = ev.clientY - rect.top;
      var t = x0 + (px - m.l) / pw * (x1 - x0);
      charts.forEach(function (c) { c.show(t, c === chart, px, py); });
    });
    overlay.addEventListener("mouseleave", function () { charts.forEach(function (c) { c.show(null); }); });
    var r = host.getBoundingClientRect();
    host.setAttribute("data-rect", [Math.round(r.left + window.scrollX), Math.round(r.top + window.scrollY), Math.round(r.width), Math.round(r.height)].join(","));
    host.setAttribute("data-drawn", String(cfg.series.reduce(function (n, s) { return n + s.t.length; }, 0)));
    return chart;
  }

  function tooltipRows(t) {
    var rows = [];
    var i = lastAtOrBefore(D.equity.t, t), j = lastAtOrBefore(D.balance.t, t), k = lastAtOrBefore(D.dd.t, t);
    if (i >= 0) rows.push("Equity  " + fmtMoney(D.equity.v[i]) + " " + D.currency);
    if (j >= 0) rows.push("Balance " + fmtMoney(D.balance.v[j]) + " " + D.currency);
    if (k >= 0) rows.push("Drawdown " + D.dd.v[k].toFixed(2) + " %");
    D.bands.forEach(function (b) { if (b[0] <= t && t <= b[1]) rows.push(b[3]); });
    return rows.slice(0, 8);
  }

  function drawAll() {
    charts = [];
    charts.push(drawChart(document.getElementById("chart-equity"), {
      title: "Equity and balance", height: 330, xAxis: false,
      series: [
        { t: D.balance.t, v: D.balance.v, color: "#98a2b3", width: 1.3, dash: "4 3" },
        { t: D.equity.t, v: D.equity.v, color: "#2563eb", width: 1.6 }
      ]
    }));
    charts.push(drawChart(document.getElementById("chart-dd"), {
      title: "Drawdown from the equity high-water mark (%)", height: 170, xAxis: true, zeroTop: true,
      yFmt: function (v) { return (v < 0 ? "\u2212" : "") + Math.abs(v).toFixed(Math.abs(v) < 10 && v % 1 ? 1 : 0) + "%"; },
      series: [{ t: D.dd.t, v: D.dd.v.map(function (v) { return -v; }), color: "#d92d20", width: 1.2, fill: "rgba(217,45,32,0.16)" }]
    }));
  }

  // ---------------------------------------------------------------- trades
  var COLS = [
    { k: 0, name: "#", cls: "" },
    { k: 1, name: "Symbol", cls: "l" },
    { k: 2, name: "Side", cls: "l" },
    { k: 3, name: "Volume", cls: "" },
    { k: 4, name: "Entry time", cls: "l" },
    { k: 5, name: "Entry", cls: "" },
    { k: 8, name: "SL / TP", cls: "" },
    { k: 6, name: "Exit time", cls: "l" },
    { k: 7, name: "Exit", cls: "" },
    { k: 13, name: "Exit reason", cls: "l" },
    { k: 11, name: "Costs", cls: "" },
    { k: 10, name: "Net profit", cls: "" },
    { k: 14, name: "Opening reasons", cls: "l", nosort: true }
  ];
  var state = { page: 0, size: 25, sortKey: 6, asc: true, filter: "", rows: D.trades };

  function cell(tr, row, col) {
    var td = html("td", col.cls, null, tr);
    var v = row[col.k], digits = D.digits[row[1]];
    if (digits === undefined) digits = 5;
    switch (col.k) {
      case 2: html("span", "badge " + (v === "buy" ? "buy" : "sell"), v, td); break;
      case 3: td.textContent = v.toFixed(2); break;
      case 4: case 6: td.textContent = fmtTime(v); break;
      case 5: case 7: td.textContent = v ? v.toFixed(digits) : "\u2014"; break;
      case 8:
        html("span", "lo", row[8] ? row[8].toFixed(digits) : "\u2014", td);
        html("span", "lo", row[9] ? row[9].toFixed(digits) : "\u2014", td);
        break;
      case 10: td.textContent = fmtMoney(v); td.className = v > 0 ? "pos" : v < 0 ? "neg" : ""; break;
      case 11: td.textContent = fmtMoney(row[11] + row[12]); td.title = "commission " + fmtMoney(row[11]) + ", swap " + fmtMoney(row[12]); break;
      case 13: html("span", "badge x", v, td); break;
      case 14:
        td.className = "reasons";
        v.forEach(function (idx) { html("span", "reason", D.reasons[idx], td); });
        break;
      default: td.textContent = v;
    }
  }
  function applyFilter() {
    var q = state.filter.trim().toLowerCase();
    var rows = !q ? D.trades.slice() : D.trades.filter(function (r) {
      if ((r[1] + " " + r[2] + " " + r[13]).toLowerCase().indexOf(q) >= 0) return true;
      return r[14].some(function (idx) { return D.reasons[idx].toLowerCase().indexOf(q) >= 0; });
    });
    var k = state.sortKey, dir = state.asc ? 1 : -1;
    rows.sort(function (a, b) {
      var x = k === 11 ? a[11] + a[12] : a[k], y = k === 11 ? b[11] + b[12] : b[k];
      if (x < y) return -dir;
      if (x > y) return dir;
      return a[0] - b[0];
    });
    state.rows = rows;
  }
  function renderTrades() {
    var host = document.getElementById("trades");
    if (!host) return;
    while (host.firstChild) host.removeChild(host.firstChild);
    if (!D.trades.length) { html("div", "empty", "No trades.", host); return; }
    var bar = html("div", "toolbar", null, host);
    var input = html("input", null, null, bar);
    input.type = "search"; input.placeholder = "Filter: symbol, side, exit or reason code"; input.value = state.filter;
    var count = html("span", null, null, bar);
    html("span", "grow", null, bar);
    var prev = html("button", null, "\u2039 Prev", bar);
    var pageLabel = html("span", null, null, bar);
    var next = html("button", null, "Next \u203A", bar);
    var wrap = html("div", "tablewrap", null, host);
    var table = html("table", "trades", null, wrap);
    var head = html("tr", null, null, html("thead", null, null, table));
    COLS.forEach(function (col) {
      var th = html("th", col.cls + (col.nosort ? "" : " sort"), col.name, head);
      if (col.k === state.sortKey) th.className += state.asc ? " asc" : " desc";
      if (!col.nosort) th.addEventListener("click", function () {
        if (state.sortKey === col.k) state.asc = !state.asc; else { state.sortKey = col.k; state.asc = true; }
        applyFilter(); renderTrades();
      });
    });
    var body = html("tbody", null, null, table);
    var pages = Math.max(1, Math.ceil(state.rows.length / state.size));
    state.page = Math.min(state.page, pages - 1);
    state.rows.slice(state.page * state.size, (state.page + 1) * state.size).forEach(function (row) {
      var tr = html("tr", null, null, body);
      COLS.forEach(function (col) { cell(tr, row, col); });
    });
    count.textContent = state.rows.length + " of " + D.trades.length + " trades";
    pageLabel.textContent = "page " + (state.page + 1) + " / " + pages;
    prev.disabled = state.page === 0; next.disabled = state.page >= pages - 1;
    prev.addEventListener("click", function () { state.page--; renderTrades(); });
    next.addEventListener("click", function () { state.page++; renderTrades(); });
    input.addEventListener("change", function () { state.filter = input.value; state.page = 0; applyFilter(); renderTrades(); });
  }

  // ---------------------------------------------------------------- go
  drawAll();
  applyFilter();
  renderTrades();
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawAll, 150);
  });
  document.body.setAttribute("data-render", "ok");
  document.getElementById("render-status").textContent =
    "charts=" + charts.length + " trades=" + D.trades.length;
})();
