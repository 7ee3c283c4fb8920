"""Prometheus metrics: one registry per service instance (tests run several in one process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 (re-exported)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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
        self.latency = Histogram(
            "sidecar_verdict_latency_seconds",
            "Time from a tick's arrival to its verdict being encoded",
            ["transport"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "sidecar_requests", "Requests handled by type", ["type", "transport"], registry=r
        )
        self.invalid = Counter(
            "sidecar_invalid_requests",
            "Rejected requests by error code",
            ["code", "transport"],
            registry=r,
        )
        # Per-tick counts are plain dict increments (the handler lock serialises ticks) exported
        # at scrape time: a prometheus_client child per increment cost ~3 µs a tick.
        self.verdict_counts: dict[str, int] = {}
        self.reason_counts: dict[str, int] = {}
        self._accounts: dict[int, tuple[float, float, float, str]] = {}
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

    def account(
        self, login: int, equity: float, drawdown_pct: float, daily_pnl: float, mode: str
    ) -> None:
        """Remember the account's numbers; the gauges are produced when Prometheus scrapes."""
        self._accounts[login] = (equity, drawdown_pct, daily_pnl, mode)

    def count_verdict(self, action: str, reasons: list[str]) -> None:
        vc = self.verdict_counts
        vc[action] = vc.get(action, 0) + 1
        rc = self.reason_counts
        for r in reasons:
            code = r.split(" ", 1)[0]
            rc[code] = rc.get(code, 0) + 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _TickCollector:
    """Exports what the verdict path only counts: verdicts, reasons and account numbers."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list:
        return []

    def collect(self):  # type: ignore[no-untyped-def]
        m = self.m
        verdicts = CounterMetricFamily("sidecar_verdicts", "Verdicts by action", labels=["action"])
        for action, n in sorted(dict(m.verdict_counts).items()):
            verdicts.add_metric([action], n)
        yield verdicts
        reasons = CounterMetricFamily(
            "sidecar_verdict_reasons", "Reasons on verdicts, by code", labels=["reason"]
        )
        for code, n in sorted(dict(m.reason_counts).items()):
            reasons.add_metric([code], n)
        yield reasons
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
        for login, (equity, dd, pnl, mode) in accounts:
            lg = str(login)
            families["equity"].add_metric([lg], equity)
            families["dd"].add_metric([lg], dd)
            families["pnl"].add_metric([lg], pnl)
            for name in MODES:
                families["mode"].add_metric([lg, name], 1.0 if name == mode else 0.0)
        yield from families.values()
