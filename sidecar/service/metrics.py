"""Prometheus metrics: one registry per service instance (tests run several in one process).

The catalogue (names, units, labels, the alerts that use them) is docs/monitoring.md. Almost
nothing here runs on the verdict path: ticks bump plain dict counters, and the account, EA,
feed and journal numbers are read from the service's own state when Prometheus scrapes
(`_TickCollector`, `_StateCollector`). Every label set is bounded: logins, symbols, reason
codes, currencies, endpoints and statuses beyond a cap are exported as `other`.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 (re-exported)
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from sidecar.engine.reasons import code_of
from sidecar.protocol import PROTOCOL_VERSION

if TYPE_CHECKING:
    from sidecar.service.handler import Sidecar

# No `*_created` series: one more series per counter child that no rule or panel reads.
disable_created_metrics()

# Sub-millisecond buckets from 50 µs: the verdict path is budgeted at well under 1 ms (a bound at
# exactly 1 ms makes "share of verdicts under 1 ms" exact).
LATENCY_BUCKETS = (
    50e-6,
    75e-6,
    100e-6,
    150e-6,
    250e-6,
    500e-6,
    1e-3,
    2.5e-3,
    5e-3,
    10e-3,
    50e-3,
    0.25,
    1.0,
)
MODES = ("active", "reducing", "halted")
ACTIONS = ("open", "hold", "close", "reduce")
TRANSPORTS = ("zmq", "http")
DRAWDOWN_LEVELS = ("defensive", "reducing", "halted")
# Error codes of `sidecar_invalid_requests_total` (sidecar.protocol); anything else is `other`.
INVALID_CODES = (
    "BAD_JSON",
    "BAD_REQUEST",
    "UNSUPPORTED_VERSION",
    "UNKNOWN_TYPE",
    "TOO_LARGE",
    "UNAUTHORIZED",
    "UNKNOWN_SYMBOL",
    "INTERNAL",
)
# Reason codes that veto an entry: counted in `sidecar_refusals_total` on verdicts without one.
REFUSAL_CODES = frozenset(
    {
        "MODE_HALTED",
        "RISK_DAILY_LOSS",
        "RISK_FLOATING_LOSS",
        "RISK_MAX_POSITIONS",
        "RISK_SYMBOL_OPEN",
        "RISK_DUPLICATE_SIGNAL",
        "RISK_COOLDOWN",
        "RISK_REWARD_RISK",
        "RISK_DAILY_BUDGET",
        "RISK_DRAWDOWN_BUDGET",
        "RISK_OPEN_NO_STOP",
        "RISK_EQUITY_FLOOR",
        "NEWS_BLACKOUT",
        "NEWS_SENTIMENT",
        "NEWS_STALE",
        "SIZE_BELOW_MIN",
        "SIZE_NO_EDGE",
        "DATA_WARMUP",
        "DATA_CLOCK_BACKWARDS",
        "STORE_WRITE_FAILED",
    }
)
OTHER = "other"
# Label caps (series = at most the cap plus one `other`).
MAX_LOGINS = 64
MAX_HEARTBEAT_SERIES = 256
MAX_REASON_CODES = 100
MAX_CURRENCIES = 64
MAX_ENDPOINTS = 16
MAX_STATUSES = 32
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,47}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{1,40}")


class Labels:
    """A bounded label: the first `cap` distinct valid values pass, the rest are `other`."""

    def __init__(self, cap: int, pattern: re.Pattern[str], known: Iterable[str] = ()) -> None:
        self.cap = cap
        self.pattern = pattern
        self.seen: dict[str, str] = {k: k for k in known}
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        out = self.seen.get(value)
        if out is not None:
            return out
        with self._lock:
            ok = len(self.seen) < self.cap and self.pattern.fullmatch(value) is not None
            out = self.seen[value] = value if ok else OTHER
            if not ok and len(self.seen) > 4 * self.cap:  # remember the refused ones, boundedly
                self.seen = {k: v for k, v in self.seen.items() if v != OTHER}
            return out


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.started = time.time()
        self.sidecar: Sidecar | None = None  # bound by the service: read at scrape time
        self.invalid = Counter(
            "sidecar_invalid_requests",
            "Requests answered with an error, by error code",
            ["code", "transport"],
            registry=r,
        )
        for code in INVALID_CODES:
            for transport in TRANSPORTS:
                self.invalid.labels(code, transport)
        # Per-tick counts are plain dict increments (the handler lock serialises ticks) exported
        # at scrape time: a prometheus_client child per increment cost ~3 µs a tick. Verdicts
        # are counted whole, by (action, *reason codes) (`_codes_key`): the same few verdicts
        # repeat tick after tick, so one dict increment replaces one per reason; `_fold` turns
        # them into counts by action and by reason code when the table grows or Prometheus
        # scrapes.
        self._verdicts: dict[tuple[str, ...], int] = {}
        self._fold_lock = threading.Lock()
        self.verdict_counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        self.request_counts: dict[tuple[str, str], int] = {}
        # Verdict latency per transport: bucket counts (le = LATENCY_BUCKETS, then +Inf) and sum.
        self.latency_buckets: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self._latency_lock = threading.Lock()
        self.reason_counts: dict[str, int] = {}
        self.refusal_counts: dict[str, int] = {}
        self.reason_label = Labels(MAX_REASON_CODES, _CODE)
        self._accounts: dict[int, AccountNumbers] = {}
        self.positions: dict[int, int] = {}  # login -> open positions in its newest tick
        self.trade_login = Labels(MAX_LOGINS, re.compile(r"[0-9]{1,20}"))
        self.currency_label = Labels(MAX_CURRENCIES, _CURRENCY)
        self.endpoint_label = Labels(MAX_ENDPOINTS, _TOKEN)
        self.status_label = Labels(MAX_STATUSES, _TOKEN)
        # News numbers the feed service computes (by currency), replaced whole on each refresh.
        self.news: dict[str, dict[str, float]] = {"blackouts": {}, "upcoming": {}, "next": {}}
        r.register(_TickCollector(self))
        r.register(_StateCollector(self))
        self.trades = Counter("sidecar_trades", "Deals recorded", ["login", "entry"], registry=r)
        # News feeds (sidecar/service/feeds.py)
        self.eodhd_calls = Counter(
            "sidecar_eodhd_calls",
            "EODHD HTTP attempts by endpoint and status (HTTP code, timeout, budget_refused...)",
            ["endpoint", "status"],
            registry=r,
        )
        self.eodhd_budget_remaining = Gauge(
            "sidecar_eodhd_budget_remaining",
            "EODHD API calls left in the sidecar's daily budget",
            registry=r,
        )
        self.eodhd_budget_daily = Gauge(
            "sidecar_eodhd_budget_daily",
            "The sidecar's daily EODHD call budget (feeds.budget_daily_calls)",
            registry=r,
        )
        self._children: dict[tuple[str, ...], object] = {}

    def bind(self, sidecar: Sidecar) -> None:
        """Read accounts, EAs, feeds and the journal from `sidecar` when Prometheus scrapes."""
        self.sidecar = sidecar

    def child(self, metric, *labels: str):  # type: ignore[no-untyped-def]
        # prometheus_client's labels() costs a dict build and a lock per call; cache children.
        key = (metric._name, *labels)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*labels)
        return c

    def account(self, login: int, state: AccountNumbers) -> None:
        """Remember the account's latest state; its gauges are computed when Prometheus scrapes."""
        self._accounts[login] = state

    def count_request(self, msg_type: str, transport: str) -> None:
        key = (msg_type, transport)
        self.request_counts[key] = self.request_counts.get(key, 0) + 1

    def count_invalid(self, code: str, transport: str) -> None:
        label = code if code in INVALID_CODES else OTHER
        self.child(self.invalid, label, transport).inc()

    def count_trade(self, login: int, entry: str) -> None:
        self.child(self.trades, self.trade_login(str(login)), entry).inc()

    def count_eodhd(self, endpoint: str, status: str) -> None:
        self.child(self.eodhd_calls, self.endpoint_label(endpoint), self.status_label(status)).inc()

    def set_news(
        self, blackouts: dict[str, float], upcoming: dict[str, float], next_at: dict[str, float]
    ) -> None:
        """Blackout windows open, upcoming events and the next event's time, by currency."""
        fold = self.currency_label
        out: dict[str, dict[str, float]] = {}
        for name, values, merge in (
            ("blackouts", blackouts, _sum),
            ("upcoming", upcoming, _sum),
            ("next", next_at, min),
        ):
            d: dict[str, float] = {}
            for cur, v in values.items():
                k = fold(cur.upper())
                d[k] = merge(d[k], v) if k in d else v
            out[name] = d
        self.news = out

    def observe_latency(self, transport: str, seconds: float) -> None:
        with self._latency_lock:  # called outside the handler lock, from both transports
            self._observe(transport, seconds)

    def _observe(self, transport: str, seconds: float) -> None:
        buckets = self.latency_buckets.get(transport)
        if buckets is None:
            buckets = self.latency_buckets[transport] = [0] * (len(LATENCY_BUCKETS) + 1)
            self.latency_sum[transport] = 0.0
        buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum[transport] += seconds

    def count_verdict(self, key: tuple[str, ...]) -> None:
        """Count one verdict by `(action, *reasons)` (kept as `(action, *codes)`)."""
        key = _codes_key(key)
        n = self._verdicts.get(key)
        if n is None:
            if len(self._verdicts) >= _MAX_VERDICT_KEYS:
                self._fold()  # reasons that carry numbers (loss_pct=...) make many keys
            self._verdicts[key] = 1
        else:
            self._verdicts[key] = n + 1

    def _fold(self) -> None:
        """Move the whole-verdict counts into the counts by action and by reason code. Only the
        verdict path folds, and under the lock that `totals` reads with, so a scrape never sees
        a count taken out of one table and not yet added to the other."""
        with self._fold_lock:
            self._add(self._verdicts, self.verdict_counts, self.reason_counts, self.refusal_counts)
            self._verdicts.clear()

    def totals(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Verdicts by action, reasons by code and refusals by code, so far (for the scrape)."""
        with self._fold_lock:
            actions, codes = dict(self.verdict_counts), dict(self.reason_counts)
            refusals = dict(self.refusal_counts)
            pending = dict(self._verdicts)  # the verdict path may add to it meanwhile: fine
        self._add(pending, actions, codes, refusals)
        return actions, codes, refusals

    def _add(
        self,
        verdicts: dict[tuple[str, ...], int],
        actions: dict[str, int],
        codes: dict[str, int],
        refusals: dict[str, int],
    ) -> None:
        label = self.reason_label
        for (action, *reasons), n in verdicts.items():
            actions[action] = actions.get(action, 0) + n
            for r in reasons:
                code = code_of(r)
                lc = label(code)
                codes[lc] = codes.get(lc, 0) + n
                if action != "open" and code in REFUSAL_CODES:
                    refusals[code] = refusals.get(code, 0) + n

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _sum(a: float, b: float) -> float:
    return a + b


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


class AccountNumbers(Protocol):
    """What the account gauges read (an engine AccountState)."""

    equity: float
    balance: float
    mode: str
    day_key: int
    daily_lock_day: int
    day_start_equity: float
    last_gmt: int

    @property
    def drawdown_pct(self) -> float: ...

    @property
    def daily_pnl(self) -> float: ...


_MAX_VERDICT_KEYS = 4096


@functools.lru_cache(maxsize=4096)
def _codes_key(key: tuple[str, ...]) -> tuple[str, ...]:
    """`(action, *codes)` of a verdict's `(action, *reasons)`: what `_add` counts by. Reasons
    that carry numbers (the strategy's note, a signal's values, loss_pct=...) made a new whole
    key per chart per bar, so with 32 charts the table filled every ~128 bar closes and `_fold`
    (7-9 ms) ran in the middle of one. By codes the table stays small; a repeated verdict still
    costs one cached lookup."""
    return (key[0], *map(code_of, key[1:]))


def _dist_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mt5-sidecar")
    except PackageNotFoundError:
        return "unknown"


_VERSION = _dist_version()


def _counter(name: str, doc: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, n in sorted(counts.items()):
        family.add_metric([key], n)
    return family


class _TickCollector:
    """Exports what the verdict path only counts: verdicts, reasons and latencies."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[Any]:
        m = self.m
        by_action, by_code, refusals = m.totals()
        yield _counter("sidecar_verdicts", "Verdicts by action", "action", by_action)
        yield _counter(
            "sidecar_verdict_reasons", "Reasons on verdicts, by reason code", "reason", by_code
        )
        yield _counter(
            "sidecar_refusals",
            "Verdicts that gave no entry, by veto reason code",
            "reason",
            refusals,
        )
        requests = CounterMetricFamily(
            "sidecar_requests", "Requests handled by type", labels=["type", "transport"]
        )
        for (msg_type, transport), n in sorted(dict(m.request_counts).items()):
            requests.add_metric([msg_type, transport], n)
        yield requests
        latency = HistogramMetricFamily(
            "sidecar_verdict_latency_seconds",
            "Time from a tick's arrival to its verdict being encoded",
            labels=["transport"],
        )
        for transport, counts in sorted(dict(m.latency_buckets).items()):
            cumulative, running = [], 0
            for bound, n in zip((*LATENCY_BUCKETS, float("inf")), list(counts), strict=True):
                running += n
                cumulative.append((_bound(bound), running))
            latency.add_metric([transport], cumulative, m.latency_sum.get(transport, 0.0))
        yield latency


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


class _StateCollector:
    """Account, EA, feed, news and journal gauges, read from the service when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator[Any]:
        m = self.m
        now = time.time()
        start = _gauge("sidecar_start_time_seconds", "When the service started (Unix seconds)")
        start.add_metric([], m.started)
        yield start
        info = _gauge(
            "sidecar_build_info", "The sidecar's version (always 1)", ["version", "protocol"]
        )
        info.add_metric([_VERSION, str(PROTOCOL_VERSION)], 1.0)
        yield info
        yield from self._accounts()
        yield from self._news()
        sc = m.sidecar
        if sc is None:
            return
        yield from self._heartbeats(sc)
        yield from self._feeds(sc, now)
        backlog = _gauge(
            "sidecar_journal_backlog", "Decision-journal entries waiting to be written"
        )
        backlog.add_metric([], float(sc.store.journal_backlog()))
        yield backlog
        failing = _gauge("sidecar_journal_write_failing", "1 while journal writes fail")
        failing.add_metric([], 0.0 if sc.store.journal_fault is None else 1.0)
        yield failing
        store = _gauge(
            "sidecar_store_write_failing",
            "1 while risk-state and deal writes fail (entries blocked)",
        )
        store.add_metric([], 0.0 if sc.store_fault is None else 1.0)
        yield store

    def _accounts(self) -> Iterator[GaugeMetricFamily]:
        m = self.m
        accounts = list(m._accounts.copy().items())
        if len(accounts) > MAX_LOGINS:  # the most recently seen accounts
            accounts.sort(key=lambda kv: kv[1].last_gmt, reverse=True)
            accounts = accounts[:MAX_LOGINS]
        accounts.sort(key=lambda kv: kv[0])
        sc = m.sidecar
        risk = None if sc is None else sc.config.risk
        leverage = {} if sc is None else sc._leverage.copy()
        positions = m.positions.copy()
        L = ["login"]
        f = {
            "equity": _gauge("sidecar_equity", "Last reported equity (account currency)", L),
            "balance": _gauge("sidecar_balance", "Last reported balance (account currency)", L),
            "pnl": _gauge(
                "sidecar_daily_pnl",
                "Equity change since the broker day started (account currency)",
                L,
            ),
            "limit": _gauge(
                "sidecar_daily_loss_limit",
                "Loss that locks the broker day: day-start equity x risk.daily_loss_pct "
                "(account currency, positive)",
                L,
            ),
            "locked": _gauge(
                "sidecar_daily_loss_locked", "1 while the daily-loss lock holds (no entries)", L
            ),
            "dd": _gauge(
                "sidecar_drawdown_ratio", "Drawdown from the equity high-water mark (0-1)", L
            ),
            "dd_limit": _gauge(
                "sidecar_drawdown_limit_ratio",
                "Drawdown thresholds: defensive, reducing, halted (0-1)",
                ["login", "level"],
            ),
            "mode": _gauge(
                "sidecar_mode", "Breaker mode (1 for the current one)", ["login", "mode"]
            ),
            "positions": _gauge(
                "sidecar_open_positions", "The EA's open positions in the newest tick", L
            ),
            "lev": _gauge(
                "sidecar_effective_leverage_ratio",
                "Open notional / equity of the newest tick (3 = 1:3)",
                L,
            ),
            "cap": _gauge(
                "sidecar_leverage_cap_ratio", "Effective leverage cap in force (N of 1:N)", L
            ),
        }
        for login, st in accounts:
            lg = str(login)
            f["equity"].add_metric([lg], st.equity)
            f["balance"].add_metric([lg], st.balance)
            f["pnl"].add_metric([lg], st.daily_pnl)
            f["dd"].add_metric([lg], st.drawdown_pct / 100.0)
            f["locked"].add_metric(
                [lg], 1.0 if st.day_key >= 0 and st.daily_lock_day == st.day_key else 0.0
            )
            for name in MODES:
                f["mode"].add_metric([lg, name], 1.0 if name == st.mode else 0.0)
            if risk is not None:
                f["limit"].add_metric([lg], st.day_start_equity * risk.daily_loss_pct / 100.0)
                for level in DRAWDOWN_LEVELS:
                    pct = getattr(risk, f"drawdown_{level}_pct")
                    f["dd_limit"].add_metric([lg, level], pct / 100.0)
            if login in positions:
                f["positions"].add_metric([lg], float(positions[login]))
            seen = leverage.get(login)
            if seen is not None:
                effective, cap, _regime = seen
                if effective is not None:
                    f["lev"].add_metric([lg], effective)
                f["cap"].add_metric([lg], float(cap))
        yield from f.values()

    def _heartbeats(self, sc: Sidecar) -> Iterator[GaugeMetricFamily]:
        beats = sorted(sc.heartbeats.copy().values(), key=lambda hb: hb.received, reverse=True)
        logins: set[int] = set()
        out: dict[tuple[str, str], float] = {}
        for i, hb in enumerate(beats):
            if hb.login not in logins and len(logins) < MAX_LOGINS:
                logins.add(hb.login)
            login = str(hb.login) if hb.login in logins else OTHER
            symbol = hb.symbol if i < MAX_HEARTBEAT_SERIES else OTHER
            key = (login, symbol)
            out[key] = max(out.get(key, 0.0), hb.received)
        family = _gauge(
            "sidecar_ea_heartbeat_timestamp_seconds",
            "When the sidecar last heard from the EA (hello or heartbeat), Unix seconds",
            ["login", "symbol"],
        )
        for (login, symbol), t in sorted(out.items()):
            family.add_metric([login, symbol], t)
        yield family

    def _feeds(self, sc: Sidecar, now: float) -> Iterator[GaugeMetricFamily]:
        age = _gauge(
            "sidecar_feed_age_seconds",
            "Seconds since a news source last refreshed (since start if it never did)",
            ["source"],
        )
        interval = _gauge(
            "sidecar_feed_interval_seconds", "A news source's refresh interval", ["source"]
        )
        for name, f in sorted(sc.feeds.copy().items()):
            since = f.last_ok if f.last_ok is not None else sc.started
            age.add_metric([name], max(0.0, now - since))
            interval.add_metric([name], f.interval_s)
        yield age
        yield interval

    def _news(self) -> Iterator[GaugeMetricFamily]:
        news = self.m.news
        for key, name, doc in (
            ("blackouts", "sidecar_news_blackouts_active", "Open news blackout windows"),
            (
                "upcoming",
                "sidecar_news_upcoming",
                "High-impact events starting within feeds.upcoming_minutes",
            ),
            (
                "next",
                "sidecar_news_next_high_impact_timestamp_seconds",
                "Start of the next high-impact event (Unix seconds)",
            ),
        ):
            family = _gauge(name, doc + ", by currency", ["currency"])
            for cur, v in sorted(news[key].items()):
                family.add_metric([cur], v)
            yield family
