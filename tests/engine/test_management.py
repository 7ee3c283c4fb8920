"""Trade management parameters in every verdict follow the config and the strategy's reward:risk."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sidecar.config import Config
from sidecar.engine.decide import Engine
from sidecar.engine.state import Snapshot
from sidecar.engine.strategies import build_strategy
from tests.engine.helpers import analysis, anchored, buy_signal, config, make_tick, spec


def manage(cfg: Config, signal=None, strategy: str = "sma_cross", atr: float = 0.0025):  # type: ignore[no-untyped-def]
    snap = Snapshot(
        account=anchored(),
        symbol=spec(),
        analysis=replace(analysis(signal), atr=atr),
    )
    engine = Engine(cfg, build_strategy(strategy, {}))
    return engine.decide(make_tick(), snap).verdict.manage


def test_defaults_half_at_half_the_target_breakeven_at_1r_trail_2_atr() -> None:
    m = manage(Config(), buy_signal(rr=2.5))
    assert (m.breakeven_r, m.partial_fraction, m.trail_atr) == (1.0, 0.5, 2.0)
    assert m.partial_r == pytest.approx(1.25)  # 50% of a 2.5R target
    assert m.trail_distance == pytest.approx(0.005)  # 2 x ATR 0.0025
    assert m.breakeven_buffer == pytest.approx(0.0001)  # 10 points of 0.00001


def test_every_value_follows_the_config() -> None:
    cfg = config(
        manage={
            "breakeven_r": 0.8,
            "breakeven_buffer_points": 25,
            "partial_at_tp_fraction": 0.4,
            "partial_fraction": 0.3,
            "trail_atr": 3.0,
        }
    )
    m = manage(cfg, buy_signal(rr=3.0), atr=0.00123)
    assert (m.breakeven_r, m.partial_fraction, m.trail_atr) == (0.8, 0.3, 3.0)
    assert m.partial_r == pytest.approx(1.2)  # 40% of a 3R target
    assert m.trail_distance == pytest.approx(0.00369)  # 3 x 0.00123, rounded to 5 digits
    assert m.breakeven_buffer == pytest.approx(0.00025)


@pytest.mark.parametrize("strategy", ["sma_cross", "resonance"])
def test_hold_verdicts_use_the_strategy_reward_risk(strategy: str) -> None:
    # Positions opened earlier keep being managed from hold verdicts: the partial must sit at the
    # same R as on the open verdict (both strategies target 2.5R by default), not at the minimum.
    held = manage(Config(), None, strategy)
    opened = manage(Config(), buy_signal(rr=2.5), strategy)
    assert held.partial_r == opened.partial_r == pytest.approx(1.25)
