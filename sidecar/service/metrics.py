"""Prometheus metrics: one registry per service instance (tests run several in one process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 (re-exported)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
        self.verdicts = Counter("sidecar_verdicts", "Verdicts by action", ["action"], registry=r)
        self.reasons = Counter(
            "sidecar_verdict_reasons", "Reasons on verdicts, by code", ["reason"], registry=r
        )
        self.trades = Counter("sidecar_trades", "Deals recorded", ["login", "entry"], registry=r)
        self.equity = Gauge("sidecar_equity", "Last reported equity", ["login"], registry=r)
        self.drawdown = Gauge(
            "sidecar_drawdown_pct",
            "Drawdown from the equity high-water mark, %",
            ["login"],
            registry=r,
        )
        self.daily_pnl = Gauge(
            "sidecar_daily_pnl", "Equity change since the broker day started", ["login"], registry=r
        )
        self.mode = Gauge(
            "sidecar_mode", "Breaker mode (1 for the current one)", ["login", "mode"], registry=r
        )
        self.heartbeat_age = Gauge(
            "sidecar_ea_heartbeat_age_seconds",
            "Seconds since the EA's last heartbeat",
            ["login", "symbol"],
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
        lg = str(login)
        self.child(self.equity, lg).set(equity)
        self.child(self.drawdown, lg).set(drawdown_pct)
        self.child(self.daily_pnl, lg).set(daily_pnl)
        for m in MODES:
            self.child(self.mode, lg, m).set(1.0 if m == mode else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
