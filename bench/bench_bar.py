"""Cost of one new closed bar (merge + analyze, what the service does once per bar) and the
backtester's whole-series analysis.

OLD is the algorithm before running state, copied here as the baseline: a history kept as a list
of tuples rebuilt into numpy columns on every new bar, and every indicator recomputed on its
fixed window (the strategy's newest min_bars bars, 140 bars for the ATR, 640 for its percentile).
NEW is `BarHistory` + `Engine.analyze` as the service calls them. Both start from a 2,000-bar
history of real EURUSD H1 bars and take the following bars one at a time; blocks alternate.

    python bench/bench_bar.py [--bars 400] [--rounds 5] [--series 1000000]
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time

import numpy as np

from sidecar.config import Config
from sidecar.engine import indicators
from sidecar.engine.bars import BarHistory, Bars
from sidecar.engine.decide import Engine
from sidecar.engine.state import Analysis
from sidecar.engine.strategies import build_strategy
from sidecar.engine.strategies.resonance import first_in_run
from sidecar.testing.messages import eurusd_rows

CAPACITY = 2000

# --- the baseline: the previous algorithm --------------------------------------------------------


class OldHistory:
    def __init__(self, capacity: int) -> None:
        self.capacity, self.rows, self._view = capacity, [], None

    def merge(self, rows):  # type: ignore[no-untyped-def]
        for row in rows:
            bar = (float(int(row[0])), *map(float, row[1:7]))
            if not self.rows or bar[0] > self.rows[-1][0]:
                self.rows.append(bar)
        del self.rows[: max(0, len(self.rows) - self.capacity)]
        self._view = None

    def view(self) -> Bars:
        if self._view is None:
            self._view = Bars.from_rows(self.rows)
        return self._view


def old_signal(strategy, bars: Bars):  # type: ignore[no-untyped-def]
    if len(bars) < strategy.min_bars:
        return None
    w = bars.tail(strategy.min_bars)
    if strategy.name == "sma_cross":
        fast, slow = indicators.sma(w.close, strategy.fast), indicators.sma(w.close, strategy.slow)
        if not (fast[-1] > slow[-1] and fast[-2] <= slow[-2]) and not (
            fast[-1] < slow[-1] and fast[-2] >= slow[-2]
        ):
            return None
        return indicators.atr(w.high, w.low, w.close, strategy.atr_period)[-1]
    ind = strategy.indicators(w)
    for held, regime, side, _ in strategy._entries(strategy.conditions(ind)):
        if first_in_run(held, regime):
            return side, ind.atr[-1]
    return None


def old_analyze(engine: Engine, bars: Bars) -> tuple:
    signal = old_signal(engine.strategy, bars)
    t = bars.tail(140)
    atr = float(indicators.atr(t.high, t.low, t.close, 14)[-1])
    t = bars.tail(640)
    values = indicators.atr(t.high, t.low, t.close, 14)[-500:]
    pct = round(100.0 * float(np.count_nonzero(values <= values[-1])) / 500, 4)
    return signal, (atr if math.isfinite(atr) else 0.0), pct


# --- the run --------------------------------------------------------------------------------------


def block(engine: Engine, make, analyze, rows, start: int, n: int) -> float:  # type: ignore[no-untyped-def]
    history = make(CAPACITY)
    history.merge(rows[start - CAPACITY : start])
    analyze(engine, history.view())
    t0 = time.perf_counter()
    for row in rows[start : start + n]:
        history.merge([row])
        analyze(engine, history.view())
    return (time.perf_counter() - t0) / n * 1e6


def long_series(n: int) -> Bars:
    """n H1 bars: real EURUSD bar shapes (returns, wicks) repeated end to end."""
    base = Bars.from_rows(eurusd_rows())
    reps = -(-n // len(base))
    ret = np.tile(np.diff(np.log(base.close), prepend=np.log(base.close[0])), reps)[:n]
    close = np.exp(np.cumsum(ret)) * base.close[0]
    scale = close / np.tile(base.close, reps)[:n]
    cols = [np.tile(getattr(base, f), reps)[:n] * scale for f in ("open", "high", "low")]
    time_ = 1_000_000_000 + 3600 * np.arange(n)
    zeros = np.zeros(n)
    return Bars.from_rows(np.column_stack([time_, cols[0], cols[1], cols[2], close, zeros, zeros]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=400, help="new bars per block")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--series", type=int, default=1_000_000, help="bars for analyze_series")
    args = ap.parse_args()
    rows = eurusd_rows()
    start = CAPACITY + 300
    assert start + args.bars <= len(rows), "--bars too large for the sample"

    def new(engine: Engine, bars: Bars) -> Analysis:
        return engine.analyze(bars)

    for name in ("sma_cross", "resonance"):
        engine = Engine(Config(), build_strategy(name, {}))
        old_t, new_t = [], []
        for _ in range(args.rounds):
            old_t.append(block(engine, OldHistory, old_analyze, rows, start, args.bars))
            new_t.append(block(engine, BarHistory, new, rows, start, args.bars))
        o, w = statistics.median(old_t), statistics.median(new_t)
        print(
            f"{name:10s} new bar (merge + analyze), median of {args.rounds} blocks of "
            f"{args.bars}: old {o:8.1f} µs  new {w:6.1f} µs  old/new {o / w:5.1f}x"
        )
    bars = long_series(args.series)
    for name in ("sma_cross", "resonance"):
        engine = Engine(Config(), build_strategy(name, {}))
        for paused in (False, True):
            # A million new Analysis objects wake the cyclic GC again and again; a backtest
            # runner may pause it for the call (the engine leaves that global switch alone).
            if paused:
                gc.disable()
            t0 = time.perf_counter()
            out = engine.analyze_series(bars, CAPACITY)
            dt = time.perf_counter() - t0
            gc.enable()
            signals = sum(a.signal is not None for a in out)
            print(
                f"{name:10s} analyze_series over {len(bars):,} bars{' (GC paused)' * paused}: "
                f"{dt:6.2f} s, {len(bars) / dt:,.0f} bars/s ({signals:,} signals)"
            )
            del out


if __name__ == "__main__":
    main()
