"""Prometheus metrics: one registry per service instance (tests run several in one process)."""

from __future__ import annotations

import bisect
import threading
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 (re-exported)
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from sidecar.engine.reasons import code_of

# Sub-millisecond buckets: the verdict path is budgeted at well under 1 ms.
LATENCY_BUCKETS = (
    25e-6,
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


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.invalid = Counter(
            "sidecar_invalid_requests",
            "Rejected requests by error code",
            ["code", "transport"],
            registry=r,
        )
        # Per-tick counts are plain dict increments (the handler lock serialises ticks) exported
        # at scrape time: a prometheus_client child per increment cost ~3 µs a tick. Verdicts
        # are counted whole, by (action, *reasons): the same few verdicts repeat tick after
        # tick, so one dict increment replaces one per reason; `_fold` turns them into counts
        # by action and by reason code when the table grows or Prometheus scrapes.
        self._verdicts: dict[tuple[str, ...], int] = {}
        self._fold_lock = threading.Lock()
        self.verdict_counts: dict[str, int] = {}
        self.request_counts: dict[tuple[str, str], int] = {}
        # Verdict latency per transport: bucket counts (le = LATENCY_BUCKETS, then +Inf) and sum.
        self.latency_buckets: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self._latency_lock = threading.Lock()
        self.reason_counts: dict[str, int] = {}
        self._accounts: dict[int, AccountNumbers] = {}
        r.register(_TickCollector(self))
        self.trades = Counter("sidecar_trades", "Deals recorded", ["login", "entry"], registry=r)
        self.heartbeat_age = Gauge(
            "sidecar_ea_heartbeat_age_seconds",
            "Seconds since the EA's last heartbeat",
            ["login", "symbol"],
            registry=r,
        )
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
        self.feed_age = Gauge(
            "sidecar_feed_age_seconds",
            "Seconds since a news source last refreshed (or since start if it never did)",
            ["source"],
            registry=r,
        )
        self.news_blackouts = Gauge(
            "sidecar_news_blackouts_active",
            "Open news blackout windows by currency (wall clock)",
            ["currency"],
            registry=r,
        )
        self.news_upcoming = Gauge(
            "sidecar_news_upcoming",
            "High-impact events starting within feeds.upcoming_minutes, by currency",
            ["currency"],
            registry=r,
        )
        self._children: dict[tuple[str, ...], object] = {}

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
        """Count one verdict by `(action, *reasons)`."""
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
            _add(self._verdicts, self.verdict_counts, self.reason_counts)
            self._verdicts.clear()

    def totals(self) -> tuple[dict[str, int], dict[str, int]]:
        """Verdicts by action and reasons by code, so far (for the scrape)."""
        with self._fold_lock:
            actions, codes = dict(self.verdict_counts), dict(self.reason_counts)
            pending = dict(self._verdicts)  # the verdict path may add to it meanwhile: fine
        _add(pending, actions, codes)
        return actions, codes

    def forget_heartbeat(self, login: int, symbol: str) -> None:
        key = (self.heartbeat_age._name, str(login), symbol)
        if self._children.pop(key, None) is not None:
            self.heartbeat_age.remove(str(login), symbol)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


class AccountNumbers(Protocol):
    """What the account gauges read (an engine AccountState)."""

    equity: float
    mode: str

    @property
    def drawdown_pct(self) -> float: ...

    @property
    def daily_pnl(self) -> float: ...


_MAX_VERDICT_KEYS = 4096


def _add(
    verdicts: dict[tuple[str, ...], int], actions: dict[str, int], codes: dict[str, int]
) -> None:
    for (action, *reasons), n in verdicts.items():
        actions[action] = actions.get(action, 0) + n
        for r in reasons:
            code = code_of(r)
            codes[code] = codes.get(code, 0) + n


class _TickCollector:
    """Exports what the verdict path only counts: verdicts, reasons and account numbers."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list:
        return []

    def collect(self):  # type: ignore[no-untyped-def]
        m = self.m
        by_action, by_code = m.totals()
        verdicts = CounterMetricFamily("sidecar_verdicts", "Verdicts by action", labels=["action"])
        for action, n in sorted(by_action.items()):
            verdicts.add_metric([action], n)
        yield verdicts
        reasons = CounterMetricFamily(
            "sidecar_verdict_reasons", "Reasons on verdicts, by code", labels=["reason"]
        )
        for code, n in sorted(by_code.items()):
            reasons.add_metric([code], n)
        yield reasons
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
        accounts = sorted(dict(m._accounts).items())
        families = {
            "equity": GaugeMetricFamily("sidecar_equity", "Last reported equity", labels=["login"]),
            "dd": GaugeMetricFamily(
                "sidecar_drawdown_pct",
                "Drawdown from the equity high-water mark, %",
                labels=["login"],
            ),
            "pnl": GaugeMetricFamily(
                "sidecar_daily_pnl", "Equity change since the broker day started", labels=["login"]
            ),
            "mode": GaugeMetricFamily(
                "sidecar_mode", "Breaker mode (1 for the current one)", labels=["login", "mode"]
            ),
        }
        for login, state in accounts:
            lg = str(login)
            families["equity"].add_metric([lg], state.equity)
            families["dd"].add_metric([lg], state.drawdown_pct)
            families["pnl"].add_metric([lg], state.daily_pnl)
            for name in MODES:
                families["mode"].add_metric([lg, name], 1.0 if name == state.mode else 0.0)
        yield from families.values()
