"""Sizing: risk a fixed fraction of equity at the stop (halved in `reducing` mode)."""

from dataclasses import replace

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate
from sidecar.engine.sizing import size_position
from sidecar.engine.state import REDUCING


@gate(order=150, phase="order")
def fixed_fractional(ctx: GateContext) -> Outcome | None:
    p = ctx.proposal
    assert p is not None
    risk = ctx.config.risk
    risk_pct = risk.risk_pct * (risk.reducing_risk_factor if ctx.state.mode == REDUCING else 1.0)
    risk_pct = min(risk_pct, risk.max_risk_pct)
    equity = ctx.tick.account.equity
    size = size_position(equity, risk_pct, p.sl_distance, ctx.snap.symbol, ctx.tick.tick_value)
    spec = ctx.snap.symbol
    if size.below_min:
        return Outcome(
            veto=R.reason(
                R.SIZE_BELOW_MIN,
                volume=round(size.raw_volume, 6),
                min=spec.volume_min,
                risk_pct=risk_pct,
            )
        )
    notes = [
        R.reason(
            R.SIZE_RISK,
            risk_pct=round(risk_pct, 4),
            volume=size.volume,
            loss_per_lot=round(size.loss_per_lot, 4),
        )
    ]
    if size.capped:
        notes.append(R.reason(R.SIZE_CAPPED_MAX, volume=size.volume, max=spec.volume_max))
    effective = size.volume * size.loss_per_lot / equity * 100.0
    return Outcome(
        notes=tuple(notes),
        proposal=replace(
            p, volume=size.volume, risk_pct=round(effective, 4), loss_per_lot=size.loss_per_lot
        ),
    )
