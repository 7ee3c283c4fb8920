"""`SIGNAL_NONE` says how close the bar came: the strategy's votes and deciding values, computed
once per bar with its analysis, the same on the live path, from scratch and in `analyze_series`."""

from __future__ import annotations

import re

import numpy as np
import pytest

from sidecar.config import Config
from sidecar.engine import reasons as R
from sidecar.engine.bars import BarHistory, Bars
from sidecar.engine.decide import Engine
from sidecar.engine.state import Analysis, Snapshot
from sidecar.engine.strategies import build_strategy
from sidecar.engine.strategies.resonance import ENTRY_NAMES, ResonanceStrategy, first_in_run
from sidecar.engine.strategies.sma_cross import SmaCrossStrategy
from sidecar.testing.messages import eurusd_rows
from tests.engine.helpers import T0, anchored, make_tick, spec

ROWS = eurusd_rows()
BARS = Bars.from_rows(ROWS)

V = r"(\+1|0|-1)"
RESONANCE_NOTE = re.compile(
    rf"^votes=ema:{V},macd:{V},di:{V},rsi:{V},bb:{V} adx=\d+\.\d(>25|<20|<25|<=25) rsi=\d+\.\d"
    rf"( held=({'|'.join(ENTRY_NAMES)}) (first=no|atr=0))?$"
)
SMA_NOTE = re.compile(r"^fast=[0-9.]+ slow=[0-9.]+ gap=-?[0-9.e-]+$")


def sign(a: float, b: float) -> int:
    return int(a > b) - int(a < b)


@pytest.mark.parametrize("variant", ["talib", "mt5"])
def test_resonance_notes_its_votes_and_adx_on_every_bar_without_a_signal(variant: str) -> None:
    strategy = ResonanceStrategy({"variant": variant})
    engine = Engine(Config(), strategy)
    series = engine.analyze_series(BARS, 2000)
    ind = strategy.indicators(BARS)
    held_seen = 0
    for i, a in enumerate(series):
        if a.signal is not None or i < strategy.min_bars - 1:
            assert a.note == "", i
            continue
        m = RESONANCE_NOTE.match(a.note)
        assert m, (i, a.note)
        votes = [int(x) for x in m.groups()[:5]]
        assert votes[0] == sign(ind.ema_fast[i], ind.ema_slow[i])
        assert votes[1] == sign(ind.macd[i], ind.macd_signal[i])
        assert votes[2] == sign(ind.plus_di[i], ind.minus_di[i])
        assert votes[3] == int(ind.rsi[i] < 30) - int(ind.rsi[i] > 70)
        assert votes[4] == int(ind.close[i] <= ind.bb_lower[i]) - int(
            ind.close[i] >= ind.bb_upper[i]
        )
        assert f"adx={ind.adx[i]:.1f}" in a.note and f"rsi={ind.rsi[i]:.1f}" in a.note
        assert len(R.signal_none(a.note)) <= R.MAX_REASON_CHARS
        if " held=" in a.note:
            held_seen += 1
            if held_seen % 10:
                continue  # checked from scratch on every tenth
            entry = ENTRY_NAMES.index(a.note.split(" held=")[1].split()[0])
            window = BARS.head(i + 1)
            n = strategy.min_bars
            cond = strategy.conditions(strategy.indicators(window))
            held, regime, _, _ = strategy._entries(cond)[entry]
            assert held[-1] and regime[-1]  # every condition of that entry holds on the bar...
            assert not first_in_run(held[-n:], regime[-n:])  # ...but not for the first time
    assert held_seen > 50  # trends that already gave their signal are common on real data


def test_sma_cross_notes_the_averages_and_their_gap() -> None:
    strategy = SmaCrossStrategy({})
    series = Engine(Config(), strategy).analyze_series(BARS, 2000)
    checked = 0
    for i in range(strategy.min_bars - 1, len(BARS), 37):
        a = series[i]
        if a.signal is not None:
            continue
        assert SMA_NOTE.match(a.note), a.note
        kv = dict(part.split("=") for part in a.note.split())
        fast = float(np.mean(BARS.close[i + 1 - 10 : i + 1]))
        slow = float(np.mean(BARS.close[i + 1 - 30 : i + 1]))
        assert float(kv["fast"]) == pytest.approx(fast, rel=1e-5)
        assert float(kv["slow"]) == pytest.approx(slow, rel=1e-5)
        assert float(kv["gap"]) == pytest.approx(float(kv["fast"]) - float(kv["slow"]), abs=1e-9)
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("name", ["resonance", "sma_cross"])
def test_the_live_path_the_reference_and_the_series_give_the_same_note(name: str) -> None:
    engine = Engine(Config(), build_strategy(name, {}))
    series = engine.analyze_series(BARS, 1000)
    history = BarHistory(1000)
    history.merge(ROWS[:400])
    engine.analyze(history.view())
    for i in range(400, 1400):
        history.merge([ROWS[i]])
        live = engine.analyze(history.view())
        assert live.note == series[i].note, i
    for i in (600, 999, 1234):
        reference = engine.analyze(BARS.span(max(0, i + 1 - 1000), i + 1))
        assert reference.note == series[i].note, i


def test_no_note_during_the_warm_up() -> None:
    engine = Engine(Config(), build_strategy("resonance", {}))
    a = engine.analyze(BARS.head(engine.strategy.min_bars - 1))
    assert a.note == "" and a.signal is None
    a = engine.analyze(BARS.head(engine.strategy.min_bars + 5))
    assert a.note.startswith("votes=")


def verdict_reasons(note: str) -> list[str]:
    analysis = Analysis(T0, 500, 140, None, 0.0025, None, note)
    snap = Snapshot(account=anchored(), symbol=spec(), analysis=analysis)
    return Engine(Config()).decide(make_tick(), snap).verdict.reasons


def test_the_hold_verdict_carries_the_note_of_its_bar_under_the_code_signal_none() -> None:
    note = "votes=ema:+1,macd:+1,di:-1,rsi:0,bb:0 adx=18.2<20 rsi=48.6"
    reasons = verdict_reasons(note)
    assert f"SIGNAL_NONE {note}" in reasons
    assert [R.code_of(r) for r in reasons].count(R.SIGNAL_NONE) == 1  # metrics label: the code
    assert "SIGNAL_NONE" in verdict_reasons("")  # a strategy without notes: the bare code


def test_a_long_note_is_cut_at_a_space_within_the_bound() -> None:
    long = " ".join(f"key{i}=value{i}" for i in range(40))
    cut = R.clip_note(long)
    text = R.signal_none(cut)
    assert len(text) <= R.MAX_REASON_CHARS and cut.endswith("...")
    assert cut[:-3] in long and long.startswith(cut[:-3]) and not cut[:-3].endswith(" ")
    assert long.startswith(cut[:-3]) and cut[:-3].split()[-1] in long.split()  # whole pairs
    assert R.clip_note("a=1\nb=2") == "a=1 b=2"  # one line
    no_space = R.clip_note("x" * 500)
    assert no_space.endswith("...") and len(R.signal_none(no_space)) == R.MAX_REASON_CHARS


def test_strategies_without_notes_keep_the_bare_code() -> None:
    class Never:
        name = "never"
        min_bars = 5

        def evaluate(self, bars, context=None):  # type: ignore[no-untyped-def]
            return None

    engine = Engine(Config(), Never())
    assert engine.analyze(BARS.head(50)).note == ""
    assert all(a.note == "" for a in engine.analyze_series(BARS.head(50), 20))
