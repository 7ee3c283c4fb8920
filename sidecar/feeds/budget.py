"""EODHD call budget: per-endpoint costs, daily and per-minute limits, priority shedding.

EODHD counts two things (reference §7): *API calls* per UTC day (100,000 on paid plans; each
request costs 1, 5, 10 ... calls by endpoint) and *requests* per minute (1,000). The budget tracks
both and refuses a request — raising `BudgetExceeded` before any network I/O — when granting it
would cross the limit available to the request's priority:

* `high`   may use the whole limit,
* `normal` may use up to `1 - reserve["normal"]` of it (default 90 %),
* `low`    may use up to `1 - reserve["low"]` of it (default 70 %),

so low-priority refreshes are shed first and a reserve stays for what matters (e.g. the
calendar before a release). Time comes from an injectable `Clock`: a monotonic clock for the
sliding per-minute window and a UTC clock for the daily reset at 00:00 UTC.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Protocol


class Priority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


# API calls per request (reference §7). Endpoint keys are the first path segment after /api.
DEFAULT_COSTS: dict[str, int] = {
    "eod": 1,
    "div": 1,
    "splits": 1,
    "calendar": 1,
    "economic-events": 1,
    "exchanges-list": 1,
    "exchange-symbol-list": 1,
    "search": 1,
    "screener": 1,
    "user": 1,
    "internal-user": 1,
    "real-time": 0,  # plus 1 per symbol, see DEFAULT_PER_TICKER
    "intraday": 5,
    "technical": 5,
    "news": 5,
    "sentiments": 5,  # plus 5 per ticker (unconfirmed, skills)
    "news-word-weights": 5,  # plus 5 per ticker (unconfirmed, skills)
    "fundamentals": 10,
    "eod-bulk-last-day": 100,
}
# Surcharge per ticker in the request; news is 0 until EODHD confirms its "+5 per ticker".
DEFAULT_PER_TICKER: dict[str, int] = {
    "real-time": 1,
    "sentiments": 5,
    "news-word-weights": 5,
    "news": 0,
}
DEFAULT_RESERVE: dict[Priority, float] = {
    Priority.HIGH: 0.0,
    Priority.NORMAL: 0.10,
    Priority.LOW: 0.30,
}
UNKNOWN_ENDPOINT_COST = 10  # be pessimistic about an endpoint we have no cost for


def request_cost(
    endpoint: str,
    tickers: int = 1,
    costs: Mapping[str, int] = DEFAULT_COSTS,
    per_ticker: Mapping[str, int] = DEFAULT_PER_TICKER,
) -> int:
    """API calls one request of `endpoint` naming `tickers` tickers costs."""
    return costs.get(endpoint, UNKNOWN_ENDPOINT_COST) + per_ticker.get(endpoint, 0) * max(
        tickers, 0
    )


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def utc_now(self) -> datetime: ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def utc_now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: for tests, replays and backtests."""

    def __init__(self, utc: datetime | None = None, monotonic: float = 0.0) -> None:
        self._utc = utc or datetime(2025, 1, 1, tzinfo=UTC)
        if self._utc.tzinfo is None:
            raise ValueError("ManualClock utc must be timezone-aware")
        self._mono = monotonic
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def utc_now(self) -> datetime:
        with self._lock:
            return self._utc

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._mono += seconds
            self._utc += timedelta(seconds=seconds)


class BudgetExceeded(Exception):
    """The budget refused a request; nothing was sent.

    `retry_in_s` is when a slot may free up (None if only the next UTC day helps)."""

    def __init__(
        self,
        endpoint: str,
        priority: Priority,
        cost: int,
        reason: str,
        retry_in_s: float | None,
    ) -> None:
        self.endpoint = endpoint
        self.priority = priority
        self.cost = cost
        self.reason = reason
        self.retry_in_s = retry_in_s
        hint = f"; retry in {retry_in_s:.1f}s" if retry_in_s is not None else ""
        super().__init__(
            f"EODHD budget refused {endpoint} (priority={priority.value}, cost={cost}): "
            f"{reason}{hint}"
        )


@dataclass(frozen=True)
class Grant:
    """A granted request: pass it back to `refund` if the server did not charge it."""

    endpoint: str
    priority: Priority
    cost: int
    day: date


def endpoint_of(path: str) -> str:
    """`/api/intraday/EURUSD.FOREX` or `intraday/X` → `intraday` (the cost/metrics key)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if parts and parts[0] == "api":
        parts = parts[1:]
    if parts and parts[0] in ("v1.1",):
        parts = parts[1:]
    return parts[0] if parts else ""


class CallBudget:
    """Thread-safe daily-call and per-minute-request budget with priority reserves."""

    def __init__(
        self,
        daily_limit: int = 100_000,
        per_minute_limit: int = 1_000,
        *,
        costs: Mapping[str, int] | None = None,
        per_ticker: Mapping[str, int] | None = None,
        reserve: Mapping[Priority | str, float] | None = None,
        clock: Clock | None = None,
        on_refuse: Callable[[BudgetExceeded], None] | None = None,
    ) -> None:
        if daily_limit <= 0 or per_minute_limit <= 0:
            raise ValueError(
                f"daily_limit and per_minute_limit must be > 0, got {daily_limit}, "
                f"{per_minute_limit}"
            )
        self.daily_limit = daily_limit
        self.per_minute_limit = per_minute_limit
        self.costs = {**DEFAULT_COSTS, **(costs or {})}
        self.per_ticker = {**DEFAULT_PER_TICKER, **(per_ticker or {})}
        res = dict(DEFAULT_RESERVE)
        for k, v in (reserve or {}).items():
            if not 0.0 <= v < 1.0:
                raise ValueError(f"reserve[{k!r}] must be in [0, 1), got {v}")
            res[Priority(k)] = v
        self.reserve = res
        self.clock: Clock = clock or SystemClock()
        self._on_refuse = on_refuse
        self._lock = threading.Lock()
        self._day = self.clock.utc_now().astimezone(UTC).date()
        self._used = 0
        self._window: deque[float] = deque()  # monotonic times of granted requests
        self._granted: dict[str, int] = {}
        self._refused: dict[str, int] = {}

    def cost(self, endpoint: str, tickers: int = 1) -> int:
        return request_cost(endpoint, tickers, self.costs, self.per_ticker)

    def _roll(self, now_mono: float) -> None:
        today = self.clock.utc_now().astimezone(UTC).date()
        if today != self._day:
            self._day, self._used = today, 0
        while self._window and now_mono - self._window[0] >= 60.0:
            self._window.popleft()

    def _cap(self, limit: int, priority: Priority) -> int:
        return math.floor(limit * (1.0 - self.reserve[priority]))

    def acquire(
        self,
        endpoint: str,
        priority: Priority | str = Priority.NORMAL,
        *,
        tickers: int = 1,
        cost: int | None = None,
    ) -> Grant:
        """Reserve one request of `endpoint`, or raise `BudgetExceeded`."""
        prio = Priority(priority)
        c = self.cost(endpoint, tickers) if cost is None else cost
        with self._lock:
            now = self.clock.monotonic()
            self._roll(now)
            err: BudgetExceeded | None = None
            day_cap = self._cap(self.daily_limit, prio)
            minute_cap = self._cap(self.per_minute_limit, prio)
            if self._used + c > day_cap:
                err = BudgetExceeded(
                    endpoint,
                    prio,
                    c,
                    f"daily calls {self._used}+{c} > {day_cap} allowed for this priority "
                    f"(limit {self.daily_limit})",
                    None,
                )
            elif len(self._window) + 1 > minute_cap:
                # The slot frees when enough old requests leave the 60 s window.
                excess = len(self._window) + 1 - minute_cap
                oldest = self._window[excess - 1] if excess <= len(self._window) else now
                err = BudgetExceeded(
                    endpoint,
                    prio,
                    c,
                    f"requests in the last minute {len(self._window)}+1 > {minute_cap} allowed "
                    f"for this priority (limit {self.per_minute_limit})",
                    max(0.0, 60.0 - (now - oldest)),
                )
            if err is not None:
                self._refused[prio.value] = self._refused.get(prio.value, 0) + 1
            else:
                self._used += c
                self._window.append(now)
                self._granted[prio.value] = self._granted.get(prio.value, 0) + 1
                return Grant(endpoint, prio, c, self._day)
        if self._on_refuse is not None:
            self._on_refuse(err)
        raise err

    def refund(self, grant: Grant) -> None:
        """Give back the daily calls of a request EODHD did not charge (HTTP errors cost 0).
        The per-minute request slot stays used: the server did see the request."""
        with self._lock:
            self._roll(self.clock.monotonic())
            if grant.day == self._day:
                self._used = max(0, self._used - grant.cost)

    def set_used_today(self, calls: int) -> None:
        """Align with the server's own counter (e.g. `apiRequests` from `/api/user`)."""
        with self._lock:
            self._roll(self.clock.monotonic())
            self._used = max(0, int(calls))

    def snapshot(self) -> dict[str, object]:
        """Plain numbers for metrics and status pages."""
        with self._lock:
            self._roll(self.clock.monotonic())
            return {
                "day": self._day.isoformat(),
                "used_today": self._used,
                "remaining_today": max(0, self.daily_limit - self._used),
                "daily_limit": self.daily_limit,
                "requests_last_minute": len(self._window),
                "per_minute_limit": self.per_minute_limit,
                "granted": dict(self._granted),
                "refused": dict(self._refused),
            }
