"""Calendar rules: importance, currencies, symbol exposure and EODHD/MT5 dedup."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.feeds.calendar_rules import (
    ImpactRules,
    classify_importance,
    currency_for_country,
    dedup_events,
    dedup_key,
    event_topic,
    normalize_name,
    same_event,
    split_pair,
    symbol_currencies,
)

NFP_TIME = 1_749_213_000  # 2025-06-06 12:30 UTC


@pytest.mark.parametrize(
    ("name", "country", "expected"),
    [
        ("Non Farm Payrolls", "US", "high"),
        ("Nonfarm Payrolls", "US", "high"),
        ("NON-FARM PAYROLLS", "US", "high"),
        ("Inflation Rate YoY", "EU", "high"),
        ("Core Inflation Rate MoM", "US", "high"),
        ("CPI", "JP", "high"),
        ("Fed Interest Rate Decision", "US", "high"),
        ("ECB Interest Rate Decision", "EU", "high"),
        ("BoE Interest Rate Decision", "UK", "high"),
        ("RBA Interest Rate Decision", "AU", "high"),
        ("GDP Growth Rate QoQ Prel", "UK", "high"),
        ("Unemployment Rate", "JP", "high"),
        ("Retail Sales MoM", "US", "high"),
        ("ISM Manufacturing PMI", "US", "high"),
        ("HCOB Manufacturing PMI", "DE", "high"),
        ("Ifo Business Climate", "DE", "high"),
        ("Ifo Business Climate", "FR", "medium"),
        ("Initial Jobless Claims", "US", "high"),
        ("PPI MoM", "US", "medium"),
        ("Baker Hughes Oil Rig Count", "US", "low"),
        ("3-Month Bill Auction", "US", "low"),
        ("Christmas Day", "US", "low"),
        ("Fed Chair Powell Speech", "US", "low"),
    ],
)
def test_importance(name: str, country: str, expected: str) -> None:
    assert classify_importance(name, country) == expected
    assert classify_importance({"type": name, "country": country}) == expected


def test_rules_are_configurable() -> None:
    rules = ImpactRules(high={"US": ("ppi",)}, medium={})
    assert classify_importance("PPI MoM", "US", rules) == "high"
    assert classify_importance("PPI MoM", "DE", rules) == "low"
    assert classify_importance("Non Farm Payrolls", "US", rules) == "low"


def test_topics_prefer_specific_over_general() -> None:
    assert event_topic("Core CPI") == "core cpi"
    assert event_topic("Consumer Price Index (CPI) y/y") == "cpi"
    assert event_topic("Core PCE Price Index MoM") == "core pce"
    assert normalize_name("Non-Farm  Payroll (r)") == "nonfarm payrolls r"


@pytest.mark.parametrize(
    ("country", "currency"),
    [("US", "USD"), ("EU", "EUR"), ("DE", "EUR"), ("fr", "EUR"), ("IT", "EUR"), ("ES", "EUR"),
     ("UK", "GBP"), ("GB", "GBP"), ("JP", "JPY"), ("CH", "CHF"), ("CA", "CAD"), ("AU", "AUD"),
     ("NZ", "NZD"), ("CN", "CNY"), ("XX", None), (None, None)],
)  # fmt: skip
def test_country_currency(country: str | None, currency: str | None) -> None:
    assert currency_for_country(country) == currency


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("EURUSD", ("EUR", "USD")),
        ("EURUSD.raw", ("EUR", "USD")),
        ("EURUSDm", ("EUR", "USD")),
        ("EURUSD_i", ("EUR", "USD")),
        ("#EURUSD", ("EUR", "USD")),
        ("eurusd.pro", ("EUR", "USD")),
        ("EURUSD.FOREX", ("EUR", "USD")),
        ("USDJPY", ("USD", "JPY")),
        ("XAUUSD", ("XAU", "USD")),
        ("BTC-USD.CC", ("BTC", "USD")),
        ("US500", ("USD",)),
        ("US30", ("USD",)),
        ("NAS100", ("USD",)),
        ("US500m", ("USD",)),
        ("#US30", ("USD",)),
        ("DE40", ("EUR",)),
        ("GER40", ("EUR",)),
        ("UK100", ("GBP",)),
        ("JP225", ("JPY",)),
        ("AAPL.US", ("USD",)),
        ("BMW.XETRA", ("EUR",)),
        ("GSPC.INDX", ("USD",)),
        ("AAPL", ()),
        ("WHATEVER", ()),
    ],
)
def test_symbol_currencies(symbol: str, expected: tuple[str, ...]) -> None:
    assert symbol_currencies(symbol) == expected


def test_symbol_overrides_win() -> None:
    ov = {"AAPL": "USD", "#SPOTGOLD": ["XAU", "USD"], "EURUSD.raw": ("GBP",)}
    assert symbol_currencies("AAPL", ov) == ("USD",)
    assert symbol_currencies("SPOTGOLD", ov) == ("XAU", "USD")
    assert symbol_currencies("EURUSD.raw", ov) == ("GBP",)
    assert split_pair("US500") is None


def _ev(name: str, t: int, cur: str | None = None, country: str | None = None, **kw: object):
    return {"name": name, "time": t, "currency": cur, "country": country, **kw}


def test_same_event_across_sources() -> None:
    eodhd = _ev("Non Farm Payrolls", NFP_TIME, country="US", source="eodhd")
    mt5 = _ev("Nonfarm Payrolls", NFP_TIME + 60, cur="USD", source="mt5")
    assert same_event(eodhd, mt5)
    assert not same_event(eodhd, {**mt5, "time": NFP_TIME + 3600})  # outside tolerance
    assert not same_event(eodhd, {**mt5, "currency": "CAD"})
    assert not same_event(eodhd, _ev("Unemployment Rate", NFP_TIME, "USD"))  # same time
    # MT5 "CPI m/m" vs EODHD "Inflation Rate" with comparison yoy: different releases.
    assert not same_event(
        _ev("CPI m/m", NFP_TIME, "USD"),
        _ev("Inflation Rate", NFP_TIME, country="US", comparison="yoy"),
    )
    assert same_event(
        _ev("CPI y/y", NFP_TIME, "USD"),
        _ev("Inflation Rate", NFP_TIME, country="US", comparison="yoy"),
    )
    # Names without a topic fall back to token similarity.
    assert same_event(
        _ev("Baker Hughes Oil Rig Count", NFP_TIME, "USD"),
        _ev("Baker Hughes US Oil Rig Count", NFP_TIME, "USD"),
    )
    assert not same_event(
        _ev("Baker Hughes Oil Rig Count", NFP_TIME, "USD"),
        _ev("3-Month Bill Auction", NFP_TIME, "USD"),
    )


def test_dedup_merges_and_keeps_preferred_source() -> None:
    mt5 = [
        _ev("Nonfarm Payrolls", NFP_TIME, "USD", importance="high", actual=None, forecast=200.0,
            source="mt5"),
        _ev("Unemployment Rate", NFP_TIME, "USD", importance="high", source="mt5"),
    ]  # fmt: skip
    eodhd = [
        _ev("Non Farm Payrolls", NFP_TIME + 30, country="US", actual=196.97, estimate=144.96,
            importance="high", source="eodhd"),
        _ev("Unemployment Rate", NFP_TIME, country="US", actual=4.1, importance="medium",
            source="eodhd"),
        _ev("ECB Interest Rate Decision", NFP_TIME - 86400, country="EU", source="eodhd"),
    ]  # fmt: skip
    merged = dedup_events(mt5 + eodhd)
    assert len(merged) == 3
    assert merged[0]["name"] == "ECB Interest Rate Decision"
    nfp = next(e for e in merged if e["name"] == "Nonfarm Payrolls")
    assert nfp["actual"] == 196.97 and nfp["forecast"] == 200.0 and nfp["estimate"] == 144.96
    assert nfp["sources"] == ["mt5", "eodhd"] and nfp["time"] == NFP_TIME
    ur = next(e for e in merged if e["name"] == "Unemployment Rate")
    assert ur["importance"] == "high" and ur["actual"] == 4.1


def test_dedup_key_groups_same_release() -> None:
    a = dedup_key(_ev("Non Farm Payrolls", NFP_TIME, country="US"))
    b = dedup_key(_ev("Nonfarm Payrolls", NFP_TIME + 10, "USD"))
    assert a == b == ("USD", NFP_TIME // 300, "nonfarm payrolls|")


@given(
    name=st.sampled_from(["Non Farm Payrolls", "CPI", "ECB Interest Rate Decision", "Rig Count"]),
    shift=st.integers(-300, 300),
    copies=st.integers(1, 4),
)
def test_dedup_is_idempotent(name: str, shift: int, copies: int) -> None:
    evs = [_ev(name, NFP_TIME + (shift if i % 2 else 0), "USD", source=f"s{i}") for i in
           range(copies)]  # fmt: skip
    once = dedup_events(evs)
    assert len(once) == 1 and dedup_events(once) == once
    assert once[0]["sources"] == [f"s{i}" for i in range(copies)]
