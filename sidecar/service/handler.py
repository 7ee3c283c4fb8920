"""The one request handler both transports call: bytes in, bytes out, never an exception.

The decisions and the state they need live in the kernel (`sidecar.kernel.Kernel`), which the
backtester runs too; this is its imperative shell: token check, persistence of what the kernel
says changed (before the reply when it must survive a crash), heartbeats, the journal, metrics and
logs. A lock serialises requests from the ZeroMQ thread and the HTTP workers; the per-tick work
inside it is a few tens of microseconds.

When the database cannot be written (read-only, disk full, I/O error) the service keeps
answering but acknowledges nothing it could not write: entries are held back
(`STORE_WRITE_FAILED`, an entry's signal id must be on file first) while closes and management
go out, deals and calendar pushes get the `STORE_WRITE_FAILED` error (the EA sends them again),
and the states decided meanwhile are written, and entries resume, at the first write that works
(tried at most once a second, on a request or on /health).
"""

from __future__ import annotations

import functools
import hmac
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sidecar.config import Config
from sidecar.engine import reasons as R
from sidecar.engine.decide import Engine
from sidecar.engine.leverage import open_notional
from sidecar.engine.state import AccountState
from sidecar.kernel import Kernel, SymbolContext
from sidecar.protocol import (
    INTERNAL,
    STORE_WRITE_FAILED,
    UNAUTHORIZED,
    Ack,
    Calendar,
    EALimits,
    Heartbeat,
    Hello,
    ProtocolError,
    Tick,
    Trade,
    Verdict,
    decode,
    encode,
    error_reply,
    read_token,
    type_of,
)
from sidecar.service.logs import RateLimitedEvents, event
from sidecar.service.metrics import Metrics
from sidecar.store import Store

log = logging.getLogger("sidecar.service")

# Bounds on what untrusted messages can make the service remember (MAX_SYMBOLS: the kernel's).
MAX_HEARTBEATS = 1024
HEARTBEAT_FORGET_SECONDS = 24 * 3600  # /health stops listing an EA silent for a day
# `request.invalid` lines: enough to diagnose one broken EA, not a disk filled by a fuzzer.
INVALID_LOG_LINES, INVALID_LOG_SECONDS = 20, 10.0

# While writes fail, how often a request (or /health) tries the database again.
STORE_RETRY_SECONDS = 1.0


@functools.lru_cache(maxsize=4096)
def _leverage_reasons(verdict_key: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """The LEVERAGE_CAP reason and the LEVERAGE_CUT reasons of a verdict's `(action, *reasons)`:
    the same few verdicts repeat tick after tick, so the scan runs once per distinct verdict."""
    cap = next((r for r in verdict_key[1:] if r.startswith("LEVERAGE_CAP ")), None)
    return cap, tuple(r for r in verdict_key[1:] if r.startswith("LEVERAGE_CUT "))


@dataclass
class HeartbeatInfo:
    login: int
    symbol: str
    ea_gmt: int
    received: float  # wall clock, for /health only
    day_offset_hours: float | None = None  # the EA's broker-day offset, from its last hello
    limits: EALimits | None = None  # the EA's hard-limit inputs, from its last hello


# The EA's hard limits (hello `ea.limits`) against the sidecar's own configuration: (field, config
# key, +1 when a higher EA value is looser, -1 when a lower one is: a lower equity floor, or 0 =
# off, lets the account fall further).
LIMIT_CHECKS = (
    ("max_risk_pct", "risk.max_risk_pct", 1),
    ("max_leverage", "leverage.profit", 1),  # the highest cap the sidecar ever grants
    ("daily_loss_pct", "risk.daily_loss_pct", 1),
    ("floating_loss_pct", "risk.floating_loss_pct", 1),
    ("max_drawdown_pct", "risk.drawdown_halted_pct", 1),
    ("max_positions", "risk.max_positions", 1),
    ("equity_floor_pct", "risk.equity_floor_pct", -1),
)


def sidecar_limits(config: Config) -> dict[str, float]:
    """The sidecar's value of each EA hard limit, by the EA's field name."""
    out = {}
    for name, key, _ in LIMIT_CHECKS:
        section, attr = key.split(".")
        out[name] = getattr(getattr(config, section), attr)
    return out


def looser_limits(ea: EALimits, config: Config) -> list[dict[str, Any]]:
    """The EA's hard limits that let more through than the sidecar's configuration (none: [])."""
    ours = sidecar_limits(config)
    return [
        {"limit": name, "ea": getattr(ea, name), "sidecar": ours[name], "config": key}
        for name, key, sign in LIMIT_CHECKS
        if sign * (getattr(ea, name) - ours[name]) > 1e-9
    ]


def same_day_offset(a: float, b: float) -> bool:
    """Whether two offsets start the broker day at the same time of day (23 h and -1 h do: the
    day numbers differ, the daily-loss boundaries do not). Offsets are whole minutes on both
    sides (config and EA validate it)."""
    return round(a * 60) % 1440 == round(b * 60) % 1440


@dataclass
class StoreFault:
    """Writes to the database fail (read-only file, disk full, I/O error): since when, why."""

    error: str
    operation: str  # what failed first: save_state, trade, calendar, event, resume
    since: float  # wall clock, for /health only
    retry_at: float = 0.0  # monotonic
    attempts: int = 0


@dataclass
class FeedStatus:
    name: str
    interval_s: float
    last_ok: float | None = None  # wall clock
    detail: dict[str, Any] = field(default_factory=dict)


class Sidecar:
    def __init__(
        self, config: Config, store: Store, engine: Engine | None = None, is_tester: bool = False
    ) -> None:
        self.is_tester = is_tester
        self._tester_book: Sidecar | None = None  # Strategy Tester sessions, in memory only
        self.config = config
        self.store = store
        self.metrics = Metrics()
        self.lock = threading.RLock()
        # The decisions and the state behind them; Kelly statistics are read from the store once
        # per login, then kept current by `trade`.
        self.kernel = Kernel(
            config,
            engine or Engine(config),
            tester=is_tester,
            states=store.load_states(),
            deals=store.position_deals,
        )
        self.heartbeats: dict[tuple[int, str], HeartbeatInfo] = {}
        self.feeds: dict[str, FeedStatus] = {}
        # Write faults: while set, entries are blocked (STORE_WRITE_FAILED) and deals are not
        # acknowledged; `_unsaved` are the logins whose newest risk state is not on file.
        self.store_fault: StoreFault | None = None
        self._unsaved: set[int] = set()
        self._after: list[Callable[[], None]] = []  # bookkeeping deferred past the reply
        self._invalid_log = RateLimitedEvents(
            log, "request.invalid", INVALID_LOG_LINES, INVALID_LOG_SECONDS
        )
        # The last LEVERAGE_CAP reason per login: `leverage.regime` logs when its regime changes,
        # and an unchanged reason is not parsed again.
        self._caps: dict[int, str] = {}
        # Per login: (effective leverage, cap, regime) of the newest verdict, for /v1/state.
        self._leverage: dict[int, tuple[float | None, int, str | None]] = {}
        # Set by the feeds service (sidecar/service/feeds.py): whether EODHD is configured, the
        # `news` part of /v1/state, and a hook told when the EA pushes its calendar.
        self.news_configured = False
        self.news_report: Callable[[], dict[str, Any]] | None = None
        self.on_calendar: Callable[[], None] | None = None
        self.started = time.time()
        store.configure_journal(config.journal.retention_rows, config.journal.retention_days)
        for login, st in self.states.items():
            self.metrics.account(login, st)
        self.metrics.bind(self)

    @property
    def engine(self) -> Engine:
        return self.kernel.engine

    @property
    def states(self) -> dict[int, AccountState]:
        return self.kernel.states

    @property
    def symbols(self) -> dict[tuple[int, str, str], SymbolContext]:
        return self.kernel.symbols

    # ------------------------------------------------------------ entry point

    def handle(
        self,
        raw: bytes,
        transport: str = "zmq",
        bearer: str | None = None,
        expect_type: str | None = None,
    ) -> tuple[bytes, str | None]:
        """Answer one raw request. Returns (reply bytes, error code or None).

        With a token configured it is checked before anything else is said about the message:
        `bearer` (HTTP's header; the transport checked it already) or the message's top-level
        `token` field, read without validating the rest. Only the size comes first (TOO_LARGE:
        an oversized message is not parsed at all)."""
        t0 = time.perf_counter()
        request_id = None
        try:
            if self.config.server.token:
                if bearer is not None:
                    self._authorize(None, bearer, None)
                else:
                    token, token_id = read_token(raw, self.config.server.max_message_bytes)
                    self._authorize(token, None, token_id)
            msg = decode(raw, self.config.server.max_message_bytes)
            request_id = msg.id
            msg_type = type_of(msg)
            if expect_type is not None and msg_type != expect_type:
                raise ProtocolError(
                    "BAD_REQUEST",
                    f"type: this endpoint takes {expect_type!r}, got {msg_type!r}",
                    msg.id,
                )
            book = self._book_for(msg)
            with book.lock:
                if book._after:
                    book._run_after()  # a transport that did not call after_reply()
                reply = book._dispatch(msg, msg_type, transport)
            out = reply if isinstance(reply, bytes) else encode(reply)
            if isinstance(msg, Tick):
                self.metrics.observe_latency(transport, time.perf_counter() - t0)
            return out, None
        except ProtocolError as exc:
            if exc.code != STORE_WRITE_FAILED:  # a valid message: logged as not recorded
                self.metrics.count_invalid(exc.code, transport)
                self._invalid_log(
                    logging.WARNING,
                    exc.message,
                    code=exc.code,
                    transport=transport,
                    request_id=exc.request_id,
                )
            return encode(error_reply(exc.code, exc.message, exc.request_id)), exc.code
        except Exception as exc:  # the REP socket must always answer; log and report
            log.exception(
                "request failed", extra={"event": "request.internal_error", "transport": transport}
            )
            self.metrics.count_invalid(INTERNAL, transport)
            return (
                encode(error_reply(INTERNAL, f"internal error: {type(exc).__name__}", request_id)),
                INTERNAL,
            )

    def _book_for(self, msg: Any) -> Sidecar:
        """Live messages are handled here; Strategy Tester ones by a separate, in-memory book.
        The tester reports the real account's login, so sharing state would let a backtest move
        the live account's anchors, locks and bar history."""
        tester = msg.ea.tester if isinstance(msg, Hello) else getattr(msg, "tester", False)
        if not tester or self.is_tester:
            return self
        with self.lock:
            if self._tester_book is None:
                self._tester_book = Sidecar(
                    self.config,
                    Store(
                        ":memory:",
                        self.config.journal.retention_rows,
                        self.config.journal.retention_days,
                    ),
                    Engine(self.config),
                    is_tester=True,
                )
            return self._tester_book

    @property
    def tester_book(self) -> Sidecar | None:
        return self._tester_book

    def close(self) -> None:
        self.after_reply()
        self._invalid_log.flush()
        if self._tester_book is not None:
            self._tester_book.close()
        self.store.close()

    def token_ok(self, given: str | None) -> bool:
        """The shared-token check of both transports (constant time; no token configured = open)."""
        expected = self.config.server.token
        if not expected:
            return True
        return given is not None and hmac.compare_digest(given.encode(), expected.encode())

    def _authorize(self, token: str | None, bearer: str | None, request_id: str | None) -> None:
        if not self.token_ok(bearer if bearer is not None else token):
            raise ProtocolError(UNAUTHORIZED, "token: missing or wrong shared token", request_id)

    def _dispatch(self, msg: Any, msg_type: str, transport: str) -> Any:
        self.metrics.count_request(msg_type, transport)
        if isinstance(msg, Tick):
            return self._tick(msg)
        if isinstance(msg, Trade):
            return self._trade(msg)
        if isinstance(msg, Hello):
            return self._hello(msg)
        if isinstance(msg, Heartbeat):
            return self._heartbeat(msg)
        if isinstance(msg, Calendar):
            return self._calendar(msg)
        raise ProtocolError("UNKNOWN_TYPE", f"type: unsupported {msg_type!r}", msg.id)

    # ------------------------------------------------------------ messages

    def _hello(self, msg: Hello) -> Ack:
        login = msg.account.login
        out = self.kernel.hello(msg)
        if out.reset:
            self.store.forget_account(login)
        seen = self._remember_heartbeat(login, msg.symbol.name, msg.time.gmt)
        seen.day_offset_hours = msg.ea.day_offset_hours
        ours = self.config.broker.day_offset_hours
        if msg.ea.day_offset_hours is not None and not same_day_offset(
            msg.ea.day_offset_hours, ours
        ):
            # Two broker days: the EA's daily-loss hard limit and the sidecar's lock would reset
            # at different hours. Not a veto (each side still enforces its own day), but loud.
            event(
                log,
                "ea.day_offset_mismatch",
                logging.WARNING,
                login=login,
                symbol=msg.symbol.name,
                ea_day_offset_hours=msg.ea.day_offset_hours,
                sidecar_day_offset_hours=ours,
            )
        seen.limits = msg.ea.limits
        if msg.ea.limits is None:
            # An EA older than the field: its limits are unknown (/health says so, not degraded).
            event(log, "ea.limits_unknown", login=login, symbol=msg.symbol.name)
        elif looser := looser_limits(msg.ea.limits, self.config):
            # The EA's own guard would let through what the sidecar's configuration would not:
            # each side still enforces its own limits, but the EA's is the last line. Loud.
            event(
                log,
                "ea.limits_looser",
                logging.WARNING,
                login=login,
                symbol=msg.symbol.name,
                looser=looser,
            )
        event(
            log,
            "ea.hello",
            login=login,
            symbol=msg.symbol.name,
            timeframe=msg.timeframe,
            ea=msg.ea.name,
            version=msg.ea.version,
            magic=msg.ea.magic,
            tester=msg.ea.tester,
            bars=len(out.context.history),
            ignored_bars=len(out.merge.ignored_old),
            mode=out.state.mode,
        )
        return out.ack

    def _tick(self, msg: Tick) -> Any:
        if self.store_fault is not None:
            self.retry_store()
        out = self.kernel.tick(msg)
        if out.merge is not None and out.merge.ignored_old:
            event(
                log,
                "bars.ignored_old",
                logging.WARNING,
                symbol=msg.symbol,
                times=out.merge.ignored_old[:5],
            )
        new = out.state
        if out.save == "now":
            # Before the reply: locks and anchors survive kill -9 (kept in memory when the
            # database cannot be written, and written once it can).
            self._save_state(new, "save_state")
        elif out.save == "soon":
            self.store.save_state_soon(new)
        for t in out.transitions:
            level = logging.WARNING if t.event.startswith(("risk.", "drawdown.")) else logging.INFO
            event(log, t.event, level, login=msg.login, symbol=msg.symbol, **t.detail)
            if t.event != "account.clock_backwards":
                self._record_event(msg.login, msg.time.gmt, t.event, t.detail)
        v = out.verdict
        if self.store_fault is not None:
            v, new = self._without_entry(msg, v, new)
        raw = encode(v)
        self._after.append(lambda: self._after_tick(msg, new, v, raw))
        return raw  # encoded once, for the journal and the reply

    def after_reply(self) -> None:
        """Run the bookkeeping deferred past the reply (transports call it once they sent)."""
        if self._after:
            with self.lock:
                self._run_after()
        if self._tester_book is not None:
            self._tester_book.after_reply()

    def _run_after(self) -> None:
        pending, self._after = self._after, []
        for job in pending:
            try:
                job()
            except Exception:
                log.exception("bookkeeping failed", extra={"event": "service.bookkeeping_error"})

    def _after_tick(self, msg: Tick, new: AccountState, v: Verdict, raw: bytes) -> None:
        """Journal, metrics and logs of one verdict: none of it changes the answer."""
        key = (v.action, *v.reasons)
        self.metrics.count_verdict(key)
        cap, cuts = _leverage_reasons(key)
        if cuts or (cap is not None and cap != self._caps.get(msg.login)):
            self._log_leverage(msg, cap, cuts)
        # Open notional / equity of the positions this tick reported, for /v1/state.
        vpp = self.kernel.value_per_price.get(msg.login, {})
        notional = open_notional(msg.positions, vpp, vpp.get(msg.symbol, 0.0))
        equity = msg.account.equity
        self._leverage[msg.login] = (
            round(notional / equity, 2) if equity > 0 else None,
            v.leverage_cap,
            None if cap is None else cap.split(" ", 2)[1].removeprefix("regime="),
        )
        self.metrics.account(msg.login, new)
        self.metrics.positions[msg.login] = len(msg.positions)
        # One append: the writer thread sorts it into a row or a run of holds.
        self.store.journal(
            msg.login, msg.symbol, msg.time.gmt, msg.id, v.action, v.mode, raw, v.reasons
        )
        if v.action != "hold" or self.config.logging.log_holds:
            event(
                log,
                "verdict",
                login=msg.login,
                symbol=msg.symbol,
                action=v.action,
                mode=v.mode,
                reasons=v.reasons,
                open=None
                if v.open is None
                else {
                    "side": v.open.side,
                    "volume": v.open.volume,
                    "sl": v.open.sl,
                    "tp": v.open.tp,
                    "signal_id": v.open.signal_id,
                },
            )

    def _leverage_report(self, login: int) -> dict[str, Any]:
        seen = self._leverage.get(login)
        if seen is None:
            return {}
        effective, cap, regime = seen
        return {"leverage": {"effective": effective, "cap": cap, "regime": regime}}

    def _log_leverage(self, msg: Tick, cap: str | None, cuts: tuple[str, ...]) -> None:
        """`leverage.regime` when an account's regime changes, `leverage.cut` on every cut."""
        if cap is not None:
            last = self._caps.get(msg.login)
            self._caps[msg.login] = cap
            regime = cap.split(" ", 2)[1]
            previous = last and last.split(" ", 2)[1]
            if previous != regime:
                event(
                    log,
                    "leverage.regime",
                    login=msg.login,
                    symbol=msg.symbol,
                    regime=regime.removeprefix("regime="),
                    previous=previous and previous.removeprefix("regime="),
                    reason=cap,
                )
        for r in cuts:
            event(
                log, "leverage.cut", logging.WARNING, login=msg.login, symbol=msg.symbol, reason=r
            )

    def _trade(self, msg: Trade) -> Ack:
        out = self.kernel.trade(msg, int(time.time()))
        new = out.state
        # The deal and the state that counts it commit together (or neither does). A deal that
        # cannot be written is not acknowledged (nor counted): the EA keeps it queued, opens
        # nothing meanwhile, and sends it again.
        counted = new if new != out.previous else None
        try:
            recorded = self.store.record_trade(out.row, counted)
        except sqlite3.Error as exc:
            self._write_failed(exc, "trade")
            event(
                log,
                "trade.not_recorded",
                logging.WARNING,
                login=msg.login,
                deal=msg.deal,
                error=self.store_fault.error if self.store_fault else str(exc),
            )
            raise ProtocolError(
                STORE_WRITE_FAILED,
                f"deal {msg.deal}: not recorded, the database cannot be written "
                f"({exc}); send it again",
                msg.id,
            ) from None
        if recorded and counted is not None:
            self._unsaved.discard(msg.login)  # the state just written is the newest
        self._wrote()
        if not recorded:
            event(log, "trade.duplicate", login=msg.login, deal=msg.deal)
            return Ack(id=msg.id, duplicate=True)
        self.kernel.commit_trade(out)
        self.metrics.count_trade(msg.login, msg.entry)
        event(
            log,
            "trade.recorded",
            login=msg.login,
            deal=msg.deal,
            symbol=msg.symbol,
            entry=msg.entry,
            volume=msg.volume,
            profit=msg.profit,
            loss_streak=new.loss_streak,
        )
        for t in out.transitions:
            event(log, t.event, logging.WARNING, login=msg.login, **t.detail)
            self._record_event(msg.login, out.gmt, t.event, t.detail)
        return out.ack

    # ------------------------------------------------------------ write faults

    def _save_state(self, state: AccountState, operation: str) -> bool:
        try:
            self.store.save_state(state)
        except sqlite3.Error as exc:
            self._unsaved.add(state.login)
            self._write_failed(exc, operation)
            return False
        self._unsaved.discard(state.login)
        self._wrote()
        return True

    def _record_event(self, login: int, gmt: int, name: str, detail: dict[str, Any]) -> None:
        """The audit row of a transition (the log line says it too): lost if it cannot be
        written, which a write fault already reports."""
        try:
            self.store.record_event(login, gmt, name, detail)
        except sqlite3.Error as exc:
            self._write_failed(exc, "event")

    def _write_failed(self, exc: sqlite3.Error, operation: str) -> None:
        """A write failed: block entries until one succeeds (one log line per fault)."""
        error = str(exc) or type(exc).__name__
        fault = self.store_fault
        if fault is None:
            fault = self.store_fault = StoreFault(error, operation, time.time())
            event(
                log,
                "store.write_failed",
                logging.ERROR,
                f"database {self.store.path}: {operation} failed: {error}; new entries are "
                "blocked (STORE_WRITE_FAILED) and deals are not acknowledged until a write "
                "succeeds",
                path=self.store.path,
                operation=operation,
                error=error,
            )
        fault.error = error
        fault.retry_at = time.monotonic() + STORE_RETRY_SECONDS

    def _wrote(self) -> None:
        """A write succeeded: a fault clears once every unsaved state is on file too."""
        if self.store_fault is not None:
            self.retry_store(force=True)

    def retry_store(self, force: bool = False) -> bool:
        """While writes fail, at most once a second (or now with `force`): write the risk
        states not on file and a probe row; when that works, the fault is over (entries
        resume, `store.recovered`). True when the database takes writes."""
        fault = self.store_fault
        if fault is None:
            return True
        if not force and time.monotonic() < fault.retry_at:
            return False
        fault.attempts += 1
        try:
            for login in sorted(self._unsaved):
                state = self.states.get(login)
                if state is not None:
                    self.store.save_state(state)
                self._unsaved.discard(login)
            self.store.probe_write()
        except sqlite3.Error as exc:
            fault.error = str(exc) or type(exc).__name__
            fault.retry_at = time.monotonic() + STORE_RETRY_SECONDS
            return False
        self.store_fault = None
        event(
            log,
            "store.recovered",
            logging.WARNING,
            f"database {self.store.path}: writes work again after "
            f"{time.time() - fault.since:.1f} s ({fault.error}); entries allowed",
            path=self.store.path,
            error=fault.error,
            seconds=round(time.time() - fault.since, 1),
        )
        return True

    def _without_entry(
        self, msg: Tick, v: Verdict, state: AccountState
    ) -> tuple[Verdict, AccountState]:
        """The verdict while writes fail: no entry (its signal id could not be made durable,
        and the deals it would bring could not be recorded), the reason first; closes,
        reductions and management parameters are answered as usual."""
        assert self.store_fault is not None
        why = R.reason(R.STORE_WRITE_FAILED, error=self.store_fault.error)
        if v.open is None:
            return msgspec.structs.replace(v, reasons=[why, *v.reasons]), state
        # The engine remembered the signal as given: forget it, so that it may be given once
        # the database recovers (the duplicate gate would refuse it for the window).
        sid = v.open.signal_id
        state = state.evolve(recent_signals=tuple(x for x in state.recent_signals if x[0] != sid))
        self.kernel.states[msg.login] = state
        self._unsaved.add(msg.login)  # the file must not keep the signal either
        held = msgspec.structs.replace(v, action="hold", open=None, reasons=[why, *v.reasons])
        return held, state

    def _heartbeat(self, msg: Heartbeat) -> Ack:
        self._remember_heartbeat(msg.login, msg.symbol, msg.time.gmt)
        return Ack(id=msg.id)

    def _remember_heartbeat(self, login: int, symbol: str, ea_gmt: int) -> HeartbeatInfo:
        key = (login, symbol)
        previous = self.heartbeats.pop(key, None)
        offset = None if previous is None else previous.day_offset_hours  # set by hello
        info = self.heartbeats[key] = HeartbeatInfo(login, symbol, ea_gmt, time.time(), offset)
        if previous is not None:
            info.limits = previous.limits  # set by hello
        while len(self.heartbeats) > MAX_HEARTBEATS:
            old = next(iter(self.heartbeats))
            self.heartbeats.pop(old)
        return info

    def _calendar(self, msg: Calendar) -> Ack:
        events = [
            {
                "id": e.id,
                "time_gmt": e.time_gmt,
                "currency": e.currency,
                "importance": e.importance,
                "name": e.name,
                "actual": e.actual,
                "forecast": e.forecast,
                "previous": e.previous,
            }
            for e in msg.events
        ]
        try:
            n = self.store.upsert_calendar(msg.source, events, int(time.time()))
        except sqlite3.Error as exc:
            self._write_failed(exc, "calendar")
            raise ProtocolError(
                STORE_WRITE_FAILED,
                f"calendar: not stored, the database cannot be written ({exc}); send it again",
                msg.id,
            ) from None
        self._wrote()
        status = self.feeds.setdefault("mt5_calendar", FeedStatus("mt5_calendar", 900.0))
        status.last_ok = time.time()
        status.detail = {"events": n}
        event(log, "calendar.received", login=msg.login, events=n, source=msg.source)
        if self.on_calendar is not None:
            self.on_calendar()
        return Ack(id=msg.id)

    # ------------------------------------------------------------ operator API

    def resume(self, login: int, reason: str) -> AccountState:
        with self.lock:
            state, new, transitions = self.kernel.resume(login, reason)
            if new != state:
                try:
                    self.store.save_state(new)
                except sqlite3.Error as exc:
                    self.kernel.states[login] = state  # a resume that is not on file is none
                    self._write_failed(exc, "resume")
                    raise
                self._wrote()
            for t in transitions:
                event(log, t.event, logging.WARNING, login=login, **t.detail)
                self._record_event(login, state.last_gmt, t.event, t.detail)
            self.metrics.account(login, new)
            return new

    def state_report(self) -> dict[str, Any]:
        from sidecar.engine.account import next_day_start

        with self.lock:
            accounts = []
            for login, s in sorted(self.states.items()):
                locks = []
                if s.daily_lock_day == s.day_key and s.day_key >= 0:
                    locks.append(
                        {
                            "lock": "daily_loss",
                            "until_server": next_day_start(s.day_key, self.config.broker),
                        }
                    )
                if s.cooldown_until > 0:
                    locks.append(
                        {
                            "lock": "cooldown",
                            "until_server": s.cooldown_until,
                            "losses": s.loss_streak,
                        }
                    )
                if s.mode == "halted":
                    locks.append(
                        {"lock": "halted", "since_gmt": s.mode_since, "reason": s.mode_reason}
                    )
                accounts.append(
                    {
                        "login": login,
                        "mode": s.mode,
                        "mode_reason": s.mode_reason,
                        "mode_since_gmt": s.mode_since,
                        "locks": locks,
                        "anchors": {
                            "broker_day": s.day_key,
                            "day_start_equity": s.day_start_equity,
                            "high_water_mark": s.hwm,
                        },
                        "equity": s.equity,
                        "balance": s.balance,
                        "drawdown_pct": round(s.drawdown_pct, 4),
                        "daily_pnl": round(s.daily_pnl, 2),
                        "daily_pnl_pct": round(100 * s.daily_pnl / s.day_start_equity, 4)
                        if s.day_start_equity
                        else 0.0,
                        "loss_streak": s.loss_streak,
                        "recent_signals": [{"signal_id": i, "gmt": t} for i, t in s.recent_signals],
                        "last_gmt": s.last_gmt,
                        **self._leverage_report(login),
                    }
                )
            symbols = [
                {
                    "login": k[0],
                    "symbol": k[1],
                    "timeframe": k[2],
                    "tester": c.tester,
                    "bars": len(c.history),
                    "last_bar_time": c.history.last_time,
                    "warm": c.analysis.bars >= c.analysis.min_bars,
                }
                for k, c in sorted(self.symbols.items())
            ]
        report = {"accounts": accounts, "symbols": symbols, "strategy": self.engine.strategy.name}
        if self.news_report is not None:
            report["news"] = self.news_report()
        return report

    def stats_report(self, login: int, days: int = 30) -> dict[str, Any] | None:
        """Trade statistics of `login` (None when nothing of it is known): every closed position
        on file, the Kelly estimate the sizing uses now and why, P/L by symbol and by broker
        day (the last `days` days), the loss streak and the cooldown."""
        from sidecar.engine import budget, kelly

        with self.lock:
            state = self.states.get(login)
            if state is None and not self.store.has_login(login):
                return None
            trades = self.kernel.trade_stats.stats(login)
            if state is None:
                state = AccountState(login=login)
        cfg = self.config
        positions = self.store.position_results(login)
        results = [p["result"] for p in positions]
        window = trades.results[-cfg.sizing.kelly_trades :]
        est = kelly.estimate(window, cfg.sizing.kelly_prior_trades)
        in_use = budget.journal_estimate(cfg.sizing, trades)
        risk = budget.risk_budget(cfg, trades, None, state.mode)
        if not cfg.sizing.kelly_enabled:
            why = "sizing.kelly_enabled is false: the base risk.risk_pct applies"
        elif in_use is None:
            why = (
                f"{len(window)} closed positions, Kelly needs sizing.kelly_min_trades "
                f"({cfg.sizing.kelly_min_trades}): the base risk.risk_pct applies"
            )
        elif risk.refused is not None:
            why = risk.refused
        else:
            why = "; ".join(risk.notes) or "Kelly risk equals the base risk"
        newest = self.store.decisions(login=login, limit=1)
        last_codes = newest[0]["codes"] if newest else []
        now_gmt = int(time.time())
        first_day = (now_gmt - int(cfg.broker.day_offset_hours * 3600)) // 86400 - (days - 1)
        pnl = self.store.pnl_by(login, cfg.broker.day_offset_hours, first_day)
        return {
            "login": login,
            "mode": state.mode,
            "positions": _position_stats(results),
            "kelly": {
                "enabled": cfg.sizing.kelly_enabled,
                "in_use": in_use is not None and risk.refused is None,
                "window": cfg.sizing.kelly_trades,
                "min_trades": cfg.sizing.kelly_min_trades,
                "prior_trades": cfg.sizing.kelly_prior_trades,
                "fraction": cfg.sizing.kelly_fraction,
                "n": est.n,
                "wins": est.wins,
                "losses": est.losses,
                "p": round(est.p, 6),
                "b": None if math.isinf(est.b) else round(est.b, 6),
                "f_raw": round(est.f_raw, 6),
                "f": round(est.f, 6),
                # Before the volatility multiplier (per symbol, from its ATR) and the mode's.
                "risk_pct": round(risk.risk_pct, 6),
                "base_risk_pct": cfg.risk.risk_pct,
                "why": why,
                "stats": _position_stats(list(window)),
            },
            "pnl_by_symbol": [
                {"symbol": r["symbol"], "pnl": round(r["pnl"], 2), "deals": r["deals"]}
                for r in pnl["by_symbol"]
            ],
            "pnl_by_day": [
                {
                    "broker_day": r["day"],
                    "date": time.strftime("%Y-%m-%d", time.gmtime(r["day"] * 86400)),
                    "pnl": round(r["pnl"], 2),
                    "deals": r["deals"],
                }
                for r in pnl["by_day"]
            ],
            "loss_streak": {
                "losses": state.loss_streak,
                "cooldown_after": cfg.risk.loss_streak,
            },
            "cooldown": {
                "minutes": cfg.risk.cooldown_minutes,
                "until_server": state.cooldown_until or None,
                # Server time is the EA's clock: whether it holds is what the last verdict said.
                "active": "RISK_COOLDOWN" in last_codes,
            },
        }

    def health(self) -> dict[str, Any]:
        now = time.time()
        db_ok = self.store.ping()
        stale_after = self.config.server.heartbeat_stale_seconds
        day_offset = self.config.broker.day_offset_hours
        with self.lock:
            database: dict[str, Any] = {"ok": db_ok, "path": self.store.path, "writable": True}
            if self.store_fault is not None and db_ok:
                self.retry_store()  # a fault cleared while no EA was asking: say so
            fault = self.store_fault
            if fault is not None:
                database.update(
                    writable=False,
                    error=fault.error,
                    failed_operation=fault.operation,
                    failing_for_s=round(now - fault.since, 1),
                    unsaved_accounts=sorted(self._unsaved),
                )
            journal_fault = self.store.journal_fault
            if journal_fault is not None:
                database["journal_error"] = journal_fault
            eas = []
            for key, hb in list(self.heartbeats.items()):
                if now - hb.received > HEARTBEAT_FORGET_SECONDS:  # an EA removed long ago
                    self.heartbeats.pop(key)
            for (login, symbol), hb in sorted(self.heartbeats.items()):
                age = now - hb.received
                ea: dict[str, Any] = {
                    "login": login,
                    "symbol": symbol,
                    "last_heartbeat_gmt": hb.ea_gmt,
                    "age_s": round(age, 1),
                    "stale": age > stale_after,
                }
                if hb.day_offset_hours is not None:
                    ea["day_offset_hours"] = hb.day_offset_hours
                    ea["day_offset_matches"] = same_day_offset(hb.day_offset_hours, day_offset)
                # The EA's hard limits: "ok", "looser" (degraded, each one listed) or "unknown"
                # (an EA that does not send them: not judged, not degraded).
                if hb.limits is None:
                    ea["limits_status"] = "unknown"
                else:
                    looser = looser_limits(hb.limits, self.config)
                    ea["limits_status"] = "looser" if looser else "ok"
                    ea["limits"] = msgspec.structs.asdict(hb.limits)
                    if looser:
                        ea["limits_looser"] = looser
                eas.append(ea)
            feeds = {}
            for name, f in sorted(self.feeds.items()):
                age = None if f.last_ok is None else round(now - f.last_ok, 1)
                feeds[name] = {
                    "age_s": age,
                    "interval_s": f.interval_s,
                    "stale": age is None or age > 2 * f.interval_s,
                    **f.detail,
                }
        # An MT5 calendar push counts as a news source; without any, the news gate is off.
        news_on = self.news_configured or "mt5_calendar" in feeds
        # Only what is configured can degrade: an optional source not set up is `disabled`.
        problems = []
        for e in eas:
            where = f"ea {e['login']}/{e['symbol']}"
            if e["stale"]:
                problems.append(f"{where}: no heartbeat for {e['age_s']} s (> {stale_after} s)")
            if not e.get("day_offset_matches", True):
                problems.append(
                    f"{where}: day_offset_hours {e['day_offset_hours']} differs from "
                    f"broker.day_offset_hours {day_offset}"
                )
            for x in e.get("limits_looser", ()):
                rel = "below" if x["limit"] == "equity_floor_pct" else "above"
                problems.append(
                    f"{where}: EA hard limit {x['limit']} {x['ea']:g} is looser than the "
                    f"sidecar's ({rel} {x['config']} {x['sidecar']:g})"
                )
        for name, f in feeds.items():
            if f["stale"]:
                problems.append(
                    f"feed {name}: "
                    + (
                        "no success yet"
                        if f["age_s"] is None
                        else f"last success {f['age_s']} s ago"
                    )
                    + f" (stale after {2 * f['interval_s']} s)"
                )
        eodhd_feeds = {k: v for k, v in feeds.items() if k != "mt5_calendar"}
        sources: dict[str, Any] = {
            "eodhd": {
                "status": "disabled",
                "reason": "no key: set EODHD_API_TOKEN or "
                "feeds.eodhd_token for the economic calendar, news and sentiment",
            }
            if not self.news_configured
            else {
                "status": "degraded" if any(f["stale"] for f in eodhd_feeds.values()) else "ok",
                "feeds": sorted(eodhd_feeds),
            },
            "mt5_calendar": {
                "status": "disabled",
                "reason": "the EA has not pushed the terminal's calendar",
            }
            if "mt5_calendar" not in feeds
            else {"status": "degraded" if feeds["mt5_calendar"]["stale"] else "ok"},
        }
        if fault is not None:
            problems.insert(
                0,
                f"database {self.store.path}: writes failing for {database['failing_for_s']} s "
                f"({fault.error}): new entries blocked (STORE_WRITE_FAILED), deals not "
                "acknowledged until a write succeeds",
            )
        elif journal_fault is not None:
            problems.insert(
                0, f"database {self.store.path}: decision journal not written ({journal_fault})"
            )
        status = "ok"
        if not db_ok:
            status = "down"
            problems.insert(0, f"database {self.store.path}: not answering")
        elif problems:
            status = "degraded"
        return {
            "status": status,
            "live": True,
            "ready": db_ok,
            "uptime_s": round(now - self.started, 1),
            "problems": problems,
            "database": database,
            "eas": eas,
            "feeds": feeds,
            "sources": sources,
            "news": {"enabled": news_on}
            if news_on
            else {
                "enabled": False,
                "reason": "no news source (optional): set EODHD_API_TOKEN (or "
                "feeds.eodhd_token) or let the EA push its calendar; blackouts and sentiment "
                "are off",
            },
            "strategy": self.engine.strategy.name,
            "broker": {"day_offset_hours": day_offset},
            # what each EA's hello `ea.limits` is compared with (eas[].limits_status)
            "ea_limits": sidecar_limits(self.config),
        }


def _position_stats(results: list[float]) -> dict[str, Any]:
    """Win rate, payoff, profit factor and expectancy of closed positions' net results."""
    wins = [r for r in results if r > 0]
    losses = [-r for r in results if r < 0]
    n = len(results)
    gross_win, gross_loss = sum(wins), sum(losses)
    avg_win = gross_win / len(wins) if wins else None
    avg_loss = gross_loss / len(losses) if losses else None

    def r6(x: float | None) -> float | None:
        return None if x is None else round(x, 6)

    return {
        "closed": n,
        "wins": len(wins),
        "losses": len(losses),
        "breakeven": n - len(wins) - len(losses),
        "win_rate": r6(len(wins) / n) if n else None,
        "avg_win": r6(avg_win),
        "avg_loss": r6(avg_loss),
        # None when undefined: no losses (infinite) or no wins
        "payoff": r6(avg_win / avg_loss) if avg_win and avg_loss else None,
        "profit_factor": r6(gross_win / gross_loss) if gross_loss else None,
        "expectancy": r6(sum(results) / n) if n else None,
        "net": round(sum(results), 2),
    }
