"""Verdict and reason counters: counted whole per verdict, exported by action and reason code."""

from __future__ import annotations

import re

from sidecar.service.metrics import Metrics


def scraped(m: Metrics, name: str, label: str) -> dict[str, float]:
    """The non-zero samples of counter `name` by `label` (every action is exported from 0)."""
    text = m.render().decode()
    pattern = rf'^{name}_total{{{label}="([^"]+)"}} (\S+)$'
    return {k: float(v) for k, v in re.findall(pattern, text, re.M) if float(v)}


def test_counts_by_action_and_reason_code() -> None:
    m = Metrics()
    hold = ("hold", "RISK_SYMBOL_OPEN symbol=EURUSD ticket=501", "SIGNAL_NONE")
    for _ in range(3):
        m.count_verdict(hold)
    m.count_verdict(("open", "SIGNAL_SMA_CROSS side=buy", "SIZING risk_pct=1.0"))
    assert scraped(m, "sidecar_verdicts", "action") == {"hold": 3.0, "open": 1.0}
    assert scraped(m, "sidecar_verdict_reasons", "reason") == {
        "RISK_SYMBOL_OPEN": 3.0,
        "SIGNAL_NONE": 3.0,
        "SIGNAL_SMA_CROSS": 1.0,
        "SIZING": 1.0,
    }


def test_many_distinct_verdicts_are_folded_without_losing_a_count() -> None:
    # Reasons carrying numbers make a new key per tick; the table is folded into the totals
    # when it grows, and scrapes in between never see a count go down.
    m = Metrics()
    seen = []
    for i in range(10_000):
        m.count_verdict(("hold", f"RISK_DAILY_LOSS loss_pct={i / 100:.2f}", "SIGNAL_NONE"))
        if i % 1500 == 0:
            seen.append(scraped(m, "sidecar_verdicts", "action")["hold"])
    assert seen == sorted(seen) and seen[-1] == 9001.0
    assert scraped(m, "sidecar_verdicts", "action") == {"hold": 10_000.0}
    assert scraped(m, "sidecar_verdict_reasons", "reason") == {
        "RISK_DAILY_LOSS": 10_000.0,
        "SIGNAL_NONE": 10_000.0,
    }


def test_every_action_is_exported_from_zero() -> None:
    text = Metrics().render().decode()
    for action in ("open", "hold", "close", "reduce"):
        assert f'sidecar_verdicts_total{{action="{action}"}} 0.0' in text


def test_refusals_count_veto_codes_of_verdicts_without_an_entry() -> None:
    m = Metrics()
    m.count_verdict(("hold", "RISK_DAILY_LOSS loss_pct=3.1", "SIGNAL_NONE votes=0"))
    m.count_verdict(("hold", "NEWS_BLACKOUT currency=USD", "SIGNAL_SMA_CROSS side=buy"))
    # On an entry, a budget cut is an adjustment, not a refusal.
    m.count_verdict(("open", "SIGNAL_SMA_CROSS side=buy", "RISK_DAILY_BUDGET volume_to=0.1"))
    assert scraped(m, "sidecar_refusals", "reason") == {
        "RISK_DAILY_LOSS": 1.0,
        "NEWS_BLACKOUT": 1.0,
    }
    assert scraped(m, "sidecar_verdict_reasons", "reason")["RISK_DAILY_BUDGET"] == 1.0


def test_latency_buckets_start_at_50_microseconds() -> None:
    m = Metrics()
    m.observe_latency("zmq", 40e-6)
    m.observe_latency("zmq", 900e-6)
    text = m.render().decode()
    les = re.findall(r'^sidecar_verdict_latency_seconds_bucket\{le="([^"]+)"', text, re.M)
    assert les[0] == "5e-05" and "0.001" in les and les[-1] == "+Inf"
    assert 'sidecar_verdict_latency_seconds_bucket{le="5e-05",transport="zmq"} 1.0' in text
    assert 'sidecar_verdict_latency_seconds_bucket{le="0.001",transport="zmq"} 2.0' in text
    assert 'sidecar_verdict_latency_seconds_count{transport="zmq"} 2.0' in text
