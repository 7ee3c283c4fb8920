"""`sma_cross` on real EURUSD H1 bars: crosses found, no lookahead, no warm-up dependence."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.config import Config
from sidecar.engine.bars import BarHistory, Bars
from sidecar.engine.decide import Engine
from sidecar.engine.strategies import build_strategy
from sidecar.engine.strategies.sma_cross import SmaCrossStrategy
from sidecar.testing.messages import eurusd_rows


@pytest.fixture(scope="module")
def bars() -> Bars:
    return Bars.from_rows(eurusd_rows()[:1500])


def _crosses(close: np.ndarray, fast: int, slow: int) -> dict[int, str]:
    """Reference: a plain loop over the definitions."""
    out = {}
    for t in range(slow, len(close)):
        f1, s1 = close[t - fast + 1 : t + 1].mean(), close[t - slow + 1 : t + 1].mean()
        f0, s0 = close[t - fast : t].mean(), close[t - slow : t].mean()
        if f1 > s1 and f0 <= s0:
            out[t] = "buy"
        elif f1 < s1 and f0 >= s0:
            out[t] = "sell"
    return out


def test_signals_match_a_reference_loop(bars: Bars) -> None:
    strategy = SmaCrossStrategy({})
    expected = {t: s for t, s in _crosses(bars.close, 10, 30).items() if t + 1 >= strategy.min_bars}
    got = {}
    for n in range(strategy.min_bars, len(bars) + 1):
        sig = strategy.evaluate(bars.head(n))
        if sig is not None:
            got[n - 1] = sig.side
            assert sig.bar_time == int(bars.time[n - 1])
            assert sig.tp_distance == pytest.approx(2.5 * sig.sl_distance)
            assert sig.sl_distance == pytest.approx(2.0 * sig.atr)
    assert got == expected
    assert {"buy", "sell"} <= set(got.values())


def test_decisions_do_not_depend_on_history_length(bars: Bars) -> None:
    """Bias check: the same bar evaluated with different amounts of history gives the same signal."""
    strategy = SmaCrossStrategy({})
    for end in range(400, 700):
        full = strategy.evaluate(bars.head(end))
        for start in (0, 50, end - strategy.min_bars):
            trimmed = strategy.evaluate(
                Bars(
                    *(
                        getattr(bars, f)[start:end]
                        for f in ("time", "open", "high", "low", "close", "tick_volume", "spread")
                    )
                )
            )
            assert trimmed == full


def test_fewer_bars_than_the_warm_up_give_no_signal(bars: Bars) -> None:
    strategy = SmaCrossStrategy({})
    assert strategy.evaluate(bars.head(strategy.min_bars - 1)) is None
    analysis = Engine(Config()).analyze(bars.head(10))
    assert analysis.signal is None and analysis.bars == 10 and analysis.min_bars == 140


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fast": 30, "slow": 10}, "fast: must be < slow"),
        ({"fast": 0}, "fast: expected an integer >= 1"),
        ({"sl_atr": -1}, "sl_atr: expected a number > 0"),
        ({"speed": 3}, "unknown key(s) speed"),
    ],
)
def test_bad_parameters_are_named(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_strategy("sma_cross", params)


def test_unknown_strategy_is_named() -> None:
    with pytest.raises(ValueError, match="strategy.name: expected one of"):
        build_strategy("martingale", {})


def test_bar_history_dedupes_replaces_and_ignores_old_bars() -> None:
    rows = eurusd_rows()[:10]
    h = BarHistory(capacity=5)
    report = h.merge(rows[:6])
    assert len(h) == 5 and h.last_time == rows[5][0]  # bounded: oldest dropped
    changed = [*rows[5][:4], rows[5][4] + 0.001, *rows[5][5:]]
    report = h.merge([changed])  # the same bar again: replaces (final values)
    assert report.replaced == 1 and h.view().close[-1] == pytest.approx(changed[4])
    report = h.merge([rows[0]])  # older than anything held: ignored and reported
    assert report.ignored_old == [rows[0][0]] and len(h) == 5
    view = h.view()
    assert h.view() is view  # no rebuild without a change
    h.merge([rows[6]])
    assert h.view() is not view and h.last_time == rows[6][0]


class _MacroTilt:
    """A custom strategy that only buys when the base currency's macro surprise is positive."""

    name = "macro_tilt"
    min_bars = 2

    def evaluate(self, bars: Bars, context=None):  # type: ignore[no-untyped-def]
        from sidecar.engine.strategies.base import Signal

        if context is None or context.macro.get(context.currencies[0], 0.0) <= 0:
            return None
        return Signal("buy", 0.005, 0.0125, ("macro",), self.name, int(bars.time[-1]))


def test_strategies_can_use_the_macro_context(bars: Bars) -> None:
    from sidecar.engine.strategies.base import StrategyContext

    engine = Engine(Config(), strategy=_MacroTilt())
    assert engine.analyze(bars.head(10)).signal is None
    bearish = StrategyContext(("EUR", "USD"), {"EUR": -0.4})
    assert engine.analyze(bars.head(10), bearish).signal is None
    bullish = StrategyContext(("EUR", "USD"), {"EUR": 0.7, "USD": -0.1})
    assert engine.analyze(bars.head(10), bullish).signal.votes == ("macro",)


def test_the_service_hands_strategies_the_macro_context(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from sidecar.engine.strategies.base import StrategyContext
    from sidecar.service.handler import Sidecar
    from sidecar.store import Store
    from sidecar.testing import messages

    seen: list[str] = []

    def context(spec):  # type: ignore[no-untyped-def]
        seen.append(spec.name)
        return StrategyContext((spec.base, spec.quote), {spec.base: 0.5})

    sidecar = Sidecar(
        Config(), Store(tmp_path / "s.sqlite"), Engine(Config(), strategy=_MacroTilt())
    )
    sidecar.kernel.strategy_context = context
    rows = eurusd_rows()[:20]
    sidecar.handle(json.dumps(messages.hello(bars=rows[:10])).encode())
    reply, _ = sidecar.handle(
        json.dumps(messages.tick(server=rows[10][0] + 3600, bid=1.1, bars=[rows[10]])).encode()
    )
    assert seen == ["EURUSD", "EURUSD"]  # at hello and at the new bar, not per tick
    assert json.loads(reply)["action"] == "open"
    sidecar.store.close()


def test_an_identical_resent_bar_changes_nothing() -> None:
    rows = eurusd_rows()[:5]
    h = BarHistory()
    h.merge(rows)
    view = h.view()
    report = h.merge([rows[-1], rows[2]])
    assert report.replaced == 0 and report.appended == 0 and h.view() is view
