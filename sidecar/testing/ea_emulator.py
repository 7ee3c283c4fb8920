"""EA emulator: N terminals x M charts of SidecarEA talking to one sidecar over ZeroMQ.

Used by the resilience tests and `bench/bench_load.py`. Each chart behaves as
`mql5/Experts/SidecarEA.mq5` with `mql5/Include/Sidecar/Transport.mqh` does on a live chart:

- transport: one ZeroMQ REQ socket per chart, LINGER 0, IMMEDIATE 1, RECONNECT_IVL 100 ms /
  RECONNECT_IVL_MAX 2 s; a send that cannot leave within the request's timeout is SEND_FAILED, a
  reply that does not come within it is TIMEOUT (`timeout_ms` for ticks, trades and heartbeats,
  `hello_timeout_ms` and `calendar_timeout_ms` for those two, as RequestTimeoutMs() does);
  after either the socket is closed and a fresh one opened (Lazy Pirate) and requests pause
  for `backoff_ms` (InpBackoffMs);
- a reply whose id is not the request's is dropped (ID_MISMATCH; an error with a null id is
  accepted); an `UNKNOWN_SYMBOL` error makes the chart send `hello` again, at once at most
  once per `hello_retry_s`, otherwise with the normal pacing;
- OnInit: `hello` with `warmup_bars` closed bars, retried every `hello_retry_s` until acked;
- OnTick: stops and targets hit by the price close positions (a deal), then up to 2 queued
  `trade` messages are flushed, then the tick is sent with every open position of the account
  and the bars closed since the last acknowledged tick; an in-time verdict is applied: `close` /
  `reduce` orders first, then an `open` when the EA's own checks pass (not halted, no trade
  message waiting, no position on the symbol, fewer than `max_positions`, signal not seen within
  `dup_window_s`, TP on the right side);
- OnTimer (1 s): up to 20 queued `trade` messages, a `heartbeat` every `heartbeat_s` and a
  `calendar` push every `calendar_s` (both at the first timer event, as the EA does);
- every deal (entry, exit, partial) is queued as a `trade` message with id `d-<deal>` and re-sent
  until acknowledged;
- MT5 drops a tick that arrives while OnTick is still running: so does the emulator (counted).

Market: real EURUSD H1 bars (backtesting.py's shipped `EURUSD`), each chart replaying them from
its own offset (time-shifted, so charts differ) re-based onto one common clock, as on a real
terminal: chart c of terminal t trades symbol `EURUSD.<c>` (one position per symbol, as on a
real account with one symbol per chart), and every chart's bar closes at the same wall-clock
moment, when all charts send their new-bar tick together. Ticks are scheduled open-loop at
`rate` ticks/s in total; within a bar the charts' ticks are staggered evenly.

Terminals run as separate processes (one thread each, a zmq Poller over its charts' sockets)
or, with `processes=False`, as threads of the caller (handy in tests).

API (stable)::

    from sidecar.testing.ea_emulator import EAEmulator, EmulatorConfig

    em = EAEmulator(EmulatorConfig(endpoint="tcp://127.0.0.1:5555", terminals=2, charts=4,
                                   rate=200.0))
    result = em.run(duration=10.0)          # or em.run(ticks=100_000); blocks, returns the result
    # or, in the background:
    em.start(duration=None, ticks=None)     # no limit: until stop()
    em.progress()                           # live counters summed over terminals (dict)
    em.stop()                               # finishes in-flight requests, joins, returns result
    em.result()                             # the EmulatorResult once stopped

    result.acked_deals      # list[AckedDeal]: every trade the sidecar acknowledged (login, deal,
                            #   position, symbol, entry, duplicate, wall time of the ack)
    result.acked_deal_keys()  # set of (login, deal)
    result.opened           # list[OpenedPosition]: position opened on a received `open` verdict,
                            #   with the verdict's id, signal id and the wall time it arrived
    result.reconnects       # list[Reconnect]: (login, symbol, down_since, back) wall times: the
                            #   first good reply (not UNKNOWN_SYMBOL: the chart known again)
                            #   after failed requests or an UNKNOWN_SYMBOL
    result.errors           # list[ErrorEvent] (bounded), result.error_counts: dict kind -> n
    result.counts           # dict: ticks_due, ticks_sent, ticks_skipped, verdicts, hellos ...
    result.actions          # dict: verdict action -> n;  result.chart_verdicts: "login/symbol" -> n
    result.rtt_us           # array of tick round trips (send -> verdict), µs
    result.sched_us         # array of scheduled tick time -> verdict, µs (includes trade flushes
                            #   and the emulator's own lateness: what the chart felt)
    result.next_bar()       # first_bar for a run continuing this one (same logins, same sidecar)
    result.bar_close_us()   # per bar close with every chart answered: scheduled close -> last
                            #   chart's verdict on its new-bar tick, µs

With `processes=True` (spawn) the caller's main module must be importable without side effects
(`if __name__ == "__main__":`), as multiprocessing requires. Wall times are `time.time()`;
latencies use `time.perf_counter()` (one clock for all processes).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing as mp
import threading
import time
import traceback
from array import array
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zmq

from sidecar.protocol import UNKNOWN_SYMBOL, Ack, ErrorReply, Verdict, decode_reply
from sidecar.testing import messages as M

# Transport.mqh results
TR_OK, TR_TIMEOUT, TR_SEND_FAILED = 0, 1, 2
# SidecarEA.mq5 Call() results
CALL_OK, CALL_NO_REPLY, CALL_BAD = 0, 1, 2

T0_SERVER = 1_767_571_200  # 2026-01-05 00:00 server time (a Monday): bar 0 of every chart
GMT_OFFSET = 7200  # a GMT+2 broker
MAX_TICK_BARS = 100  # EA_MAX_TICK_BARS
REHELLO_MIN_S = 2.0  # SidecarEA's HELLO_REHELLO_MIN_SEC: immediate re-hellos, at most one per 2 s
MAX_ERRORS_KEPT = 2000  # per terminal; counts go on
_COUNTERS = ("ticks_sent", "verdicts", "acked_deals", "opens", "failures", "reconnects")


@dataclass
class EmulatorConfig:
    endpoint: str
    terminals: int = 1
    charts: int = 1
    rate: float = 100.0  # offered ticks/s, all charts together
    ticks_per_bar: int = 8  # every chart's bar closes after this many of its ticks
    timeout_ms: int = 250  # InpTimeoutMs: ticks, trades, heartbeats
    hello_timeout_ms: int = 3000  # InpHelloTimeoutMs (warm-up bars)
    calendar_timeout_ms: int = 2000  # InpCalendarTimeoutMs
    backoff_ms: int = 1000  # InpBackoffMs
    hello_retry_s: float = 5.0  # InpHelloRetrySec
    heartbeat_s: float = 30.0  # InpHeartbeatSec (0 = off)
    calendar_s: float = 1800.0  # InpCalendarMin * 60 (0 = off)
    warmup_bars: int = 300  # InpWarmupBars
    max_positions: int = 3  # InpMaxPositions
    dup_window_s: int = 300  # InpDupWindowSec
    login_base: int = 7_000_000  # terminal t trades login login_base + t
    ticket_base: int | None = None  # first deal/position ticket; None = from the clock (unique)
    token: str | None = None
    spread_points: int = 7
    balance: float = 10_000.0
    lead_s: float = 0.5  # hello at start, first tick this much later
    warmup_ticks: int = 0  # per chart: ticks left out of the latency arrays
    processes: bool = True  # one process per terminal (else one thread per terminal)
    bar_stride: int = 97  # chart offsets into the bar series differ by this many bars
    # bar index of the first tick: a run that continues an earlier one against the same sidecar
    # (same logins) passes the earlier run's `next_bar()`, so the clock never goes back
    first_bar: int = 0


@dataclass
class AckedDeal:
    login: int
    deal: int
    position: int
    symbol: str
    entry: str
    duplicate: bool
    wall: float


@dataclass
class OpenedPosition:
    login: int
    symbol: str
    ticket: int
    side: str
    volume: float
    signal_id: str
    verdict_id: str
    verdict_wall: float  # when the open verdict arrived
    tick_gmt: int  # the GMT time of the tick it answered


@dataclass
class Reconnect:
    login: int
    symbol: str
    down_since: float
    back: float


@dataclass
class ErrorEvent:
    wall: float
    login: int
    symbol: str
    kind: str  # TIMEOUT, SEND_FAILED, BAD_REPLY, ID_MISMATCH, ERROR_REPLY <code>, LATE_VERDICT
    detail: str


@dataclass
class EmulatorResult:
    acked_deals: list[AckedDeal] = field(default_factory=list)
    opened: list[OpenedPosition] = field(default_factory=list)
    reconnects: list[Reconnect] = field(default_factory=list)
    errors: list[ErrorEvent] = field(default_factory=list)
    error_counts: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    actions: dict[str, int] = field(default_factory=dict)
    chart_verdicts: dict[str, int] = field(default_factory=dict)  # "login/symbol" -> verdicts
    rtt_us: array = field(default_factory=lambda: array("d"))
    sched_us: array = field(default_factory=lambda: array("d"))
    # bar index -> [charts answered, scheduled close, first new-bar tick sent, last verdict]
    # (perf_counter seconds: one clock for every process)
    bar_close: dict[int, list[float]] = field(default_factory=dict)
    chart_names: set[str] = field(default_factory=set)  # "login/symbol" of every chart
    last_bar: int = -1  # the newest bar any chart had a tick in

    def merge(self, other: EmulatorResult) -> None:
        self.acked_deals += other.acked_deals
        self.opened += other.opened
        self.reconnects += other.reconnects
        self.errors += other.errors
        for src, dst in (
            (other.error_counts, self.error_counts),
            (other.counts, self.counts),
            (other.actions, self.actions),
            (other.chart_verdicts, self.chart_verdicts),
        ):
            for k, v in src.items():
                dst[k] = dst.get(k, 0) + v
        self.rtt_us.extend(other.rtt_us)
        self.sched_us.extend(other.sched_us)
        for k, (n, sched, sent, got) in other.bar_close.items():
            mine = self.bar_close.setdefault(k, [0, sched, sent, got])
            if mine[0]:
                mine[2] = min(mine[2], sent)
                mine[3] = max(mine[3], got)
            mine[0] += n
        self.chart_names |= other.chart_names  # the same charts in a continuation run
        self.last_bar = max(self.last_bar, other.last_bar)

    @property
    def charts(self) -> int:
        return len(self.chart_names)

    def acked_deal_keys(self) -> set[tuple[int, int]]:
        return {(d.login, d.deal) for d in self.acked_deals}

    def bar_close_us(self) -> list[float]:
        """Scheduled bar close -> every chart's verdict on its new-bar tick, for the closes where
        every chart got one (a chart that skipped or failed its new-bar tick leaves it out)."""
        return [
            (got - sched) * 1e6 for n, sched, _, got in self.bar_close.values() if n >= self.charts
        ]

    def bar_close_from_send_us(self) -> list[float]:
        """The same from the first new-bar tick actually sent (without the emulator's own
        lateness in waking up at the scheduled moment)."""
        return [
            (got - sent) * 1e6 for n, _, sent, got in self.bar_close.values() if n >= self.charts
        ]

    def next_bar(self) -> int:
        """The bar a continuation run should start at (see EmulatorConfig.first_bar)."""
        return self.last_bar + 1

    def bar_closes_incomplete(self) -> int:
        return sum(1 for n, *_ in self.bar_close.values() if n < self.charts)


# ---------------------------------------------------------------- market replay


class Market:
    """One chart's bars: the shared series from `offset`, re-based onto the common clock (bar k
    opens at T0_SERVER + k*3600 for every chart) and scaled across wraps so prices stay
    continuous."""

    def __init__(self, rows: list[list[float]], offset: int, spread_points: int) -> None:
        self.rows = rows
        self.offset = offset
        self.n = len(rows)
        self.wrap = rows[-1][4] / rows[0][1]
        self.spread = spread_points * M.EURUSD_SPEC["point"]

    def bar(self, k: int) -> list[float]:
        i = self.offset + k
        cycle, j = divmod(i, self.n)
        f = self.wrap**cycle
        _, o, h, lo, c, v, _s = self.rows[j]
        return [
            T0_SERVER + k * 3600,
            round(o * f, 5),
            round(h * f, 5),
            round(lo * f, 5),
            round(c * f, 5),
            v,
            0.0,
        ]

    def price(self, k: int, i: int, per_bar: int) -> float:
        """Bid of tick i (0-based) of bar k: open, then towards the far extreme, the near one,
        and the close, as a bar is usually walked."""
        _, o, h, lo, c, _, _ = self.bar(k)
        path = [o, lo, h, c] if c >= o else [o, h, lo, c]
        if per_bar <= 1:
            return o
        x = 3 * i / (per_bar - 1)
        seg = min(int(x), 2)
        return round(path[seg] + (path[seg + 1] - path[seg]) * (x - seg), 5)


# ---------------------------------------------------------------- the EA


@dataclass
class _Req:
    mtype: str
    mid: str
    payload: bytes
    timeout_ms: int


@dataclass
class _Position:
    ticket: int
    symbol: str
    side: str
    volume: float
    price_open: float
    sl: float
    tp: float
    time: int
    comment: str
    mark: float  # the chart's latest bid

    def profit(self) -> float:
        diff = self.mark - self.price_open if self.side == "buy" else self.price_open - self.mark
        per_price = M.EURUSD_SPEC["tick_value"] / M.EURUSD_SPEC["tick_size"]
        return round(diff * per_price * self.volume, 2)


class _Account:
    """A terminal's account: balance, the EA's positions on every chart, deal tickets."""

    def __init__(self, login: int, balance: float, ticket_base: int) -> None:
        self.login = login
        self.balance = balance
        self.positions: dict[int, _Position] = {}
        self.next_ticket = ticket_base

    def ticket(self) -> int:
        self.next_ticket += 1
        return self.next_ticket

    def equity(self) -> float:
        return round(self.balance + sum(p.profit() for p in self.positions.values()), 2)


class _Chart:
    """SidecarEA on one chart: the event handlers are generators that yield each request and
    get (transport result, reply bytes) back, so they read like the MQL5 code."""

    def __init__(self, term: _Terminal, index: int, market: Market) -> None:
        cfg = term.cfg
        self.cfg = cfg
        self.term = term
        self.acc = term.account
        self.symbol = f"EURUSD.{index}"
        self.spec = {**M.EURUSD_SPEC, "name": self.symbol}
        self.market = market
        self.seq = 0
        self.hello_done = False
        self.last_hello_try = -math.inf
        self.last_rehello = -math.inf  # last immediate re-hello after UNKNOWN_SYMBOL
        self.retry_at = 0.0
        self.sidecar_ok = False
        self.down_since: float | None = None
        self.last_bar_sent = -1  # bar index; the hello sets it
        self.queue: list[tuple[str, dict[str, Any], int, str, str, int]] = []
        self.signals: dict[str, int] = {}  # signal id -> server time it was used
        self.last_heartbeat = -math.inf
        self.last_calendar = -math.inf
        self.bar_verdict = -1  # newest bar whose new-bar tick got a verdict
        self.ticks_done = 0
        # the event in progress
        self.gen: Generator[_Req, tuple[int, bytes | None], None] | None = None
        self.req: _Req | None = None
        self.tick_j = -1  # index of the tick being handled
        self.sent_at = 0.0
        self.current_bar = cfg.first_bar  # bar index of the newest tick seen
        # the chart's clock: its newest tick's server time
        self.server = T0_SERVER + cfg.first_bar * 3600
        self.sock: zmq.Socket | None = None
        self.g = term.index * cfg.charts + index  # position among all charts
        # driver state
        self.deadline = 0.0
        self.sending = False
        self.next_j = 0
        self.next_timer = 0.0

    # ------------------------------------------------------------ helpers

    def now_server(self) -> int:
        return max(self.server, self.term.sim_server)

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.seq}"

    def _with_token(self, msg: dict[str, Any]) -> dict[str, Any]:
        if self.cfg.token is not None:
            msg["token"] = self.cfg.token
        return msg

    def _error(self, kind: str, detail: str) -> None:
        self.term.error(self, kind, detail)

    def call(
        self, mtype: str, mid: str, msg: dict[str, Any]
    ) -> Generator[_Req, tuple[int, bytes | None], tuple[int, Any]]:
        """SidecarEA Call(): returns (CALL_*, the decoded reply or None)."""
        if time.perf_counter() < self.retry_at:
            self.sidecar_ok = False  # after a failure, requests pause briefly
            return CALL_NO_REPLY, None
        # RequestTimeoutMs(): a hello and a calendar push get longer than the per-tick requests
        timeout = {"hello": self.cfg.hello_timeout_ms, "calendar": self.cfg.calendar_timeout_ms}
        payload = msgspec.json.encode(self._with_token(msg))
        rc, raw = yield _Req(mtype, mid, payload, timeout.get(mtype, self.cfg.timeout_ms))
        if rc != TR_OK:
            self.retry_at = time.perf_counter() + self.cfg.backoff_ms / 1000
            self.sidecar_ok = False
            if self.down_since is None:
                self.down_since = time.time()
            self._error("TIMEOUT" if rc == TR_TIMEOUT else "SEND_FAILED", f"{mtype} {mid}")
            return CALL_NO_REPLY, None
        try:
            reply = decode_reply(raw or b"")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.sidecar_ok = False
            self._error("BAD_REPLY", f"{mtype} {mid}: {exc}")
            return CALL_BAD, None
        if reply.id != mid and not (isinstance(reply, ErrorReply) and reply.id is None):
            self.sidecar_ok = False  # a stale or foreign reply: dropped
            self._error("ID_MISMATCH", f"sent {mid} got {reply.id}")
            return CALL_BAD, None
        self.sidecar_ok = True
        forgotten = isinstance(reply, ErrorReply) and reply.error.code == UNKNOWN_SYMBOL
        if forgotten:
            # Not back yet: the sidecar answers but does not know the chart until its hello is
            # acknowledged (a chart idle during an outage sees no failure, only this).
            if self.down_since is None:
                self.down_since = time.time()
        elif self.down_since is not None:
            self.term.reconnected(self, self.down_since)
            self.down_since = None
        if isinstance(reply, ErrorReply):
            self._error(f"ERROR_REPLY {reply.error.code}", f"{mtype} {mid}: {reply.error.message}")
            if forgotten:
                # the sidecar restarted: introduce ourselves again, at once -- at most once per
                # REHELLO_MIN_S (more charts than the sidecar holds evict each other on every
                # hello), otherwise with the normal pacing (as SidecarEA)
                self.hello_done = False
                now = time.perf_counter()
                if now - self.last_rehello >= REHELLO_MIN_S:
                    self.last_rehello = now
                    self.last_hello_try = -math.inf
        return CALL_OK, reply

    # ------------------------------------------------------------ messages

    def send_hello(self) -> Generator[_Req, Any, bool]:
        self.last_hello_try = time.perf_counter()
        k = self.current_bar
        bars = [self.market.bar(b) for b in range(k - self.cfg.warmup_bars, k)]
        server = self.now_server()
        mid = self.next_id("h")
        msg = M.hello(
            self.acc.login,
            self.spec,
            bars,
            "H1",
            server,
            server - GMT_OFFSET,
            self.acc.balance,
            msg_id=mid,
        )
        msg["account"]["equity"] = self.acc.equity()
        msg["account"]["free_margin"] = self.acc.equity()
        rc, reply = yield from self.call("hello", mid, msg)
        if rc != CALL_OK or not isinstance(reply, Ack):
            return False
        self.hello_done = True
        self.last_bar_sent = k - 1
        self.term.count("hellos")
        return True

    def send_heartbeat(self) -> Generator[_Req, Any, None]:
        server = self.now_server()
        mid = self.next_id("b")
        msg = M.heartbeat(self.acc.login, self.symbol, server, server - GMT_OFFSET, mid)
        rc, reply = yield from self.call("heartbeat", mid, msg)
        if rc == CALL_OK and isinstance(reply, Ack):
            self.term.count("heartbeats")

    def send_calendar(self) -> Generator[_Req, Any, None]:
        # The terminal's calendar for the next days: the week's NFP-like USD release and an EUR
        # one, ids stable per day so re-sends update rather than add.
        gmt = self.now_server() - GMT_OFFSET
        day = gmt // 86400
        events = [
            M.calendar_event((day + 3) * 86400 + 48_600, f"emu-usd-{day}"),
            M.calendar_event(
                (day + 2) * 86400 + 32_400,
                f"emu-eur-{day}",
                "EUR",
                "medium",
                "German Ifo Business Climate",
                86.5,
                85.7,
            ),
        ]
        mid = self.next_id("c")
        msg = M.calendar(events, self.acc.login, mid)
        rc, reply = yield from self.call("calendar", mid, msg)
        if rc == CALL_OK and isinstance(reply, Ack):
            self.term.count("calendars")

    def queue_deal(
        self, pos: _Position, entry: str, volume: float, price: float, profit: float
    ) -> None:
        deal = self.acc.ticket()
        side = pos.side if entry == "in" else ("sell" if pos.side == "buy" else "buy")
        msg = M.trade(
            deal,
            self.acc.login,
            entry,
            profit,
            self.now_server(),
            pos.comment,
            pos.symbol,
            position=pos.ticket,
            commission=round(-3.5 * volume, 2),
        )
        msg.update(order=deal + 1, side=side, volume=volume, price=price)
        self.queue.append((msg["id"], msg, deal, pos.symbol, entry, pos.ticket))

    def flush_queue(self, max_messages: int) -> Generator[_Req, Any, bool]:
        """FlushQueue(): oldest first until one is not acknowledged; False = no answer."""
        answered = True
        sent = 0
        while self.queue and sent < max_messages:
            sent += 1
            mid, msg, deal, symbol, entry, position = self.queue[0]
            rc, reply = yield from self.call("trade", mid, dict(msg))
            self.term.count("trades_sent")
            if rc == CALL_NO_REPLY:
                answered = False
            drop = False
            if rc == CALL_OK and isinstance(reply, Ack):
                self.term.acked(
                    AckedDeal(
                        self.acc.login, deal, position, symbol, entry, reply.duplicate, time.time()
                    )
                )
                drop = True
            elif (
                rc == CALL_OK
                and isinstance(reply, ErrorReply)
                and reply.error.code in ("BAD_REQUEST", "BAD_JSON", "TOO_LARGE")
            ):
                drop = True  # never accepted: would block the queue (and entries) forever
            if not drop:
                break
            self.queue.pop(0)
        return answered

    # ------------------------------------------------------------ trading

    def _close(self, pos: _Position, volume: float, price: float) -> None:
        volume = round(min(volume, pos.volume), 2)
        pos.mark = price
        profit = round(pos.profit() * volume / pos.volume, 2)
        self.acc.balance = round(self.acc.balance + profit, 2)
        self.queue_deal(pos, "out", volume, price, profit)
        pos.volume = round(pos.volume - volume, 2)
        if pos.volume < M.EURUSD_SPEC["volume_min"] - 1e-9:
            del self.acc.positions[pos.ticket]

    def manage(self, bid: float, ask: float) -> None:
        """The broker's side of stops and targets: a hit closes the position (a deal)."""
        for pos in [p for p in self.acc.positions.values() if p.symbol == self.symbol]:
            pos.mark = bid if pos.side == "buy" else ask
            if pos.side == "buy":
                hit = (
                    pos.sl
                    if pos.sl and bid <= pos.sl
                    else pos.tp
                    if pos.tp and bid >= pos.tp
                    else 0
                )
            else:
                hit = (
                    pos.sl
                    if pos.sl and ask >= pos.sl
                    else pos.tp
                    if pos.tp and ask <= pos.tp
                    else 0
                )
            if hit:
                self._close(pos, pos.volume, hit)
                self.term.count("stops_hit")

    def apply(self, verdict: Verdict, bid: float, ask: float, gmt: int) -> None:
        for order in verdict.close:
            pos = self.acc.positions.get(order.ticket)
            if pos is None or pos.symbol != self.symbol:
                self.term.count("close_unknown_ticket")
                continue
            self._close(pos, order.volume, bid if pos.side == "buy" else ask)
            self.term.count("closes")
        o = verdict.open
        if o is None or verdict.action != "open":
            return
        refusal = self._refuse(verdict, bid, ask)
        if refusal:
            self.term.count(f"refused {refusal}")
            return
        server = self.now_server()
        price = ask if o.side == "buy" else bid
        pos = _Position(
            self.acc.ticket(),
            self.symbol,
            o.side,
            o.volume,
            price,
            o.sl,
            o.tp,
            server,
            f"sc:{o.signal_id}"[:31],
            bid if o.side == "buy" else ask,
        )
        self.signals[o.signal_id] = server
        self.acc.positions[pos.ticket] = pos
        self.queue_deal(pos, "in", o.volume, price, 0.0)
        self.term.opened_position(
            OpenedPosition(
                self.acc.login,
                self.symbol,
                pos.ticket,
                o.side,
                o.volume,
                o.signal_id,
                verdict.id or "",
                time.time(),
                gmt,
            )
        )

    def _refuse(self, verdict: Verdict, bid: float, ask: float) -> str:
        """The EA's own checks before an entry (Guard and ApplyOpen), in a short form."""
        o = verdict.open
        assert o is not None
        if verdict.mode == "halted":
            return "HALTED"
        if self.queue:
            return "DEALS_PENDING"
        buy = o.side == "buy"
        if (o.tp <= ask) if buy else (o.tp >= bid):
            return "BAD_TP"
        if not ((o.sl < bid) if buy else (o.sl > ask)):
            return "BAD_STOP"
        mine = [p for p in self.acc.positions.values()]
        if any(p.symbol == self.symbol for p in mine):
            return "SYMBOL_POSITION"
        if len(mine) >= self.cfg.max_positions:
            return "MAX_POSITIONS"
        used = self.signals.get(o.signal_id)
        if used is not None and self.now_server() - used < self.cfg.dup_window_s:
            return "DUPLICATE_SIGNAL"
        return ""

    def send_tick(self, j: int) -> Generator[_Req, Any, None]:
        k, i = self.term.bar_of(j)
        bid = self.market.price(k, i, self.cfg.ticks_per_bar)
        ask = round(bid + self.market.spread, 5)
        server = self.now_server()
        gmt = server - GMT_OFFSET
        positions = [
            M.position(p.ticket, p.symbol, p.side, p.volume, p.price_open, p.profit(), p.comment)
            | {"sl": p.sl, "tp": p.tp, "time": p.time}
            for p in self.acc.positions.values()
        ]
        last_closed = k - 1
        first = max(self.last_bar_sent + 1, last_closed - MAX_TICK_BARS + 1)
        bars = [self.market.bar(b) for b in range(first, last_closed + 1)]
        mid = self.next_id("t")
        equity = self.acc.equity()
        msg = M.tick(
            server,
            bid,
            ask,
            self.acc.login,
            self.symbol,
            "H1",
            equity,
            self.acc.balance,
            positions,
            bars,
            gmt,
            mid,
        )
        self.term.count("ticks_sent")
        sent = time.perf_counter()
        rc, reply = yield from self.call("tick", mid, msg)
        if rc != CALL_OK or not isinstance(reply, Verdict):
            return
        got = time.perf_counter()
        self.last_bar_sent = max(self.last_bar_sent, last_closed)
        self.term.verdict(self, j, reply.action, sent, got)
        # NowGmt() at the reply: the tick's time plus the time the reply took
        if gmt + (got - sent) > reply.valid_until:
            self._error("LATE_VERDICT", f"{mid} valid_until={reply.valid_until}")
            return
        self.apply(reply, bid, ask, gmt)

    # ------------------------------------------------------------ events

    def on_init(self) -> Generator[_Req, Any, None]:
        yield from self.send_hello()  # failure is fine: retried on ticks and on the timer

    def on_tick(self, j: int) -> Generator[_Req, Any, None]:
        k, i = self.term.bar_of(j)
        self.current_bar = k
        self.term.result.last_bar = max(self.term.result.last_bar, k)
        self.server = T0_SERVER + k * 3600 + i * 3600 // self.cfg.ticks_per_bar + 1
        bid = self.market.price(k, i, self.cfg.ticks_per_bar)
        self.manage(bid, round(bid + self.market.spread, 5))  # never waits for the sidecar
        if (
            not self.hello_done
            and time.perf_counter() - self.last_hello_try >= self.cfg.hello_retry_s
        ):
            yield from self.send_hello()
        if self.hello_done and (yield from self.flush_queue(2)):
            yield from self.send_tick(j)
        else:
            self.sidecar_ok = False
            self.term.count("ticks_not_sent")

    def on_timer(self) -> Generator[_Req, Any, None]:
        now = time.perf_counter()
        if not self.hello_done and now - self.last_hello_try >= self.cfg.hello_retry_s:
            yield from self.send_hello()
        if self.hello_done and (yield from self.flush_queue(20)):
            if self.cfg.heartbeat_s > 0 and now - self.last_heartbeat >= self.cfg.heartbeat_s:
                self.last_heartbeat = now
                yield from self.send_heartbeat()
            if self.cfg.calendar_s > 0 and now - self.last_calendar >= self.cfg.calendar_s:
                self.last_calendar = now
                yield from self.send_calendar()


# ---------------------------------------------------------------- one terminal's event loop


class _Terminal:
    """One terminal: its charts in one thread, their REQ sockets under one zmq Poller."""

    def __init__(
        self,
        cfg: EmulatorConfig,
        index: int,
        rows: list[list[float]],
        start_at: float,
        stop: Any,
        counters: Any,
        max_ticks: int | None,
        end_at: float | None,
    ) -> None:
        self.cfg = cfg
        self.index = index
        self.stop_flag = stop
        self.counters = counters
        self.start_at = start_at
        self.first_tick_at = start_at + cfg.lead_s
        self.n_total = cfg.terminals * cfg.charts
        self.interval = self.n_total / cfg.rate  # one chart's time between ticks
        self.max_ticks = None if max_ticks is None else math.ceil(max_ticks / self.n_total)
        self.end_at = end_at
        base = cfg.ticket_base if cfg.ticket_base is not None else time.time_ns() // 1_000
        self.account = _Account(cfg.login_base + index, cfg.balance, base)
        self.result = EmulatorResult()
        self.sim_server = T0_SERVER + cfg.first_bar * 3600
        self.charts: list[_Chart] = []
        span = len(rows) - cfg.warmup_bars
        for c in range(cfg.charts):
            g = index * cfg.charts + c  # charts differ across terminals too
            offset = cfg.warmup_bars + (g * cfg.bar_stride) % max(span, 1)
            self.charts.append(_Chart(self, c, Market(rows, offset, cfg.spread_points)))
            self.result.chart_names.add(f"{self.account.login}/{self.charts[-1].symbol}")
        self.ctx = zmq.Context()
        self.poller = zmq.Poller()
        self.owner: dict[zmq.Socket, _Chart] = {}

    # ------------------------------------------------------------ records

    def count(self, key: str, n: int = 1) -> None:
        self.result.counts[key] = self.result.counts.get(key, 0) + n
        if key in _COUNTERS:
            self.counters[self.index * len(_COUNTERS) + _COUNTERS.index(key)] += n

    def error(self, chart: _Chart, kind: str, detail: str) -> None:
        r = self.result
        r.error_counts[kind] = r.error_counts.get(kind, 0) + 1
        if kind in ("TIMEOUT", "SEND_FAILED"):
            self.count("failures")
        if len(r.errors) < MAX_ERRORS_KEPT:
            r.errors.append(ErrorEvent(time.time(), self.account.login, chart.symbol, kind, detail))

    def reconnected(self, chart: _Chart, since: float) -> None:
        self.result.reconnects.append(
            Reconnect(self.account.login, chart.symbol, since, time.time())
        )
        self.count("reconnects")

    def acked(self, deal: AckedDeal) -> None:
        self.result.acked_deals.append(deal)
        self.count("acked_deals")

    def opened_position(self, opened: OpenedPosition) -> None:
        self.result.opened.append(opened)
        self.count("opens")

    def verdict(self, chart: _Chart, j: int, action: str, sent: float, got: float) -> None:
        r = self.result
        self.count("verdicts")
        r.actions[action] = r.actions.get(action, 0) + 1
        key = f"{self.account.login}/{chart.symbol}"
        r.chart_verdicts[key] = r.chart_verdicts.get(key, 0) + 1
        chart.ticks_done += 1
        if chart.ticks_done > self.cfg.warmup_ticks:
            r.rtt_us.append((got - sent) * 1e6)
            r.sched_us.append((got - self.tick_time(chart, j)) * 1e6)
        k, i = self.bar_of(j)
        if i == 0 and k > chart.bar_verdict:
            chart.bar_verdict = k  # this chart's new-bar tick has its verdict
            sched = self.tick_time(chart, j)
            entry = r.bar_close.setdefault(k, [0, sched, sent, got])
            if entry[0]:
                entry[2] = min(entry[2], sent)
                entry[3] = max(entry[3], got)
            entry[0] += 1

    # ------------------------------------------------------------ schedule

    def bar_of(self, j: int) -> tuple[int, int]:
        """(bar index, tick within the bar) of a chart's tick j."""
        k, i = divmod(j, self.cfg.ticks_per_bar)
        return self.cfg.first_bar + k, i

    def tick_time(self, chart: _Chart, j: int) -> float:
        """Every chart's first tick of a bar at the same moment; the rest staggered."""
        t = self.first_tick_at + j * self.interval
        if j % self.cfg.ticks_per_bar:
            t += self.interval * (chart.g + 0.5) / self.n_total
        return t

    # ------------------------------------------------------------ transport

    def _open(self, chart: _Chart) -> None:
        self._close(chart)
        s = self.ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.IMMEDIATE, 1)
        s.setsockopt(zmq.RCVTIMEO, self.cfg.timeout_ms)
        s.setsockopt(zmq.SNDTIMEO, self.cfg.timeout_ms)
        s.setsockopt(zmq.RECONNECT_IVL, 100)
        s.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        s.connect(self.cfg.endpoint)
        chart.sock = s
        self.owner[s] = chart

    def _close(self, chart: _Chart) -> None:
        if chart.sock is not None:
            if chart.sock in self.owner:
                self.owner.pop(chart.sock)
                with contextlib.suppress(KeyError):
                    self.poller.unregister(chart.sock)
            chart.sock.close(linger=0)
            chart.sock = None

    def _advance(self, chart: _Chart, result: tuple[int, bytes | None] | None) -> None:
        """Run the chart's handler until its next request (sent or waiting to be sent)."""
        assert chart.gen is not None
        try:
            req = next(chart.gen) if result is None else chart.gen.send(result)
        except StopIteration:
            chart.gen = None
            chart.req = None
            return
        chart.req = req
        chart.deadline = time.perf_counter() + req.timeout_ms / 1000
        assert chart.sock is not None
        try:
            chart.sock.send(req.payload, zmq.NOBLOCK)
            chart.sending = False
            self.poller.register(chart.sock, zmq.POLLIN)
        except zmq.Again:
            # no connected peer (IMMEDIATE): zmq_send blocks up to SNDTIMEO in the EA
            chart.sending = True
            self.poller.register(chart.sock, zmq.POLLOUT)

    def _fail(self, chart: _Chart, rc: int) -> None:
        self._open(chart)  # Lazy Pirate: a fresh socket
        self._advance(chart, (rc, None))

    # ------------------------------------------------------------ loop

    def run(self) -> EmulatorResult:
        cfg = self.cfg
        for chart in self.charts:
            chart.deadline = 0.0
            chart.sending = False
            chart.next_j = 0
            chart.next_timer = self.start_at + 1.0
            self._open(chart)
        while time.perf_counter() < self.start_at:
            time.sleep(min(0.05, max(0.0, self.start_at - time.perf_counter())))
        for chart in self.charts:
            chart.gen = chart.on_init()
            self._advance(chart, None)
        stopping = False
        while True:
            now = time.perf_counter()
            stopping = stopping or bool(self.stop_flag.is_set())
            if self.end_at is not None and now >= self.end_at:
                stopping = True
            self.sim_server = (
                T0_SERVER
                + cfg.first_bar * 3600
                + int(
                    max(0.0, now - self.first_tick_at) / (self.interval * cfg.ticks_per_bar) * 3600
                )
            )
            busy = False
            wake = now + 0.05
            for chart in self.charts:
                if chart.gen is not None:
                    busy = True
                    if now >= chart.deadline:
                        self._fail(chart, TR_SEND_FAILED if chart.sending else TR_TIMEOUT)
                    if chart.gen is not None:
                        wake = min(wake, chart.deadline)
                        continue
                if stopping:
                    continue
                self._start_event(chart, now)
                if chart.gen is not None:
                    busy = True
                    wake = min(wake, chart.deadline)
                else:
                    wake = min(wake, self.tick_time(chart, chart.next_j), chart.next_timer)
            if stopping and not busy:
                break
            done = self.max_ticks is not None and all(
                c.next_j >= self.max_ticks for c in self.charts
            )
            if done and not busy:
                break
            left = wake - time.perf_counter()
            if not self.poller.sockets:
                # zmq_poll over no socket returns at once: sleep instead of spinning
                if left > 0:
                    time.sleep(left)
                continue
            # whole milliseconds, rounded up: no busy spinning (a wake-up is at most 1 ms late)
            for sock, ev in self.poller.poll(max(0, math.ceil(left * 1000))):
                chart = self.owner.get(sock)
                if chart is None or chart.gen is None:
                    continue
                if ev & zmq.POLLIN and not chart.sending:
                    raw = sock.recv(zmq.NOBLOCK)
                    self.poller.unregister(sock)
                    self._advance(chart, (TR_OK, raw))
                elif ev & zmq.POLLOUT and chart.sending:
                    assert chart.req is not None
                    sock.send(chart.req.payload, zmq.NOBLOCK)
                    chart.sending = False
                    chart.deadline = time.perf_counter() + chart.req.timeout_ms / 1000
                    self.poller.modify(sock, zmq.POLLIN)
        for chart in self.charts:
            self._close(chart)
        self.ctx.term()
        return self.result

    def _start_event(self, chart: _Chart, now: float) -> None:
        """The terminal's event queue for an idle chart: the due tick (the newest: ticks that
        came while OnTick was running were dropped, as MT5 does), else the timer."""
        limit = self.max_ticks
        if limit is None or chart.next_j < limit:
            due = chart.next_j
            while (limit is None or due + 1 < limit) and self.tick_time(chart, due + 1) <= now:
                due += 1
            if self.tick_time(chart, due) <= now and (self.end_at is None or now < self.end_at):
                self.count("ticks_due", due - chart.next_j + 1)
                if due > chart.next_j:
                    self.count("ticks_skipped", due - chart.next_j)
                chart.next_j = due + 1
                chart.gen = chart.on_tick(due)
                self._advance(chart, None)
                return
        if now >= chart.next_timer:
            chart.next_timer = now + 1.0
            chart.gen = chart.on_timer()
            self._advance(chart, None)


def _terminal_main(
    cfg: EmulatorConfig,
    index: int,
    rows: list[list[float]],
    start_at: float,
    stop: Any,
    counters: Any,
    max_ticks: int | None,
    end_at: float | None,
    out: Any,
) -> None:
    try:
        result: EmulatorResult | str = _Terminal(
            cfg, index, rows, start_at, stop, counters, max_ticks, end_at
        ).run()
    except BaseException:  # the parent raises it: a broken terminal must not pass for a quiet one
        result = traceback.format_exc()
    out.send(result)
    out.close()


# ---------------------------------------------------------------- the emulator


_ROWS: list[list[float]] | None = None


def eurusd_rows() -> list[list[float]]:
    global _ROWS
    if _ROWS is None:
        _ROWS = M.eurusd_rows()
    return _ROWS


class EAEmulator:
    """N terminals x M charts against one endpoint. See the module docstring for the API."""

    def __init__(self, config: EmulatorConfig) -> None:
        if config.terminals < 1 or config.charts < 1 or config.rate <= 0:
            raise ValueError("terminals, charts and rate must be positive")
        if config.ticks_per_bar < 1:
            raise ValueError("ticks_per_bar must be >= 1")
        self.config = config
        self._workers: list[Any] = []
        self._pipes: list[Any] = []
        self._threads_results: list[EmulatorResult | str | None] = []
        self._result: EmulatorResult | None = None
        n = config.terminals * len(_COUNTERS)
        if config.processes:
            self._mp = mp.get_context("spawn")  # no inherited zmq context, works on Windows
            self._stop: Any = self._mp.Event()
            self._counters: Any = self._mp.RawArray("q", n)
        else:
            self._stop = threading.Event()
            self._counters = [0] * n

    def start(self, duration: float | None = None, ticks: int | None = None) -> EAEmulator:
        """Starts every terminal; ticks stop after `duration` seconds or `ticks` ticks in total
        (whichever first), or at stop()."""
        cfg = self.config
        rows = eurusd_rows()
        # processes need time to start (spawn imports the package) before the common start
        start_at = time.perf_counter() + (1.5 + 0.2 * cfg.terminals if cfg.processes else 0.05)
        end_at = None if duration is None else start_at + cfg.lead_s + duration
        for t in range(cfg.terminals):
            if cfg.processes:
                recv_end, send_end = self._mp.Pipe(duplex=False)
                p = self._mp.Process(
                    target=_terminal_main,
                    args=(
                        cfg,
                        t,
                        rows,
                        start_at,
                        self._stop,
                        self._counters,
                        ticks,
                        end_at,
                        send_end,
                    ),
                    daemon=True,
                    name=f"ea-terminal-{t}",
                )
                p.start()
                send_end.close()
                self._workers.append(p)
                self._pipes.append(recv_end)
            else:
                self._threads_results.append(None)

                def work(t: int = t) -> None:
                    try:
                        self._threads_results[t] = _Terminal(
                            cfg, t, rows, start_at, self._stop, self._counters, ticks, end_at
                        ).run()
                    except BaseException:
                        self._threads_results[t] = traceback.format_exc()

                th = threading.Thread(target=work, name=f"ea-terminal-{t}", daemon=True)
                th.start()
                self._workers.append(th)
        return self

    def progress(self) -> dict[str, int]:
        """Live counters summed over the terminals."""
        k = len(_COUNTERS)
        values = list(self._counters)
        return {
            name: sum(values[t * k + i] for t in range(self.config.terminals))
            for i, name in enumerate(_COUNTERS)
        }

    def wait(self, timeout: float | None = None) -> EmulatorResult | None:
        """Waits for the terminals to finish their duration/ticks; the result, or None if they
        are still running after `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        results: list[EmulatorResult] = []
        if self.config.processes:
            for pipe in self._pipes:
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not pipe.poll(left):
                    return None
            got = [pipe.recv() for pipe in self._pipes]
            for p in self._workers:
                p.join(10)
            for r in got:
                if isinstance(r, str):
                    raise RuntimeError(f"an emulated terminal failed:\n{r}")
                results.append(r)
        else:
            for th in self._workers:
                th.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                if th.is_alive():
                    return None
            for r in self._threads_results:
                if isinstance(r, str):
                    raise RuntimeError(f"an emulated terminal failed:\n{r}")
                if r is not None:
                    results.append(r)
        merged = EmulatorResult()
        for r in results:
            merged.merge(r)
        self._result = merged
        return merged

    def stop(self, timeout: float = 30.0) -> EmulatorResult:
        """Stops every chart after its request in flight (if any) is answered or times out."""
        if self._result is not None:
            return self._result
        self._stop.set()
        result = self.wait(timeout)
        if result is None:
            for p in self._workers:
                if self.config.processes:
                    p.kill()
            raise RuntimeError("the emulator's terminals did not stop")
        return result

    def run(self, duration: float | None = None, ticks: int | None = None) -> EmulatorResult:
        if duration is None and ticks is None:
            raise ValueError("run() needs a duration or a number of ticks (else start/stop)")
        self.start(duration, ticks)
        result = self.wait()
        assert result is not None
        return result

    def result(self) -> EmulatorResult:
        if self._result is None:
            raise RuntimeError("no result yet: stop() or wait() first")
        return self._result

    def __enter__(self) -> EAEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._workers and self._result is None:
            self.stop()
