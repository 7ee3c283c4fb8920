"""Verdict and reason counters: counted whole per verdict, exported by action and reason code."""

from __future__ import annotations

import re

from sidecar.service.metrics import Metrics


def scraped(m: Metrics, name: str, label: str) -> dict[str, float]:
    text = m.render().decode()
    pattern = rf'^{name}_total{{{label}="([^"]+)"}} (\S+)$'
    return {k: float(v) for k, v in re.findall(pattern, text, re.M)}


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
