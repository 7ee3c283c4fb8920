"""Bias check: do a strategy's decisions depend on anything but the closed bars they were made on?

For every checked bar i the reference decision is `Engine.analyze` on the history truncated at
bar i (`bars.head(i + 1)`: nothing after bar i exists for it, as live). The same bar is then
decided again from shorter histories that end at the same bar: fixed warm-up lengths (the newest L
bars only) and a history whose first bars were dropped. A strategy free of look-ahead and warm-up
bias gives the same signal (side, votes, stop and target distances) in every variant; any bar
where a variant differs is reported. Pure: no I/O, the caller loads the bars.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.engine.bars import Bars
from sidecar.engine.decide import Engine
from sidecar.engine.strategies.base import Signal

# Distances computed on different windows of identical bars may differ in the last binary digits.
REL_TOL = 1e-9


@dataclass(frozen=True)
class Difference:
    index: int  # position of the bar in the checked series
    bar_time: int
    variant: str  # e.g. "warmup=281" or "start=400"
    reference: str  # the decision on the full truncated history
    got: str


@dataclass(frozen=True)
class BiasReport:
    strategy: str
    first: int  # index of the first checked bar
    checked: int  # bars checked
    signals: int  # reference signals among them
    variants: tuple[str, ...]
    differences: tuple[Difference, ...]

    @property
    def ok(self) -> bool:
        return not self.differences


def describe(signal: Signal | None) -> str:
    if signal is None:
        return "none"
    votes = ",".join(signal.votes)
    return f"{signal.side} votes={votes} sl={signal.sl_distance:.8g} tp={signal.tp_distance:.8g}"


def same(a: Signal | None, b: Signal | None) -> bool:
    if a is None or b is None:
        return a is b
    return (
        a.side == b.side
        and a.votes == b.votes
        and a.bar_time == b.bar_time
        and math.isclose(a.sl_distance, b.sl_distance, rel_tol=REL_TOL)
        and math.isclose(a.tp_distance, b.tp_distance, rel_tol=REL_TOL)
    )


def default_warmups(min_bars: int) -> tuple[int, ...]:
    """The documented minimum, a little more, and twice it."""
    return (min_bars, min_bars + 37, 2 * min_bars)


def check(
    engine: Engine,
    bars: Bars,
    last: int | None = None,
    warmups: Sequence[int] | None = None,
) -> BiasReport:
    """Check the newest `last` bars (all that have the longest warm-up before them by default)."""
    n = len(bars)
    lengths = tuple(warmups or default_warmups(engine.strategy.min_bars))
    longest = max(lengths)
    first = max(longest - 1, n - last if last else 0)
    # Dropping the first third of the series leaves a start that moves with nothing the strategy
    # should care about; it must still see at least the longest warm-up at every checked bar.
    drop = max(0, min(n // 3, first + 1 - longest))
    names = [f"warmup={length}" for length in lengths] + ([f"start={drop}"] if drop else [])
    diffs: list[Difference] = []
    signals = 0
    for i in range(first, n):
        upto = bars.head(i + 1)
        ref = engine.analyze(upto).signal
        signals += ref is not None
        variants = [(f"warmup={length}", upto.tail(length)) for length in lengths]
        if drop:
            variants.append((f"start={drop}", upto.tail(i + 1 - drop)))
        for name, history in variants:
            got = engine.analyze(history).signal
            if not same(ref, got):
                diffs.append(Difference(i, int(bars.time[i]), name, describe(ref), describe(got)))
    return BiasReport(
        engine.strategy.name, first, max(0, n - first), signals, tuple(names), tuple(diffs)
    )


def summary(report: BiasReport, limit: int = 20) -> str:
    lines = [
        f"bias-check {report.strategy}: {report.checked} bars checked from index {report.first}, "
        f"{report.signals} signals, variants {', '.join(report.variants)}",
    ]
    if report.ok:
        lines.append("OK: every variant gave the same decision on every bar")
        return "\n".join(lines)
    bars_hit = len({d.index for d in report.differences})
    lines.append(f"DIFFERENT: {len(report.differences)} decisions on {bars_hit} bars")
    for d in report.differences[:limit]:
        lines.append(
            f"  bar {d.index} time={d.bar_time} {d.variant}: reference {d.reference} | got {d.got}"
        )
    if len(report.differences) > limit:
        lines.append(f"  ... {len(report.differences) - limit} more")
    return "\n".join(lines)
