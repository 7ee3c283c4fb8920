"""Sentiment scoring: decay, news + series, lexicon fallback, currencies, direction, macro."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.feeds.eodhd import EodhdClient
from sidecar.feeds.sentiment import (
    DEFAULT_HALF_LIFE_S,
    LexiconScorer,
    SentimentItem,
    currency_scores,
    decay,
    macro_items,
    macro_surprise,
    news_items,
    series_items,
    ticker_scores,
)
from sidecar.testing.fake_eodhd import DEFAULT_NOW

NOW = int(datetime(2025, 6, 30, 12, tzinfo=UTC).timestamp())
H = 3600


def test_decay_halves_every_half_life() -> None:
    assert decay(0) == 1.0
    assert decay(6 * H) == pytest.approx(0.5)
    assert decay(12 * H) == pytest.approx(0.25)
    assert decay(2 * H, half_life_s=2 * H) == pytest.approx(0.5)
    assert DEFAULT_HALF_LIFE_S == 6 * H
    with pytest.raises(ValueError, match="half_life_s"):
        decay(1, 0)


def test_recent_news_outweighs_old_news() -> None:
    items = [
        SentimentItem("EURUSD.FOREX", NOW - 12 * H, -1.0),  # weight 0.25
        SentimentItem("EURUSD.FOREX", NOW, 0.5),  # weight 1
    ]
    s = ticker_scores(items, NOW)["EURUSD.FOREX"]
    assert s.value == pytest.approx((0.5 - 0.25) / 1.25)
    assert s.weight == pytest.approx(1.25) and s.count == 2
    # Twelve hours later both have aged: the value is the same, the evidence is a quarter.
    later = ticker_scores(items, NOW + 12 * H)["EURUSD.FOREX"]
    assert later.value == pytest.approx(s.value) and later.weight == pytest.approx(1.25 / 4)
    # A shorter half-life forgets the old item faster.
    fast = ticker_scores(items, NOW, half_life_s=2 * H)["EURUSD.FOREX"]
    assert fast.value > s.value


def test_future_items_are_ignored() -> None:
    items = [SentimentItem("AAPL.US", NOW + 60, -1.0), SentimentItem("AAPL.US", NOW - 60, 0.4)]
    assert ticker_scores(items, NOW)["AAPL.US"].value == pytest.approx(0.4)


@given(
    scores=st.lists(st.floats(-1, 1), min_size=1, max_size=20),
    ages=st.lists(st.integers(0, 10 * 86400), min_size=20, max_size=20),
)
def test_score_stays_within_bounds(scores: list[float], ages: list[int]) -> None:
    items = [SentimentItem("X", NOW - a, s) for s, a in zip(scores, ages, strict=False)]
    s = ticker_scores(items, NOW)["X"]
    assert -1.0 - 1e-12 <= s.value <= 1.0 + 1e-12
    assert min(scores) - 1e-9 <= s.value <= max(scores) + 1e-9


def test_news_and_series_from_the_fake_server(client: EodhdClient) -> None:
    news = client.news(symbol="EURUSD.FOREX", limit=50)
    scorer = LexiconScorer()
    items = news_items(news + news[:5], scorer)  # repeats are dropped by link
    assert len(items) == len(news)
    sources = {i.source for i in items}
    assert sources == {"news", "lexicon"}
    lex = [i for i in items if i.source == "lexicon"]
    assert any(i.score > 0.5 for i in lex) and any(i.score < -0.5 for i in lex)
    assert len(news_items(news)) < len(news)  # without a scorer unscored ones are skipped
    series = series_items(client.sentiments("EURUSD.FOREX", "2025-06-20", "2025-06-30"))
    now = int(DEFAULT_NOW.timestamp())
    assert all(i.time % 86400 == 0 for i in series)
    assert max(i.time for i in series) > now  # today's row is complete only at midnight
    scores = ticker_scores(items + series, now)
    assert set(scores) == {"EURUSD.FOREX"} and -1 <= scores["EURUSD.FOREX"].value <= 1


def test_series_weight_grows_with_article_count() -> None:
    items = series_items(
        {"aapl.us": [{"date": "2025-06-29", "count": 16, "normalized": 0.5},
                     {"date": "2025-06-28", "count": 1, "normalized": -0.5}]},
        series_weight=0.5,
    )  # fmt: skip
    assert [i.key for i in items] == ["AAPL.US", "AAPL.US"]
    assert [i.weight for i in items] == [pytest.approx(2.0), pytest.approx(0.5)]


def test_lexicon_works_offline_on_finance_words() -> None:
    scorer = LexiconScorer()
    assert scorer.score("Euro rallies as growth data beats forecasts") > 0.3
    assert scorer.score("Yen plunges, recession fears and bankruptcy worries") < -0.3
    assert abs(scorer.score("The meeting is on Tuesday")) < 0.1
    custom = LexiconScorer(extra={"hawkish": 2.0})
    assert custom.score("hawkish") > 0.3


def test_currency_scores_split_pairs() -> None:
    items = [
        SentimentItem("EURUSD.FOREX", NOW, 0.6),
        SentimentItem("USDJPY.FOREX", NOW, 0.2),
        SentimentItem("AAPL.US", NOW, 0.9),  # no currency unless mapped
    ]
    cs = currency_scores(items, NOW)
    assert cs["EUR"].value == pytest.approx(0.6)
    assert cs["USD"].value == pytest.approx((-0.6 + 0.2) / 2)
    assert cs["JPY"].value == pytest.approx(-0.2)
    assert "AAPL" not in cs and set(cs) == {"EUR", "USD", "JPY"}
    mapped = currency_scores(items, NOW, ticker_currency={"aapl.us": "usd"})
    assert mapped["USD"].value == pytest.approx((-0.6 + 0.2 + 0.9) / 3)


@pytest.mark.parametrize(
    ("name", "actual", "estimate", "sign"),
    [
        ("Inflation Rate YoY", 3.4, 3.2, 1),  # hotter CPI favours the currency
        ("Core Inflation Rate MoM", 0.2, 0.3, -1),
        ("Non Farm Payrolls", 250, 180, 1),
        ("Unemployment Rate", 4.3, 4.1, -1),  # more unemployed hurts it
        ("Initial Jobless Claims", 250, 220, -1),
        ("GDP Growth Rate QoQ", 0.5, 0.2, 1),
        ("Fed Interest Rate Decision", 5.75, 5.5, 1),
        ("Retail Sales MoM", -0.5, 0.3, -1),
    ],
)
def test_macro_surprise_sign(name: str, actual: float, estimate: float, sign: int) -> None:
    s = macro_surprise({"type": name, "actual": actual, "estimate": estimate})
    assert s is not None and math.copysign(1, s) == sign and abs(s) < 1


def test_macro_surprise_missing_or_unknown() -> None:
    assert macro_surprise({"type": "CPI", "actual": None, "estimate": 3.0}) is None
    assert macro_surprise({"type": "CPI", "actual": 3.0, "estimate": "NA"}) is None
    assert (
        macro_surprise({"type": "Baker Hughes Oil Rig Count", "actual": 1, "estimate": 2}) is None
    )
    assert macro_surprise({"type": "CPI", "actual": 3.0, "estimate": 3.0}) == 0.0


def test_macro_items_give_per_currency_scores() -> None:
    events = [
        {"name": "Non Farm Payrolls", "country": "US", "time": NOW - H, "actual": 300.0,
         "estimate": 180.0},
        {"name": "Unemployment Rate", "currency": "USD", "time": NOW - H, "actual": 4.0,
         "estimate": 4.2},
        {"name": "Inflation Rate", "country": "DE", "time": NOW - 2 * H, "actual": 1.9,
         "estimate": 2.3},
        {"name": "CPI", "country": "JP", "time": NOW - H, "actual": None, "estimate": 2.0},
    ]  # fmt: skip
    scores = ticker_scores(macro_items(events), NOW)
    assert set(scores) == {"USD", "EUR"}
    assert scores["USD"].value > 0.9 and scores["EUR"].value < -0.9
