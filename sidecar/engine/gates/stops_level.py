"""Stops level: a stop closer than the broker allows is widened, the target scaled with it."""

from dataclasses import replace

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=120, phase="order")
def respect_stops_level(ctx: GateContext) -> Outcome | None:
    p = ctx.proposal
    assert p is not None
    spec = ctx.snap.symbol
    # The broker measures the stops level from the closing price: the spread counts too.
    minimum = (spec.stops_level + 1) * spec.point + (ctx.tick.ask - ctx.tick.bid)
    if spec.stops_level == 0 or p.sl_distance >= minimum:
        return None
    scale = minimum / p.sl_distance
    return Outcome(
        notes=(
            R.reason(
                R.SIZE_STOPS_LEVEL,
                sl_from=p.sl_distance,
                sl_to=minimum,
                stops_level=spec.stops_level,
            ),
        ),
        proposal=replace(p, sl_distance=minimum, tp_distance=p.tp_distance * scale),
    )
