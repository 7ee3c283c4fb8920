"""Pure news decisions: blackout window bounds, direction-aware sentiment, staleness policy."""

from __future__ import annotations

import pytest

from sidecar.engine.news import (
    CurrencyScore,
    blackout_reasons,
    bought_and_sold,
    close_reasons,
    combine,
    fmt_time,
    sentiment_reasons,
    stale_reasons,
    upcoming_events,
)

T = 1_733_488_200  # 2024-12-06 12:30 UTC, a Non Farm Payrolls release
NFP = {
    "time": T,
    "currency": "USD",
    "importance": "high",
    "name": "Non Farm Payrolls",
    "sources": ["eodhd", "mt5"],
}


def test_fmt_time() -> None:
    assert fmt_time(T) == "2024-12-06T12:30Z"


@pytest.mark.parametrize(
    ("offset", "inside"),
    [
        (-1801, False),
        (-1800, True),  # the lower bound is inclusive
        (-1200, True),
        (0, True),
        (3600, True),  # the upper bound is inclusive
        (3601, False),
        (3660, False),
    ],
)
def test_blackout_window_bounds(offset: int, inside: bool) -> None:
    blocks, defensive = blackout_reasons([NFP], ("EUR", "USD"), T + offset, 1800, 3600)
    if inside:
        assert blocks == (
            'NEWS_BLACKOUT currency=USD event="Non Farm Payrolls" at=2024-12-06T12:30Z '
            "until=2024-12-06T13:30Z sources=eodhd,mt5",
        )
        assert defensive == ("news",)
    else:
        assert blocks == () and defensive == ()


def test_blackout_only_for_exposed_currencies_and_high_impact() -> None:
    assert blackout_reasons([NFP], ("GBP", "JPY"), T, 1800, 3600) == ((), ())
    medium = {**NFP, "importance": "medium"}
    assert blackout_reasons([medium], ("USD",), T, 1800, 3600) == ((), ())
    # Currency matching ignores case; time_gmt (the MT5 push field) works as well as time.
    mt5 = {"time_gmt": T, "currency": "usd", "importance": "High", "name": "Nonfarm Payrolls"}
    blocks, _ = blackout_reasons([mt5], ("USD",), T - 60, 1800, 3600)
    assert len(blocks) == 1 and 'event="Nonfarm Payrolls"' in blocks[0]


def test_blackout_bounds_are_configurable() -> None:
    assert blackout_reasons([NFP], ("USD",), T - 600, 300, 0) == ((), ())
    assert blackout_reasons([NFP], ("USD",), T + 1, 300, 0) == ((), ())
    assert len(blackout_reasons([NFP], ("USD",), T - 300, 300, 0)[0]) == 1


def test_two_events_give_two_reasons_earliest_first() -> None:
    ecb = {"time": T - 900, "currency": "EUR", "importance": "high", "name": "ECB Rate Decision"}
    blocks, defensive = blackout_reasons([NFP, ecb], ("EUR", "USD"), T - 300, 1800, 3600)
    assert [b.split()[1] for b in blocks] == ["currency=EUR", "currency=USD"]
    assert defensive == ("news",)


def test_upcoming_events_horizon() -> None:
    assert upcoming_events([NFP], ["USD"], T - 900, 900) == [NFP]
    assert upcoming_events([NFP], ["USD"], T - 901, 900) == []
    assert upcoming_events([NFP], ["USD"], T, 900) == []  # already released
    assert upcoming_events([NFP], None, T - 60, 900) == [NFP]
    assert upcoming_events([NFP], ["EUR"], T - 60, 900) == []


def test_close_before_the_event_window() -> None:
    assert close_reasons([NFP], ["EUR", "USD"], T - 600, 600) == (
        f'NEWS_CLOSE currency=USD event="Non Farm Payrolls" at={fmt_time(T)}',
    )
    assert close_reasons([NFP], ["USD"], T - 601, 600) == ()  # not yet
    assert close_reasons([NFP], ["USD"], T - 1, 600) != ()
    assert close_reasons([NFP], ["USD"], T, 600) == ()  # released: too late to flatten before
    assert close_reasons([NFP], ["GBP", "JPY"], T - 60, 600) == ()
    assert close_reasons([NFP], ["USD"], T - 60, 0) == ()  # off


def test_bought_and_sold() -> None:
    assert bought_and_sold("USD", "JPY", "buy") == ("USD", "JPY")
    assert bought_and_sold("EUR", "USD", "sell") == ("USD", "EUR")
    with pytest.raises(ValueError, match="side"):
        bought_and_sold("EUR", "USD", "flat")


NEG_USD = {"USD": CurrencyScore(-0.62, 3.0), "EUR": CurrencyScore(0.3, 3.0)}


def test_negative_usd_blocks_long_usd_only() -> None:
    blocks, defensive = sentiment_reasons("USD", "JPY", "buy", NEG_USD, -0.5, -0.2)
    assert blocks == ("NEWS_SENTIMENT currency=USD score=-0.62 side=buy",)
    assert defensive == ("sentiment",)
    # Short EURUSD is long USD as well.
    blocks, _ = sentiment_reasons("EUR", "USD", "sell", NEG_USD, -0.5, -0.2)
    assert blocks == ("NEWS_SENTIMENT currency=USD score=-0.62 side=sell",)
    # Long EURUSD buys EUR (positive) and sells USD: nothing to object to.
    assert sentiment_reasons("EUR", "USD", "buy", NEG_USD, -0.5, -0.2) == ((), ())
    # Short USDJPY sells USD.
    assert sentiment_reasons("USD", "JPY", "sell", NEG_USD, -0.5, -0.2) == ((), ())


def test_mildly_negative_is_defensive_and_thresholds_are_inclusive() -> None:
    mild = {"USD": CurrencyScore(-0.3, 3.0)}
    assert sentiment_reasons("USD", "JPY", "buy", mild, -0.5, -0.2) == ((), ("sentiment",))
    at_block = {"USD": CurrencyScore(-0.5, 3.0)}
    assert len(sentiment_reasons("USD", "JPY", "buy", at_block, -0.5, -0.2)[0]) == 1
    at_def = {"USD": CurrencyScore(-0.2, 3.0)}
    assert sentiment_reasons("USD", "JPY", "buy", at_def, -0.5, -0.2) == ((), ("sentiment",))
    fine = {"USD": CurrencyScore(-0.19, 3.0)}
    assert sentiment_reasons("USD", "JPY", "buy", fine, -0.5, -0.2) == ((), ())


def test_sentiment_needs_evidence_and_a_side() -> None:
    thin = {"USD": CurrencyScore(-0.9, 0.5)}
    assert sentiment_reasons("USD", "JPY", "buy", thin, -0.5, -0.2, min_weight=1.0) == ((), ())
    assert sentiment_reasons("USD", "JPY", None, NEG_USD, -0.5, -0.2) == ((), ())
    with pytest.raises(ValueError, match="block_below"):
        sentiment_reasons("USD", "JPY", "buy", NEG_USD, -0.1, -0.2)


def test_stale_policies() -> None:
    ages = {"eodhd_calendar": 1801.0, "eodhd_news": 10.0}
    intervals = {"eodhd_calendar": 900.0, "eodhd_news": 300.0}
    blocks, defensive = stale_reasons(ages, intervals, "block")
    assert blocks == ("NEWS_STALE source=eodhd_calendar age_s=1801 max_s=1800",)
    assert defensive == ("news_stale",)
    assert stale_reasons(ages, intervals, "defensive") == ((), ("news_stale",))
    assert stale_reasons(ages, intervals, "ignore") == ((), ())
    # Exactly twice the interval is not stale yet.
    assert stale_reasons({"eodhd_calendar": 1800.0}, intervals, "block") == ((), ())
    with pytest.raises(ValueError, match="policy"):
        stale_reasons(ages, intervals, "panic")


def test_combine_keeps_order_and_unique_labels() -> None:
    assert combine((("A",), ("news",)), (("B",), ("news", "sentiment")), ((), ())) == (
        ("A", "B"),
        ("news", "sentiment"),
    )
