// The sidecar's status page: polls the operator API and draws it. Every string from the API
// reaches the DOM through textContent (never innerHTML), so a reason, a trade comment or a
// calendar event name cannot inject markup.
(function () {
  "use strict";

  var REFRESH_MS = 5000;
  var TOKEN_KEY = "sidecar.status.token";
  var MINUS = "\u2212";
  var DASH = "\u2014";
  var timer = null;
  var busy = false;

  // ------------------------------------------------------------------ helpers

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      parent.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
    }
    return parent;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

  function isNum(x) { return typeof x === "number" && isFinite(x); }

  // 1234567.891 -> "1,234,567.89"; negative numbers get a real minus sign.
  function num(x, digits) {
    if (!isNum(x)) return DASH;
    var d = digits === undefined ? 2 : digits;
    var s = Math.abs(x).toFixed(d);
    var parts = s.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    var out = parts.join(".");
    var zero = Number(s) === 0;
    return (x < 0 && !zero ? MINUS : "") + out;
  }

  function signed(x, digits) {
    if (!isNum(x)) return DASH;
    var s = num(x, digits);
    return x > 0 && Number(Math.abs(x).toFixed(digits)) !== 0 ? "+" + s : s;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Epoch seconds -> "2024-06-03 14:00:05" (read as UTC; server times are shown the same way).
  function stamp(t) {
    if (!isNum(t) || t <= 0) return DASH;
    var d = new Date(t * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }

  function duration(s) {
    if (!isNum(s)) return DASH;
    s = Math.max(0, s);
    if (s < 60) return Math.round(s) + " s";
    var units = s < 3600 ? [60, "min", 1, "s"] : s < 86400 ? [3600, "h", 60, "min"] : [86400, "d", 3600, "h"];
    var big = Math.floor(s / units[0]);
    var small = Math.floor((s % units[0]) / units[2]);
    return big + " " + units[1] + (small ? " " + small + " " + units[3] : "");
  }

  function token() {
    try { return window.sessionStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  function setToken(value) {
    try {
      if (value) window.sessionStorage.setItem(TOKEN_KEY, value);
      else window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lives until the page is closed */ }
    memoryToken = value;
  }
  var memoryToken = "";

  function currentToken() { return token() || memoryToken; }

  function AuthError() { this.name = "AuthError"; }

  async function getJSON(path, optional) {
    var headers = { "Accept": "application/json" };
    var t = currentToken();
    if (t) headers["Authorization"] = "Bearer " + t;
    var resp;
    try {
      resp = await fetch(path, { headers: headers, cache: "no-store", credentials: "omit" });
    } catch (e) {
      if (optional) return null;
      throw new Error("cannot reach the sidecar (" + path + ")");
    }
    if (resp.status === 401) throw new AuthError();
    var body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok && !(path === "/health" && resp.status === 503 && body)) {
      if (optional) return null;
      var msg = body && body.error && body.error.message ? body.error.message : "HTTP " + resp.status;
      throw new Error(path + ": " + msg);
    }
    return body;
  }

  // ------------------------------------------------------------------ pieces

  function pill(text, cls) { return el("span", "pill " + (cls || "unknown"), text); }

  function badge(text) {
    var cls = String(text).toLowerCase().replace(/[^a-z_]/g, "");
    return el("span", "badge " + (cls || "x"), text);
  }

  // "CODE key=value ..." -> a chip with the code in bold.
  function reasonChip(reason) {
    var s = String(reason);
    var cut = s.indexOf(" ");
    var chip = el("span", "reason");
    chip.title = s;
    add(chip, el("b", null, cut < 0 ? s : s.slice(0, cut)));
    if (cut >= 0) add(chip, s.slice(cut));
    return chip;
  }

  function stat(key, value, sub, cls, field, raw) {
    var box = el("div", "stat");
    var v = el("div", "v" + (cls ? " " + cls : ""), value);
    if (field) { v.setAttribute("data-k", field); v.setAttribute("data-value", String(raw)); }
    add(box, el("div", "k", key), v, sub ? el("div", "s", sub) : null);
    return box;
  }

  function table(headers, rows, cls) {
    var wrap = el("div", "tablewrap");
    var t = el("table", cls);
    var head = el("tr");
    headers.forEach(function (h) {
      var right = h.charAt(0) === ">";
      add(head, el("th", right ? "r" : null, right ? h.slice(1) : h));
    });
    var body = el("tbody");
    rows.forEach(function (r) { add(body, r); });
    add(t, add(el("thead"), head), body);
    return add(wrap, t);
  }

  function cell(content, cls) {
    var td = el("td", cls || null);
    if (content !== null && typeof content === "object") add(td, content);
    else td.textContent = content === null || content === undefined ? DASH : String(content);
    return td;
  }

  // A bar from 0 to `max` with markers; `marks` = [[value, class, label], ...].
  function meter(key, valueText, fraction, fillCls, marks, max, field, raw) {
    var box = el("div", "meter");
    var label = el("div", "label");
    var v = el("span", "v", valueText);
    if (field) { v.setAttribute("data-k", field); v.setAttribute("data-value", String(raw)); }
    add(label, el("span", "k", key), v);
    var track = el("div", "track");
    var fill = el("div", "fill" + (fillCls ? " " + fillCls : ""));
    fill.style.width = (100 * Math.max(0, Math.min(1, fraction))).toFixed(2) + "%";
    add(track, fill);
    var scale = el("div", "scale");
    (marks || []).forEach(function (m) {
      var pos = max > 0 ? Math.min(100, (100 * m[0]) / max) : 0;
      var mark = el("div", "mark " + m[1]);
      mark.style.left = "calc(" + pos.toFixed(2) + "% - 1px)";
      mark.title = m[2];
      add(track, mark);
      var tick = el("span", pos >= 99.5 ? "end" : null, m[2]);
      tick.style.left = pos.toFixed(2) + "%";
      add(scale, tick);
    });
    return add(box, label, track, marks && marks.length ? scale : null);
  }

  // ------------------------------------------------------------------ sections

  // The newest decision per login: the leverage cap and its regime (LEVERAGE_CAP reason).
  function leverageByLogin(decisions) {
    var out = {};
    (decisions || []).forEach(function (d) {
      if (out[d.login] || !d.verdict) return;
      var v = d.verdict;
      var regime = d.regime || null;
      (v.reasons || []).forEach(function (r) {
        var m = /^LEVERAGE_CAP .*\bregime=([A-Za-z_]+)/.exec(r);
        if (m) regime = m[1];
      });
      out[d.login] = { cap: v.leverage_cap, regime: regime };
    });
    return out;
  }

  function lockChip(lock) {
    var kind = String(lock.lock || "lock");
    var chip = el("span", "lock " + kind.replace(/[^a-z_]/g, ""));
    chip.setAttribute("data-k", "lock");
    var names = { daily_loss: "Daily-loss lock", cooldown: "Cooldown", halted: "Halted" };
    add(chip, el("b", null, names[kind] || kind));
    if (lock.until_server !== undefined) {
      add(chip, " until " + stamp(lock.until_server) + " server time");
    }
    if (lock.since_gmt !== undefined) add(chip, " since " + stamp(lock.since_gmt) + " UTC");
    if (lock.losses !== undefined) add(chip, " (" + lock.losses + " losses)");
    if (lock.reason) add(chip, ": ", el("span", "why", lock.reason));
    return chip;
  }

  function accountCard(a, limits, lev) {
    var risk = (limits && limits.risk) || {};
    var card = el("div", "account mode-" + String(a.mode).replace(/[^a-z]/g, ""));
    card.setAttribute("data-login", String(a.login));
    var head = el("div", "head");
    var login = el("span", "login", "Account " + a.login);
    var mode = pill(a.mode, String(a.mode).replace(/[^a-z]/g, ""));
    mode.setAttribute("data-k", "mode");
    add(head, login, mode);
    if (a.mode_reason) add(head, el("span", "why", a.mode_reason));
    if (a.mode_since_gmt) add(head, el("span", "why", "since " + stamp(a.mode_since_gmt) + " UTC"));
    add(card, head);

    var anchors = a.anchors || {};
    var body = el("div", "body");
    var left = el("div", "left");
    var right = el("div", "right");
    add(card, add(body, left, right));

    var pnlCls = a.daily_pnl > 0 ? "pos" : a.daily_pnl < 0 ? "neg" : "";
    var stats = el("div", "stats");
    add(stats,
      stat("Equity", num(a.equity), "balance " + num(a.balance), null, "equity", a.equity),
      stat("Daily P/L", signed(a.daily_pnl), "day start " + num(anchors.day_start_equity),
        pnlCls, "daily_pnl", a.daily_pnl),
      stat("High-water mark", num(anchors.high_water_mark), "broker day " + anchors.broker_day,
        null, "hwm", anchors.high_water_mark),
      stat("Loss streak", String(a.loss_streak), a.loss_streak === 1 ? "losing position" :
        "losing positions", a.loss_streak > 0 ? "neg" : null, "loss_streak", a.loss_streak));
    add(left, stats);

    var facts = el("div", "facts2");
    var l = a.leverage || {};
    var cap = isNum(l.cap) ? l.cap : lev && isNum(lev.cap) ? lev.cap : null;
    var regime = l.regime || (lev && lev.regime);
    var capEl = el("span", null, cap === null ? DASH : "1:" + cap + (regime ? " (" + regime + ")" : ""));
    capEl.setAttribute("data-k", "leverage_cap");
    add(facts, add(el("span"), el("b", null, "Leverage cap"), capEl));
    if (isNum(l.effective)) {
      var effEl = el("span", null, "1:" + num(l.effective, 1));
      effEl.setAttribute("data-k", "leverage_effective");
      add(facts, add(el("span"), el("b", null, "Effective leverage"), effEl));
    }
    add(facts, add(el("span"), el("b", null, "Last tick"), stamp(a.last_gmt) + " UTC"));
    add(left, facts);

    // Drawdown from the high-water mark against the breaker thresholds.
    var dd = a.drawdown_pct;
    var halted = risk.drawdown_halted_pct;
    var ddText = num(dd, 2) + "%";
    if (isNum(halted)) ddText += " of " + num(halted, 1) + "% halt";
    var ddCls = isNum(risk.drawdown_reducing_pct) && dd >= risk.drawdown_reducing_pct ? "bad" :
      isNum(risk.drawdown_defensive_pct) && dd >= risk.drawdown_defensive_pct ? "warn" : "";
    var ddMarks = [];
    if (isNum(risk.drawdown_defensive_pct)) {
      ddMarks.push([risk.drawdown_defensive_pct, "defensive", "defensive " + risk.drawdown_defensive_pct + "%"]);
    }
    if (isNum(risk.drawdown_reducing_pct)) {
      ddMarks.push([risk.drawdown_reducing_pct, "reducing", "reducing " + risk.drawdown_reducing_pct + "%"]);
    }
    if (isNum(halted)) ddMarks.push([halted, "halted", "halted " + halted + "%"]);
    var ddMax = isNum(halted) ? halted : Math.max(dd, 1);
    add(right, meter("Drawdown", ddText, dd / ddMax, ddCls, ddMarks, ddMax, "drawdown_pct", dd));

    // Today's loss against the daily limit (a gain leaves the bar empty).
    var limit = risk.daily_loss_pct;
    var loss = Math.max(0, -(a.daily_pnl_pct || 0));
    var dayText = signed(a.daily_pnl_pct, 2) + "%";
    if (isNum(limit)) dayText += " (limit " + MINUS + num(limit, 1) + "%)";
    var dayCls = isNum(limit) && loss >= limit ? "bad" : isNum(limit) && loss >= limit / 2 ? "warn" : "";
    add(right, meter("Daily loss", dayText, isNum(limit) && limit > 0 ? loss / limit : 0, dayCls,
      null, limit, "daily_pnl_pct", a.daily_pnl_pct));

    var locks = a.locks || [];
    if (locks.length) add(right, add.apply(null, [el("div", "locks")].concat(locks.map(lockChip))));
    else add(right, el("div", "nolocks", "No locks: the breakers allow entries."));
    return card;
  }

  function renderAccounts(state, limits, decisions) {
    var box = clear($("accounts"));
    var lev = leverageByLogin(decisions);
    var accounts = state.accounts || [];
    $("accounts-hint").textContent = accounts.length + (accounts.length === 1 ? " account" : " accounts") +
      (state.strategy ? " \u00b7 strategy " + state.strategy : "");
    if (!accounts.length) {
      add(box, el("div", "empty", "No account yet: the EA's first hello creates one."));
      return;
    }
    accounts.forEach(function (a) { add(box, accountCard(a, limits, lev[a.login])); });
  }

  function renderEAs(state, health) {
    var box = clear($("eas"));
    var symbols = {};
    (state.symbols || []).forEach(function (s) {
      if (!s.tester) symbols[s.login + "/" + s.symbol] = s;
    });
    var eas = (health && health.eas) || [];
    var seen = {};
    var rows = eas.map(function (e) {
      var key = e.login + "/" + e.symbol;
      seen[key] = true;
      var s = symbols[key] || {};
      var status = e.stale ? el("span", "state-bad", "stale") : el("span", "state-ok", "live");
      if (e.day_offset_matches === false) status = el("span", "state-bad", "day offset differs");
      var tr = el("tr");
      tr.setAttribute("data-ea", key);
      var sym = cell(e.symbol);
      sym.setAttribute("data-k", "symbol");
      add(tr, cell(String(e.login)), sym, cell(s.timeframe || DASH),
        cell(s.bars !== undefined ? String(s.bars) : DASH, "r"),
        cell(s.warm === undefined ? DASH : s.warm ? "warm" : "warming up"),
        cell(duration(e.age_s) + " ago", "r"), cell(status));
      return tr;
    });
    Object.keys(symbols).forEach(function (key) {
      if (seen[key]) return;
      var s = symbols[key];
      var tr = el("tr");
      tr.setAttribute("data-ea", key);
      var sym = cell(s.symbol);
      sym.setAttribute("data-k", "symbol");
      add(tr, cell(String(s.login)), sym, cell(s.timeframe), cell(String(s.bars), "r"),
        cell(s.warm ? "warm" : "warming up"), cell(DASH, "r"),
        cell(el("span", "state-off", "no heartbeat")));
      rows.push(tr);
    });
    if (!rows.length) {
      add(box, el("div", "empty", "No EA has said hello since the sidecar started."));
      return;
    }
    add(box, table(["Account", "Symbol", "TF", ">Bars", "Warm-up", ">Heartbeat", "State"], rows));
  }

  function renderFeeds(state, health) {
    var box = clear($("feeds"));
    var feeds = (health && health.feeds) || {};
    var news = (health && health.news) || {};
    var rows = Object.keys(feeds).map(function (name) {
      var f = feeds[name];
      var ok = !f.stale;
      var tr = el("tr");
      tr.setAttribute("data-feed", name);
      add(tr, cell(name, "mono"), cell(f.age_s === null ? "never" : duration(f.age_s) + " ago", "r"),
        cell("every " + duration(f.interval_s), "r"),
        cell(el("span", ok ? "state-ok" : "state-bad", ok ? "fresh" : "stale")));
      return tr;
    });
    var line = el("div", "muted");
    line.style.marginBottom = "6px";
    if (news.enabled) add(line, el("span", "state-ok", "News gate on"));
    else add(line, el("span", "state-bad", "News gate off"), news.reason ? ": " + news.reason : "");
    var n = state.news;
    if (n && n.stale_policy) add(line, " \u00b7 stale policy " + n.stale_policy);
    if (n && n.blackout) {
      add(line, " \u00b7 blackout " + n.blackout.before_minutes + " min before / " +
        n.blackout.after_minutes + " min after");
    }
    add(box, line);
    if (rows.length) add(box, table(["Source", ">Last update", ">Interval", "State"], rows));
    else add(box, el("div", "empty", "No feed configured."));
  }

  function renderEvents(state) {
    var box = clear($("events"));
    var n = state.news;
    if (!n) {
      add(box, el("div", "empty", "The news service is not running in this process."));
      return;
    }
    var now = Date.now() / 1000;
    var events = (n.high_impact || []).slice().sort(function (a, b) { return a.time_gmt - b.time_gmt; });
    var rows = events.slice(0, 12).map(function (e) {
      var tr = el("tr");
      var when = e.time_gmt - now;
      var rel = when >= 0 ? "in " + duration(when) : duration(-when) + " ago";
      var name = cell(e.event, "wrap");
      name.setAttribute("data-k", "event");
      add(tr, cell(stamp(e.time_gmt) + " UTC"), cell(rel, "r" + (when < 0 ? " muted" : "")),
        cell(el("b", null, e.currency)), name, cell((e.sources || []).join(", "), "muted"));
      return tr;
    });
    if (rows.length) add(box, table(["Time", ">Starts", "Ccy", "Event", "Source"], rows));
    else add(box, el("div", "empty", "No high-impact event in the calendar window."));
  }

  // What a journal row records: a verdict, a run of holds, a refusal, a lock, or a change of
  // mode or leverage regime (rows without `kind` come from a journal of verdicts only).
  function kindCell(d) {
    var kind = d.kind || "verdict";
    var td = el("td");
    td.setAttribute("data-k", "kind");
    var label = kind;
    if (kind === "hold" && d.count > 1) label = "hold \u00d7" + d.count;
    add(td, el("span", "kind k-" + kind.replace(/[^a-z]/g, ""), label));
    var det = d.detail;
    if (det && typeof det === "object" && det.from !== undefined && det.to !== undefined) {
      add(td, el("span", "muted", " " + det.from + " \u2192 " + det.to));
    }
    return td;
  }

  function renderDecisions(decisions) {
    var box = clear($("decisions"));
    if (!decisions) { add(box, el("div", "empty", "The decision journal is not available.")); return; }
    if (!decisions.length) { add(box, el("div", "empty", "No decision yet.")); return; }
    var rows = decisions.map(function (d) {
      var v = d.verdict || {};
      var tr = el("tr");
      tr.setAttribute("data-decision", String(d.id));
      var list = Array.isArray(d.reasons) ? d.reasons : v.reasons || [];
      var reasons = el("td", "reasons");
      reasons.setAttribute("data-k", "reasons");
      list.forEach(function (r) { add(reasons, reasonChip(r)); });
      if (!list.length) add(reasons, el("span", "muted", DASH));
      var order = DASH;
      if (v.open) {
        order = v.open.side + " " + num(v.open.volume, 2) + " sl " + v.open.sl + " tp " + v.open.tp;
      } else if (v.close && v.close.length) {
        order = "close " + v.close.map(function (c) { return "#" + c.ticket; }).join(", ");
      }
      var when = cell(stamp(d.gmt));
      if (isNum(d.last_gmt) && d.last_gmt !== d.gmt) {
        add(when, el("div", "muted", "to " + stamp(d.last_gmt)));
      }
      add(tr, when, cell(String(d.login)), cell(d.symbol), kindCell(d), cell(badge(d.action)),
        cell(d.mode), cell(order, "mono"), reasons);
      return tr;
    });
    add(box, table(["Time (UTC)", "Account", "Symbol", "Entry", "Action", "Mode", "Order",
      "Reasons"], rows));
  }

  function renderTrades(trades) {
    var box = clear($("trades"));
    if (!trades) { add(box, el("div", "empty", "The trade journal is not available.")); return; }
    if (!trades.length) { add(box, el("div", "empty", "No deal reported yet.")); return; }
    var rows = trades.map(function (t) {
      var tr = el("tr");
      tr.setAttribute("data-deal", String(t.deal));
      var profit = cell(signed(t.profit), "r " + (t.profit > 0 ? "pos" : t.profit < 0 ? "neg" : ""));
      var comment = cell(t.comment || DASH, "wrap mono");
      comment.setAttribute("data-k", "comment");
      add(tr, cell(stamp(t.time)), cell(String(t.login)), cell(String(t.deal), "r"),
        cell(String(t.position), "r"), cell(t.symbol), cell(badge(t.side)), cell(badge(t.entry)),
        cell(num(t.volume, 2), "r"), cell(String(t.price), "r"), profit,
        cell(signed((t.commission || 0) + (t.swap || 0)), "r"), comment);
      return tr;
    });
    add(box, table(["Time (server)", "Account", ">Deal", ">Position", "Symbol", "Side", "Entry",
      ">Volume", ">Price", ">Profit", ">Costs", "Comment"], rows));
  }

  function renderHeader(health) {
    var p = $("health");
    p.hidden = !health;
    $("facts").hidden = !health;
    var status = (health && health.status) || "unknown";
    p.className = "pill " + status.replace(/[^a-z]/g, "");
    p.textContent = status;
    $("uptime").textContent = health ? duration(health.uptime_s) : DASH;
    $("database").textContent = health && health.database ? String(health.database.path) : DASH;
  }

  // Threshold labels under a meter that would overlap: the later (higher) one stays.
  function declutter() {
    var scales = document.querySelectorAll(".scale");
    for (var i = 0; i < scales.length; i++) {
      var spans = scales[i].querySelectorAll("span");
      var lastLeft = Infinity;
      for (var j = spans.length - 1; j >= 0; j--) {
        spans[j].classList.remove("hide");
        var r = spans[j].getBoundingClientRect();
        if (r.right + 6 > lastLeft) spans[j].classList.add("hide");
        else lastLeft = r.left;
      }
    }
  }

  // ------------------------------------------------------------------ flow

  function showAuth(message) {
    clear($("accounts"));
    ["eas", "feeds", "events", "decisions", "trades"].forEach(function (id) { clear($(id)); });
    $("content").hidden = true;
    $("auth").hidden = false;
    $("forget").hidden = true;
    var msg = $("auth-msg");
    msg.hidden = !message;
    msg.textContent = message || "";
    renderHeader(null);
    setLive(false, "token needed");
    var input = $("token-input");
    input.value = "";
    try { input.focus(); } catch (e) { /* headless */ }
  }

  function setLive(ok, text) {
    $("live-dot").className = "dot " + (ok ? "ok" : "bad");
    $("live-text").textContent = text;
  }

  function schedule() {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    timer = null;
    try {
      var state = await getJSON("/v1/state");
      var results = await Promise.all([
        getJSON("/health", true),
        getJSON("/v1/limits", true),
        getJSON("/v1/decisions?limit=20", true),
        getJSON("/v1/trades?limit=20", true),
      ]);
      var health = results[0];
      var decisions = results[2] ? results[2].decisions : null;
      var trades = results[3] ? results[3].trades : null;
      $("auth").hidden = true;
      $("content").hidden = false;
      $("forget").hidden = !currentToken();
      $("banner").hidden = true;
      renderHeader(health);
      renderAccounts(state, results[1], decisions);
      renderEAs(state, health);
      renderFeeds(state, health);
      renderEvents(state);
      renderDecisions(decisions);
      renderTrades(trades);
      declutter();
      setLive(true, "updated " + stamp(Date.now() / 1000).slice(11) + " UTC \u00b7 every " +
        REFRESH_MS / 1000 + " s");
      document.documentElement.setAttribute("data-loaded", "1");
      schedule();
    } catch (e) {
      if (e instanceof AuthError) {
        var had = currentToken();
        setToken("");
        showAuth(had ? "The sidecar refused this token (401). Enter the value of server.token " +
          "(or SIDECAR_TOKEN) from its configuration." : "");
        document.documentElement.setAttribute("data-auth", had ? "refused" : "needed");
      } else {
        var b = $("banner");
        b.hidden = false;
        b.textContent = "Not updated: " + e.message + ". Retrying every " + REFRESH_MS / 1000 +
          " s; the figures below may be old.";
        setLive(false, "not updated");
        schedule();
      }
    } finally {
      busy = false;
    }
  }

  function start() {
    $("token-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var value = $("token-input").value.trim();
      if (!value) return;
      setToken(value);
      $("auth-msg").hidden = true;
      refresh();
    });
    $("forget").addEventListener("click", function () {
      setToken("");
      refresh();
    });
    window.addEventListener("resize", declutter);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer !== null) { clearTimeout(timer); refresh(); }
    });
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
