"""EodhdClient against the real fake-EODHD HTTP server on loopback."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from sidecar.feeds.budget import CallBudget, ManualClock
from sidecar.feeds.eodhd import (
    INTRADAY_MAX_DAYS,
    CallEvent,
    EodhdAuthError,
    EodhdClient,
    EodhdConfigError,
    EodhdNotFoundError,
    EodhdPlanError,
    EodhdPlanWarning,
    EodhdQuotaError,
    EodhdRateLimitError,
    EodhdResponseError,
    EodhdServerError,
    EodhdTimeoutError,
    EodhdValidationError,
    intraday_windows,
    redact,
)
from sidecar.testing.fake_eodhd import FREE_PLAN_WARNING, FakeEodhd

MakeClient = Callable[..., EodhdClient]


def _all_log_text(records: list[logging.LogRecord]) -> str:
    return "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in records)


# --- happy paths -----------------------------------------------------------------------------


def test_economic_events_have_documented_shape_and_nfp(client: EodhdClient) -> None:
    events = client.economic_events("2025-06-01", "2025-06-30")
    nfp = [e for e in events if e["type"] == "Non Farm Payrolls"]
    assert len(nfp) == 1 and nfp[0]["country"] == "US"
    assert nfp[0]["date"] == "2025-06-06 12:30:00"
    assert {"EU", "UK", "JP", "US"} <= {e["country"] for e in events}
    assert set(events[0]) >= {"type", "comparison", "period", "country", "date", "actual"}


def test_economic_events_page_through_offsets(client: EodhdClient, fake: FakeEodhd) -> None:
    whole = client.economic_events("2025-05-01", "2025-06-30", page_size=1000)
    paged = client.economic_events("2025-05-01", "2025-06-30", page_size=10)
    assert paged == whole and len(whole) > 20
    offsets = [r.params["offset"] for r in fake.requests if r.params.get("limit") == "10"]
    assert offsets[:3] == ["0", "10", "20"]


def test_economic_events_split_dates_when_offset_cap_reached(
    client: EodhdClient, fake: FakeEodhd
) -> None:
    # Offsets stop at 1000, so one range yields at most 2000 events; six years hold more.
    split = client.economic_events("2019-07-01", "2025-06-30", page_size=1000)
    assert len(split) > 2000
    ranges = {(r.params["from"], r.params["to"]) for r in fake.requests}
    assert len(ranges) >= 3  # the whole range, then its halves
    assert all(int(r.params["offset"]) <= 1000 for r in fake.requests)
    keys = [(e["date"], e["country"], e["type"]) for e in split]
    assert len(keys) == len(set(keys))  # halves do not overlap
    assert min(keys)[0].startswith("2019-07") and max(keys)[0].startswith("2025-06")


def test_news_sentiments_eod_and_params(client: EodhdClient, fake: FakeEodhd) -> None:
    news = client.news(symbol="EURUSD.FOREX", limit=5)
    assert len(news) == 5 and all("EURUSD.FOREX" in n["symbols"] for n in news)
    assert news[0]["date"] >= news[-1]["date"]  # newest first
    sent = client.sentiments(["eurusd.forex", "AAPL.US"], "2025-06-01", "2025-06-30")
    assert set(sent) == {"EURUSD.FOREX", "AAPL.US"}
    assert all(-1 <= row["normalized"] <= 1 for row in sent["AAPL.US"])
    bars = client.eod_bars("EURUSD.FOREX", "2025-06-02", "2025-06-06")
    assert [b["date"] for b in bars] == [f"2025-06-0{d}" for d in range(2, 7)]
    for r in fake.requests:
        assert r.params["fmt"] == "json" and "api_token" not in r.params


def test_news_requires_symbol_or_tag(client: EodhdClient, fake: FakeEodhd) -> None:
    with pytest.raises(EodhdConfigError, match="symbol="):
        client.news()
    assert fake.count() == 0


def test_intraday_range_is_chunked_within_max_window(make_client: MakeClient) -> None:
    # US equities trade 13:30-20:00 UTC, which keeps 250 days of 1m bars small enough.
    with FakeEodhd(intraday_session=(14 * 60, 14 * 60 + 10)) as fake:
        client = make_client(base_url=fake.base_url)
        start = int(datetime(2024, 10, 1, tzinfo=UTC).timestamp())
        end = int(datetime(2025, 6, 10, tzinfo=UTC).timestamp())
        bars = client.intraday_bars("AAPL.US", "1m", start, end)
        reqs = fake.requests
    assert len(reqs) == 3  # 252 days / 120-day windows
    assert all(r.status == 200 for r in reqs)  # the fake answers 422 past the window
    spans = [int(r.params["to"]) - int(r.params["from"]) for r in reqs]
    assert max(spans) <= 120 * 86400
    ts = [b["timestamp"] for b in bars]
    assert ts == sorted(set(ts)) and ts[0] >= start and ts[-1] <= end
    assert len(ts) == 10 * sum(
        1 for d in range(start, end, 86400) if datetime.fromtimestamp(d, UTC).weekday() < 5
    )


def test_intraday_windows_cover_range_contiguously() -> None:
    for interval, days in INTRADAY_MAX_DAYS.items():
        start, end = 1_000_000_000, 1_000_000_000 + (2 * days + 3) * 86400 + 17
        wins = intraday_windows(start, end, interval)
        assert len(wins) == 3 and wins[0][0] == start and wins[-1][1] == end
        assert all(e - s <= days * 86400 for s, e in wins)
        assert all(a[1] == b[0] for a, b in itertools.pairwise(wins))
    assert intraday_windows(5, 5, "1h") == [(5, 5)]
    with pytest.raises(EodhdConfigError, match="interval"):
        intraday_windows(0, 10, "15s")


def test_too_long_intraday_window_gives_validation_error(make_client: MakeClient) -> None:
    client = make_client(intraday_max_days={"5m": 700})  # wider than EODHD allows
    with pytest.raises(EodhdValidationError) as ei:
        client.intraday_bars("AAPL.US", "5m", 0, 650 * 86400)
    assert "Max period length is 600 days" in str(ei.value)
    assert ei.value.errors["to"] == ["Max period length is 600 days"]
    assert ei.value.endpoint == "intraday" and ei.value.status == 422


# --- retries ---------------------------------------------------------------------------------


def test_429_retry_after_is_honoured(client: EodhdClient, fake: FakeEodhd, sleeps: list) -> None:
    fake.fail("/api/eod", 429, retry_after=7, times=2)
    bars = client.eod_bars("EURUSD.FOREX", "2025-06-02", "2025-06-03")
    assert len(bars) == 2
    assert sleeps == [7.0, 7.0]
    assert [r.status for r in fake.requests] == [429, 429, 200]
    snap = client.stats.snapshot()
    assert snap["calls"][("eod", "429")] == 2 and snap["calls"][("eod", "200")] == 1


def test_5xx_retried_with_exponential_jittered_backoff(
    make_client: MakeClient, fake: FakeEodhd, sleeps: list
) -> None:
    client = make_client(backoff_base_s=1.0, backoff_cap_s=60.0, max_retries=4)
    fake.fail("/api/news", 502, times=2)
    fake.fail("/api/news", 503, times=1)
    assert client.news(symbol="AAPL.US", limit=1)
    assert len(sleeps) == 3
    for n, s in enumerate(sleeps):
        assert 0.0 <= s <= 2**n  # full jitter under the exponential ceiling
    again: list[float] = []
    other = make_client(sleep=again.append)  # same seed → same delays: deterministic
    fake.fail("/api/news", 500, times=3)
    other.news(symbol="AAPL.US", limit=1)
    assert again == sleeps


def test_5xx_gives_up_after_max_retries(
    make_client: MakeClient, fake: FakeEodhd, sleeps: list
) -> None:
    client = make_client(max_retries=2)
    fake.fail("/api/eod", 500, times=None)
    with pytest.raises(EodhdServerError, match="HTTP 500 after 3 attempts") as ei:
        client.eod_bars("EURUSD.FOREX")
    assert ei.value.endpoint == "eod" and fake.count() == 3 and len(sleeps) == 2


def test_429_with_too_long_retry_after_is_raised(
    make_client: MakeClient, fake: FakeEodhd, sleeps: list
) -> None:
    client = make_client(max_retry_after_s=30)
    fake.fail("/api/eod", 429, retry_after=600)
    with pytest.raises(EodhdRateLimitError) as ei:
        client.eod_bars("EURUSD.FOREX")
    assert ei.value.retry_after_s == 600 and sleeps == [] and fake.count() == 1


def test_timeout_is_retried_then_succeeds(
    make_client: MakeClient, fake: FakeEodhd, sleeps: list
) -> None:
    client = make_client(timeout=(1.0, 0.2))
    fake.slow("/api/eod", 1.0)
    assert client.eod_bars("EURUSD.FOREX", "2025-06-02", "2025-06-02")
    assert len(sleeps) == 1
    assert client.stats.snapshot()["calls"][("eod", "timeout")] == 1


def test_timeouts_exhaust_retries_with_clear_error(
    make_client: MakeClient, fake: FakeEodhd
) -> None:
    client = make_client(timeout=(1.0, 0.1), max_retries=1)
    fake.slow("/api/eod", 0.6, times=None)
    with pytest.raises(EodhdTimeoutError, match="timeout on all 2 attempts") as ei:
        client.eod_bars("EURUSD.FOREX")
    assert ei.value.__cause__ is None and ei.value.__suppress_context__


def test_connection_refused_is_a_timeout_error(make_client: MakeClient) -> None:
    with FakeEodhd() as gone:
        url = gone.base_url
    client = make_client(base_url=url, max_retries=1)
    with pytest.raises(EodhdTimeoutError, match="connection_error"):
        client.eod_bars("EURUSD.FOREX")


# --- no retry on client errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc", "text"),
    [
        (401, EodhdAuthError, "token is missing or invalid"),
        (403, EodhdPlanError, "plan does not include"),
        (404, EodhdNotFoundError, "unknown ticker"),
        (422, EodhdValidationError, "invalid parameters"),
        (402, EodhdQuotaError, "quota"),
    ],
)
def test_client_errors_are_not_retried(
    client: EodhdClient, fake: FakeEodhd, sleeps: list, status: int, exc: type, text: str
) -> None:
    fake.fail("/api/intraday", status)
    with pytest.raises(exc, match=text) as ei:
        client.intraday_bars("EURUSD.FOREX", "1h", 1748822400, 1748908800)
    assert fake.count() == 1 and sleeps == []
    assert ei.value.status == status and ei.value.endpoint == "intraday"
    assert "EODHD intraday" in str(ei.value)


def test_wrong_token_plain_text_401(make_client: MakeClient, fake: FakeEodhd) -> None:
    client = make_client(api_token="wrong-token-value-123")
    with pytest.raises(EodhdAuthError) as ei:
        client.eod_bars("EURUSD.FOREX")
    assert "Unauthenticated" in str(ei.value)
    assert "wrong-token-value-123" not in str(ei.value)


def test_plan_forbidden_body_named(client: EodhdClient, fake: FakeEodhd) -> None:
    fake.fail("/api/economic-events", 403, body="Forbidden")
    with pytest.raises(EodhdPlanError, match=r"economic-events: HTTP 403 'Forbidden'"):
        client.economic_events("2025-06-01", "2025-06-02")


# --- bodies ----------------------------------------------------------------------------------


def test_malformed_json_is_a_clear_error(client: EodhdClient, fake: FakeEodhd) -> None:
    fake.malformed("/api/news")
    with pytest.raises(EodhdResponseError, match="not valid JSON") as ei:
        client.news(symbol="AAPL.US")
    assert fake.count() == 1 and ei.value.endpoint == "news"


def test_unexpected_shape_is_a_clear_error(client: EodhdClient) -> None:
    with pytest.raises(EodhdResponseError, match="expected a JSON array"):
        client._expect_list({"data": []}, "news", "news")


@pytest.mark.parametrize("placement", ["element", "field"])
def test_free_plan_warning_stripped_and_surfaced(
    client: EodhdClient, fake: FakeEodhd, caplog: pytest.LogCaptureFixture, placement: str
) -> None:
    fake.warning("/api/eod", placement=placement)
    with caplog.at_level(logging.WARNING, logger="sidecar.feeds.eodhd"):
        bars = client.eod_bars("EURUSD.FOREX", "2025-06-02", "2025-06-06")
    assert len(bars) == 5 and all("warning" not in b and "close" in b for b in bars)
    warned = [r for r in caplog.records if getattr(r, "event", None) == "eodhd.warning"]
    assert warned and warned[0].warning == FREE_PLAN_WARNING  # type: ignore[attr-defined]
    assert client.stats.snapshot()["warnings"] == {"eod": 1}


def test_free_plan_warning_can_raise(make_client: MakeClient, fake: FakeEodhd) -> None:
    client = make_client(plan_warning="raise")
    fake.warning("/api/eod")
    with pytest.raises(EodhdPlanWarning, match="limited by one year"):
        client.eod_bars("EURUSD.FOREX", "2024-01-01", "2025-06-06")


# --- token hygiene, logging, metrics ---------------------------------------------------------


def test_token_never_in_logs_exceptions_or_repr(
    make_client: MakeClient, fake: FakeEodhd, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[CallEvent] = []
    client = make_client(on_call=seen.append, max_retries=1, timeout=(1.0, 0.1))
    errors: list[Exception] = []
    with caplog.at_level(logging.DEBUG):  # urllib3 logs request lines at DEBUG
        fake.fail("/api/eod", 500, times=None)
        fake.slow("/api/news", 0.5, times=None)
        fake.fail(
            "/api/sentiments",
            422,
            body='{"message":"bad request URL: /x?api_token=' + fake.token + '"}',
        )
        for call in (
            lambda: client.eod_bars("EURUSD.FOREX"),
            lambda: client.news(symbol="AAPL.US"),
            lambda: client.sentiments("AAPL.US"),
        ):
            try:
                call()
            except Exception as e:
                errors.append(e)
        client.economic_events("2025-06-01", "2025-06-02")
    assert len(errors) == 3
    text = _all_log_text(caplog.records) + repr(client) + repr(seen)
    for e in errors:
        text += str(e) + repr(e) + repr(e.__dict__) + repr(e.__cause__) + repr(e.__context__)
    assert "api_token=***" in text  # URLs are there, redacted
    assert fake.token not in text
    assert any(r.name.startswith("urllib3") for r in caplog.records)


def test_one_call_event_per_attempt(
    make_client: MakeClient, fake: FakeEodhd, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[CallEvent] = []
    client = make_client(on_call=seen.append)
    fake.fail("/api/intraday", 429, retry_after=1)
    with caplog.at_level(logging.INFO, logger="sidecar.feeds.eodhd"):
        client.intraday_bars("EURUSD.FOREX", "5m", 1748822400, 1748826000)
    calls = [r for r in caplog.records if getattr(r, "event", None) == "eodhd.call"]
    assert [(c.endpoint, c.status, c.cost) for c in calls] == [  # type: ignore[attr-defined]
        ("intraday", "429", 0),
        ("intraday", "200", 5),
    ]
    assert all(isinstance(c.latency_ms, float) for c in calls)  # type: ignore[attr-defined]
    assert [(e.status, e.attempt) for e in seen] == [("429", 0), ("200", 1)]
    assert client.last_rate_limit_remaining is not None


def test_token_from_environment_and_base_url(
    fake: FakeEodhd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EODHD_API_TOKEN", fake.token)
    monkeypatch.setenv("EODHD_BASE_URL", fake.base_url + "/")
    with EodhdClient(sleep=lambda s: None) as client:
        assert client.base_url == fake.base_url
        assert client.eod_bars("EURUSD.FOREX", "2025-06-02", "2025-06-02")
    monkeypatch.delenv("EODHD_API_TOKEN")
    with pytest.raises(EodhdConfigError, match="EODHD_API_TOKEN"):
        EodhdClient()


def test_redact() -> None:
    assert redact("http://x/api/eod?a=1&api_token=SECRET&fmt=json") == (
        "http://x/api/eod?a=1&api_token=***&fmt=json"
    )
    assert redact("key SECRET in text", "SECRET") == "key *** in text"


# --- budget in the client --------------------------------------------------------------------


def test_budget_refusal_never_reaches_the_network(make_client: MakeClient, fake: FakeEodhd) -> None:
    budget = CallBudget(daily_limit=12, per_minute_limit=100, clock=ManualClock())
    client = make_client(budget=budget)
    client.news(symbol="AAPL.US", limit=1)  # 5 calls
    client.news(symbol="AAPL.US", limit=1, priority="high")  # 10
    from sidecar.feeds.budget import BudgetExceeded

    with pytest.raises(BudgetExceeded, match="news"):
        client.news(symbol="AAPL.US", limit=1, priority="high")
    assert fake.count() == 2
    assert client.stats.snapshot()["calls"][("news", "budget_refused")] == 1
