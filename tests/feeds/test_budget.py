"""CallBudget: costs, limits, priority shedding, day rollover, thread safety, and the client
under a storm of 429s and timeouts against the real fake server."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from sidecar.feeds.budget import (
    BudgetExceeded,
    CallBudget,
    ManualClock,
    Priority,
    endpoint_of,
    request_cost,
)
from sidecar.feeds.eodhd import (
    EodhdClient,
    EodhdError,
    EodhdRateLimitError,
    EodhdTimeoutError,
)
from sidecar.testing.fake_eodhd import FakeEodhd


def test_costs_follow_the_reference() -> None:
    assert request_cost("news") == 5
    assert request_cost("intraday") == 5
    assert request_cost("eod") == 1
    assert request_cost("economic-events") == 1
    assert request_cost("fundamentals") == 10
    assert request_cost("sentiments", tickers=3) == 5 + 15
    assert request_cost("real-time", tickers=4) == 4
    assert request_cost("something-new") == 10  # unknown endpoints are assumed expensive
    assert endpoint_of("/api/intraday/EURUSD.FOREX") == "intraday"
    assert endpoint_of("eod/AAPL.US") == "eod"
    assert endpoint_of("/api/v1.1/fundamentals/AAPL.US") == "fundamentals"


def test_low_priority_is_shed_first_and_high_uses_the_reserve() -> None:
    budget = CallBudget(daily_limit=100, per_minute_limit=1000, clock=ManualClock())
    granted = {p: 0 for p in Priority}
    for prio in (Priority.LOW, Priority.NORMAL, Priority.HIGH):
        while True:
            try:
                budget.acquire("news", prio)  # 5 calls each
            except BudgetExceeded as e:
                assert e.priority is prio and e.retry_in_s is None
                break
            granted[prio] += 1
    # low stops at 70 %, normal at 90 %, high at 100 % of the day.
    assert granted == {Priority.LOW: 14, Priority.NORMAL: 4, Priority.HIGH: 2}
    assert budget.snapshot()["used_today"] == 100
    assert budget.snapshot()["refused"] == {"low": 1, "normal": 1, "high": 1}


def test_per_minute_window_slides_and_reports_retry_in() -> None:
    clock = ManualClock()
    budget = CallBudget(daily_limit=10_000, per_minute_limit=10, clock=clock)
    for _ in range(9):
        budget.acquire("eod", "normal")
        clock.advance(1)
    with pytest.raises(BudgetExceeded, match="last minute") as ei:
        budget.acquire("eod", "normal")  # normal may use 9 of 10
    assert ei.value.retry_in_s == pytest.approx(51.0)  # the first request leaves at t=60
    budget.acquire("eod", "high")  # high may use the last slot (window holds t=0..9 now)
    clock.advance(51)  # t=60: the t=0 request left, but the high one still fills it
    with pytest.raises(BudgetExceeded) as ei:
        budget.acquire("eod", "normal")
    assert ei.value.retry_in_s == pytest.approx(1.0)
    clock.advance(1)
    budget.acquire("eod", "normal")


def test_daily_counter_resets_at_utc_midnight() -> None:
    clock = ManualClock(datetime(2025, 6, 30, 23, 59, tzinfo=UTC))
    budget = CallBudget(daily_limit=10, per_minute_limit=100, clock=clock)
    budget.acquire("news", "high")
    budget.acquire("news", "high")
    with pytest.raises(BudgetExceeded, match="daily"):
        budget.acquire("eod", "high")
    clock.advance(120)
    budget.acquire("news", "high")
    assert budget.snapshot()["day"] == "2025-07-01"
    assert budget.snapshot()["used_today"] == 5


def test_refund_and_sync_with_server_counter() -> None:
    budget = CallBudget(daily_limit=20, per_minute_limit=100, clock=ManualClock())
    g = budget.acquire("intraday", "normal")
    budget.refund(g)
    assert budget.snapshot()["used_today"] == 0
    assert budget.snapshot()["requests_last_minute"] == 1  # the server still saw it
    budget.set_used_today(18)
    with pytest.raises(BudgetExceeded):
        budget.acquire("eod", "normal")


def test_bad_configuration_is_reported() -> None:
    with pytest.raises(ValueError, match="daily_limit"):
        CallBudget(daily_limit=0)
    with pytest.raises(ValueError, match="reserve"):
        CallBudget(reserve={"low": 1.5})
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2025, 1, 1))


def test_thread_safe_never_overspends() -> None:
    budget = CallBudget(daily_limit=1000, per_minute_limit=100_000, clock=ManualClock())
    grants: list[int] = []
    lock = threading.Lock()

    def worker(prio: str) -> None:
        for _ in range(200):
            try:
                g = budget.acquire("news", prio)
            except BudgetExceeded:
                continue
            with lock:
                grants.append(g.cost)

    threads = [threading.Thread(target=worker, args=(p,)) for p in ("low", "normal", "high") * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(grants) == budget.snapshot()["used_today"] == 1000


def test_storm_of_429_and_timeouts_never_exceeds_the_limit(
    make_client: Callable[..., EodhdClient], fake: FakeEodhd
) -> None:
    clock = ManualClock()
    budget = CallBudget(daily_limit=10_000, per_minute_limit=40, clock=clock)
    refused: list[BudgetExceeded] = []
    client = make_client(budget=budget, max_retries=3, timeout=(1.0, 0.05))
    fake.fail("/api/news", 429, retry_after=1, times=None)
    fake.slow("/api/eod", 0.3, times=None)
    outcomes: dict[str, int] = {}
    for i in range(30):
        prio = ("low", "normal", "high")[i % 3]
        try:
            if i % 2:
                client.news(symbol="AAPL.US", limit=1, priority=prio)
            else:
                client.eod_bars("EURUSD.FOREX", priority=prio)
        except BudgetExceeded as e:
            refused.append(e)
            outcomes["refused"] = outcomes.get("refused", 0) + 1
        except (EodhdRateLimitError, EodhdTimeoutError, EodhdError) as e:
            outcomes[type(e).__name__] = outcomes.get(type(e).__name__, 0) + 1
    # No time passed: the server must have seen at most the per-minute limit of requests.
    assert fake.count() <= 40
    assert budget.snapshot()["requests_last_minute"] == fake.count() == 40
    assert refused and {e.priority.value for e in refused} >= {"low"}
    # Low priority was shed before high: high got requests in after low was refused.
    first_low_refusal = next(i for i, e in enumerate(refused) if e.priority is Priority.LOW)
    assert all(e.priority is not Priority.HIGH for e in refused[: first_low_refusal + 1])
    # 429s are refunded (EODHD does not charge them), timeouts stay charged (the server may
    # have served them): the budget's count equals what the client recorded per attempt.
    stats = client.stats.snapshot()
    assert stats["calls"][("news", "429")] > 0
    assert budget.snapshot()["used_today"] == sum(stats["cost"].values())
    assert budget.snapshot()["used_today"] >= stats["calls"].get(("eod", "timeout"), 0)
