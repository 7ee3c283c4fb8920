"""Bias check: real strategies give the same decisions on every truncation; a biased one does not."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from sidecar.cli import main
from sidecar.config import Config
from sidecar.engine import indicators
from sidecar.engine.bars import Bars
from sidecar.engine.bias import check, summary
from sidecar.engine.decide import Engine
from sidecar.engine.strategies import build_strategy
from sidecar.engine.strategies.base import Signal
from sidecar.testing import messages

ROWS = messages.eurusd_rows()[:1500]


@pytest.mark.parametrize("name", ["sma_cross", "resonance"])
def test_strategies_decide_the_same_on_every_truncation_and_warmup(name: str) -> None:
    engine = Engine(Config(), build_strategy(name, {}))
    report = check(engine, Bars.from_rows(ROWS), last=400)
    assert report.checked == 400 and report.signals >= 2  # something to compare
    assert report.ok, summary(report)
    assert len(report.variants) == 4


class WholeHistoryEma:
    """Biased on purpose: an EMA seeded at the first loaded bar, on the whole history."""

    name = "whole_history_ema"
    min_bars = 30

    def evaluate(self, bars: Bars, context: object = None) -> Signal | None:
        if len(bars) < self.min_bars:
            return None
        ema = indicators.ema(bars.close, 20)
        above = bars.close > ema
        if above[-1] and not above[-2]:
            return Signal("buy", 0.001, 0.0025, ("ema",), self.name, int(bars.time[-1]))
        return None


def test_a_warmup_dependent_strategy_is_caught() -> None:
    report = check(Engine(Config(), WholeHistoryEma()), Bars.from_rows(ROWS), last=600)
    assert not report.ok
    variants = {d.variant for d in report.differences}
    assert "warmup=30" in variants  # a 30-bar EMA(20) has not forgotten its seed
    text = summary(report)
    assert "DIFFERENT" in text and "reference" in text


def test_a_tiny_difference_in_a_stop_is_a_difference() -> None:
    class Drifting(WholeHistoryEma):
        def evaluate(self, bars: Bars, context: object = None) -> Signal | None:
            # The same side every bar, a stop that depends on how much history was loaded.
            sl = 0.001 + 1e-12 * float(np.sum(bars.close))
            return Signal("buy", sl, 2.5 * sl, ("x",), "drift", int(bars.time[-1]))

    report = check(Engine(Config(), Drifting()), Bars.from_rows(ROWS[:300]), last=50)
    assert not report.ok


def test_cli_bias_check_defaults_to_eurusd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bias-check", "--strategy", "sma_cross", "--bars", "150"]) == 0
    out = capsys.readouterr().out
    assert "bias-check sma_cross: 150 bars checked" in out and "OK" in out


def test_cli_bias_check_reads_a_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bars.csv"
    lines = ["time,open,high,low,close,volume"]
    for i, r in enumerate(ROWS[:900]):
        # Half the rows with ISO times: both forms are accepted.
        t = datetime.fromtimestamp(r[0], UTC).isoformat() if i % 2 else str(int(r[0]))
        lines.append(",".join([t, *(repr(x) for x in r[1:6])]))
    path.write_text("\n".join(lines) + "\n")
    assert main(["bias-check", "--strategy", "resonance", "--csv", str(path), "--bars", "100"]) == 0
    assert "bias-check resonance: 100 bars checked" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("time,open,high,low,close,volume\n1,a,b,c,d,e\n")
    assert main(["bias-check", "--csv", str(bad)]) == 2
    assert "bad.csv:2" in capsys.readouterr().err
