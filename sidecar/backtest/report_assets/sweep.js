/* Sweep report: draws the stitched out-of-sample equity (inline SVG) from the JSON block
   #sweep-data, windows shaded alternately, with a hover tooltip. Text only via textContent. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("sweep-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var DAY = 86400;

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
  function fmtDay(sec) {
    var d = new Date(sec * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }
  function fmtMoney(x) {
    if (x === null || x === undefined || !isFinite(x)) return "\u2014";
    var s = Math.abs(x).toFixed(2).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (x < 0 ? "\u2212" : "") + s;
  }
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
  function axisLabel(v, step) {
    var top = Math.abs(v), div = 1, unit = "";
    if (top >= 1e6) { div = 1e6; unit = "M"; } else if (top >= 1e4) { div = 1e3; unit = "k"; }
    var s = step / div, dec = s >= 1 ? 0 : s >= 0.1 ? 1 : s >= 0.01 ? 2 : 3;
    var txt = (Math.abs(v) / div).toFixed(dec);
    if (!unit) txt = txt.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (v < 0 ? "\u2212" : "") + txt + unit;
  }
  function timeTicks(a, b, count) {
    // Month starts every 1, 2, 3, 6, 12, 24... months, else days.
    var span = b - a, out = [], steps = [1, 2, 3, 6, 12, 24, 60, 120];
    if (span < 45 * DAY) {
      var step = Math.max(1, Math.ceil(span / DAY / count)) * DAY;
      for (var t = Math.ceil(a / step) * step; t <= b; t += step) out.push(t);
      return { ticks: out, label: function (x) { var d = new Date(x * 1000); return MONTHS[d.getUTCMonth()] + " " + d.getUTCDate(); } };
    }
    for (var i = 0; i < steps.length; i++) {
      var months = steps[i];
      if (span / (months * 30.44 * DAY) <= count || i === steps.length - 1) {
        var d0 = new Date(a * 1000), y = d0.getUTCFullYear(), m = Math.ceil((d0.getUTCMonth() + 1) / months) * months;
        for (;;) {
          var ts = Date.UTC(y + Math.floor(m / 12), m % 12, 1) / 1000;
          if (ts > b) break;
          if (ts >= a) out.push(ts);
          m += months;
        }
        return {
          ticks: out,
          label: function (x) {
            var d = new Date(x * 1000);
            return months >= 12 || d.getUTCMonth() === 0 ? String(d.getUTCFullYear()) : MONTHS[d.getUTCMonth()] + " " + String(d.getUTCFullYear()).slice(2);
          }
        };
      }
    }
    return { ticks: out, label: String };
  }
  function lastAtOrBefore(ts, x) {
    var lo = 0, hi = ts.length - 1;
    if (hi < 0 || ts[0] > x) return -1;
    while (lo < hi) { var mid = (lo + hi + 1) >> 1; if (ts[mid] <= x) lo = mid; else hi = mid - 1; }
    return lo;
  }

  function drawOos(host, O) {
    while (host.firstChild) host.removeChild(host.firstChild);
    var W = Math.max(320, host.clientWidth || 1200), Hh = 320;
    var m = { l: 70, r: 16, t: 8, b: 24 }, pw = W - m.l - m.r, ph = Hh - m.t - m.b;
    var x0 = O.start, x1 = Math.max(O.end, x0 + 1);
    var lo = Infinity, hi = -Infinity, i;
    for (i = 0; i < O.v.length; i++) { if (O.v[i] < lo) lo = O.v[i]; if (O.v[i] > hi) hi = O.v[i]; }
    if (O.start_equity !== null && isFinite(O.start_equity)) { lo = Math.min(lo, O.start_equity); hi = Math.max(hi, O.start_equity); }
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
    var padv = (hi - lo) * 0.06; lo -= padv; hi += padv;
    function sx(t) { return m.l + (t - x0) / (x1 - x0) * pw; }
    function sy(v) { return m.t + (hi - v) / (hi - lo) * ph; }
    var root = svg("svg", { width: W, height: Hh, viewBox: "0 0 " + W + " " + Hh, role: "img" }, host);
    svg("title", {}, root).textContent = "Stitched out-of-sample equity";
    var clip = svg("clipPath", { id: "clip-oos" }, svg("defs", {}, root));
    svg("rect", { x: m.l, y: m.t, width: pw, height: ph }, clip);
    var bands = svg("g", { "clip-path": "url(#clip-oos)" }, root);
    O.windows.forEach(function (w) {
      if (w[2] % 2 === 0) {
        var r = svg("rect", { x: sx(w[0]).toFixed(1), y: m.t, width: Math.max(1, sx(w[1]) - sx(w[0])).toFixed(1), height: ph, fill: "rgba(37,99,235,0.07)" }, bands);
        svg("title", {}, r).textContent = "window " + w[2];
      }
    });
    var grid = svg("g", { "class": "grid" }, root), axis = svg("g", { "class": "axis" }, root);
    var yt = valueTicks(lo, hi, Math.max(3, Math.round(ph / 42)));
    var ystep = yt.length > 1 ? yt[1] - yt[0] : 1;
    yt.forEach(function (v) {
      var y = sy(v);
      svg("line", { x1: m.l, x2: m.l + pw, y1: y, y2: y }, grid);
      svg("text", { x: m.l - 8, y: y + 3.5, "text-anchor": "end" }, axis).textContent = axisLabel(v, ystep);
    });
    var tt = timeTicks(x0 + O.t0, x1 + O.t0, Math.max(2, Math.floor(pw / 105)));
    tt.ticks.forEach(function (t) {
      var x = sx(t - O.t0);
      svg("line", { x1: x, x2: x, y1: m.t, y2: m.t + ph }, grid);
      svg("text", { x: x, y: m.t + ph + 16, "text-anchor": "middle" }, axis).textContent = tt.label(t);
    });
    if (O.start_equity !== null && isFinite(O.start_equity)) {
      svg("line", { x1: m.l, x2: m.l + pw, y1: sy(O.start_equity), y2: sy(O.start_equity), stroke: "#98a2b3", "stroke-dasharray": "4 3" }, root);
    }
    var parts = [];
    for (i = 0; i < O.t.length; i++) parts.push((i ? "L" : "M") + sx(O.t[i]).toFixed(1) + " " + sy(O.v[i]).toFixed(1));
    if (parts.length) {
      svg("path", { d: parts.join(""), fill: "none", stroke: "#2563eb", "stroke-width": 1.6, "stroke-linejoin": "round", "clip-path": "url(#clip-oos)" }, root);
    }
    svg("rect", { "class": "frame", x: m.l + 0.5, y: m.t + 0.5, width: pw - 1, height: ph - 1 }, root);
    var cross = svg("line", { "class": "cross", x1: 0, x2: 0, y1: m.t, y2: m.t + ph, visibility: "hidden" }, root);
    var tip = html("div", "tip", null, host);
    var overlay = svg("rect", { x: m.l, y: m.t, width: pw, height: ph, fill: "transparent" }, root);
    overlay.addEventListener("mousemove", function (ev) {
      var rect = root.getBoundingClientRect(), px = ev.clientX - rect.left, py = ev.clientY - rect.top;
      var t = x0 + (px - m.l) / pw * (x1 - x0), k = lastAtOrBefore(O.t, t);
      cross.setAttribute("x1", px); cross.setAttribute("x2", px); cross.setAttribute("visibility", "visible");
      while (tip.firstChild) tip.removeChild(tip.firstChild);
      html("b", null, fmtDay(t + O.t0) + " UTC", tip);
      if (k >= 0) html("div", null, "Equity " + fmtMoney(O.v[k]), tip);
      O.windows.forEach(function (w) { if (w[0] <= t && t < w[1]) html("div", null, "Window " + w[2], tip); });
      tip.style.display = "block";
      var left = px + 14;
      if (left + tip.offsetWidth > W - 4) left = px - tip.offsetWidth - 14;
      tip.style.left = left + "px";
      tip.style.top = Math.max(0, Math.min(py - 10, Hh - tip.offsetHeight)) + "px";
    });
    overlay.addEventListener("mouseleave", function () { cross.setAttribute("visibility", "hidden"); tip.style.display = "none"; });
    var r = host.getBoundingClientRect();
    host.setAttribute("data-rect", [Math.round(r.left + window.scrollX), Math.round(r.top + window.scrollY), Math.round(r.width), Math.round(r.height)].join(","));
    host.setAttribute("data-drawn", String(O.t.length));
    host.setAttribute("data-first", O.v.length ? O.v[0].toFixed(2) : "");
    host.setAttribute("data-last", O.v.length ? O.v[O.v.length - 1].toFixed(2) : "");
    host.setAttribute("data-max", O.v.length ? Math.max.apply(null, O.v).toFixed(2) : "");
    host.setAttribute("data-min", O.v.length ? Math.min.apply(null, O.v).toFixed(2) : "");
    host.setAttribute("data-windows", String(O.windows.length));
  }

  var charts = 0;
  function drawAll() {
    var host = document.getElementById("chart-oos");
    if (host && D.oos) { drawOos(host, D.oos); charts = 1; }
  }
  drawAll();
  var resizeTimer = null;
  window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawAll, 150); });
  document.body.setAttribute("data-render", "ok");
  document.getElementById("render-status").textContent =
    "charts=" + charts + " heatmaps=" + D.heatmaps + " rows=" + D.rows;
})();
