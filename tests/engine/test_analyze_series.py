"""Per-bar analysis three ways, on real EURUSD H1 bars: the same `Analysis`, bit for bit.

- live: a `BarHistory` fed like the service feeds it (hello, then one bar per tick) and
  `Engine.analyze(history.view())`, which continues running state from the previous bar;
- reference: `Engine.analyze` on plain `Bars` (the trimmed history), computed from scratch;
- backtest: `Engine.analyze_series(bars, capacity)`, one vectorised pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.config import Config
from sidecar.engine import indicators
from sidecar.engine.bars import BarHistory, Bars
from sidecar.engine.decide import Engine
from sidecar.engine.state import Analysis
from sidecar.engine.strategies import build_strategy
from sidecar.engine.strategies.resonance import (
    ResonanceStrategy,
    first_in_run,
    first_in_run_series,
)
from sidecar.testing.messages import eurusd_rows

ROWS = eurusd_rows()
BARS = Bars.from_rows(ROWS)
HELLO = 300

CASES = [
    ("resonance", {"variant": "talib"}),
    ("resonance", {"variant": "mt5"}),
    ("sma_cross", {"atr_variant": "talib"}),
    ("sma_cross", {"atr_variant": "mt5"}),
]


def live(engine: Engine, capacity: int) -> list[Analysis]:
    history = BarHistory(capacity)
    history.merge(ROWS[:HELLO])
    out = [engine.analyze(history.view())]
    for row in ROWS[HELLO:]:
        history.merge([row])
        out.append(engine.analyze(history.view()))
    return out


@pytest.mark.parametrize(("name", "params"), CASES)
@pytest.mark.parametrize("capacity", [2000, 700])
def test_series_equals_the_live_path_on_every_bar(name: str, params: dict, capacity: int) -> None:
    engine = Engine(Config(), build_strategy(name, params))
    series = engine.analyze_series(BARS, capacity)
    assert len(series) == len(BARS)
    got = live(engine, capacity)
    assert series[HELLO - 1 :] == got  # every field of every bar
    assert [a.bars for a in series] == [min(i + 1, capacity) for i in range(len(BARS))]
    assert sum(a.signal is not None for a in series) > 100
    assert sum(a.atr_pct is not None for a in series) > 3000


@pytest.mark.parametrize(("name", "params"), CASES)
def test_series_equals_the_reference_on_the_trimmed_history(name: str, params: dict) -> None:
    # From scratch on each trimmed history, the running indicators start at a later bar than the
    # series' (bar 0): 1,300 bars later their values still agree to the last bit.
    capacity = 1300
    engine = Engine(Config(), build_strategy(name, params))
    series = engine.analyze_series(BARS, capacity)
    checked = [i for i, a in enumerate(series) if a.signal is not None][::3]
    checked += list(range(0, len(BARS), 61))
    for i in checked:
        history = BARS.span(max(0, i + 1 - capacity), i + 1)
        assert engine.analyze(history) == series[i], i


def old_resonance(strategy: ResonanceStrategy, bars: Bars) -> tuple[str, tuple[str, ...]] | None:
    """The previous definition: every indicator recomputed on the newest min_bars bars."""
    if len(bars) < strategy.min_bars:
        return None
    ind = strategy.indicators(bars.tail(strategy.min_bars))
    for held, regime, side, votes in strategy._entries(strategy.conditions(ind)):
        if first_in_run(held, regime):
            return side, votes
    return None


@pytest.mark.parametrize("variant", ["talib", "mt5"])
def test_no_decision_differs_from_the_fixed_window_definition(variant: str) -> None:
    """Running indicators (seeded at the first loaded bar) against the former fixed window
    (seeded min_bars back): on 5,000 real bars not one side or vote differs, and the stop
    distances agree to 1e-14 (the window ATR is the same number in closed form)."""
    strategy = ResonanceStrategy({"variant": variant})
    new = strategy.series(BARS)
    differing = []
    for i in range(strategy.min_bars - 1, len(BARS)):
        window = BARS.head(i + 1)
        old = old_resonance(strategy, window)
        got = (new[i].side, new[i].votes) if new[i] is not None else None
        if old != got:
            differing.append(i)
        elif new[i] is not None:
            t = window.tail(strategy.min_bars)
            atr = indicators.atr(t.high, t.low, t.close, 14, variant)[-1]
            assert new[i].sl_distance == pytest.approx(2.0 * atr, rel=1e-14)
    assert differing == []


def test_a_replaced_bar_restarts_the_running_state_from_the_view() -> None:
    engine = Engine(Config(), build_strategy("resonance", {}))
    history = BarHistory(2000)
    history.merge(ROWS[:900])
    engine.analyze(history.view())
    history.merge(ROWS[900:950])  # several bars in one tick
    assert engine.analyze(history.view()) == engine.analyze(BARS.head(950))
    changed = [*ROWS[949][:4], ROWS[949][4] + 0.0004, *ROWS[949][5:]]
    assert history.merge([changed]).replaced == 1
    bars = Bars.from_rows([*ROWS[:949], changed])
    assert engine.analyze(history.view()) == engine.analyze(bars)
    history.merge([ROWS[950]])
    assert engine.analyze(history.view()) == engine.analyze(
        Bars.from_rows([*bars_rows(bars), ROWS[950]])
    )


def bars_rows(bars: Bars) -> list[list[float]]:
    return np.column_stack(
        [bars.time, bars.open, bars.high, bars.low, bars.close, bars.tick_volume, bars.spread]
    ).tolist()


def test_custom_strategies_fall_back_to_evaluate_bar_by_bar() -> None:
    class EveryTenth:
        name = "every_tenth"
        min_bars = 5

        def evaluate(self, bars, context=None):  # type: ignore[no-untyped-def]
            from sidecar.engine.strategies.base import Signal

            if len(bars) < self.min_bars or int(bars.time[-1]) // 3600 % 10:
                return None
            return Signal("buy", 0.001, 0.0025, ("x",), self.name, int(bars.time[-1]))

    engine = Engine(Config(), EveryTenth())
    bars = BARS.head(400)
    series = engine.analyze_series(bars, 100)
    for i in (3, 4, 50, 150, 399):
        assert series[i] == engine.analyze(bars.span(max(0, i - 99), i + 1))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60),
    st.integers(1, 20),
)
def test_first_in_run_series_is_first_in_run_on_each_window(pairs: list, lookback: int) -> None:
    held = np.array([h and r for h, r in pairs])  # an entry implies its regime
    regime = np.array([r for _, r in pairs])
    fast = first_in_run_series(held, regime, lookback)
    for k in range(held.size):
        lo = max(0, k - lookback + 1)
        assert fast[k] == first_in_run(held[lo : k + 1], regime[lo : k + 1]), k
