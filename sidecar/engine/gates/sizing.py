"""Sizing: risk the budgeted share of equity at the stop (Kelly, volatility, mode; see budget)."""

from dataclasses import replace

from sidecar.engine import reasons as R
from sidecar.engine.budget import risk_budget
from sidecar.engine.gates import GateContext, Outcome, gate
from sidecar.engine.sizing import size_position


@gate(order=150, phase="order")
def fixed_fractional(ctx: GateContext) -> Outcome | None:
    p = ctx.proposal
    assert p is not None
    budget = risk_budget(ctx.config, ctx.snap.trades, ctx.snap.analysis.atr_pct, ctx.state.mode)
    if budget.refused is not None:
        return Outcome(veto=budget.refused)
    risk_pct = budget.risk_pct
    equity = ctx.tick.account.equity
    size = size_position(equity, risk_pct, p.sl_distance, ctx.snap.symbol, ctx.tick.tick_value)
    spec = ctx.snap.symbol
    if size.below_min:
        return Outcome(
            veto=R.reason(
                R.SIZE_BELOW_MIN,
                volume=round(size.raw_volume, 6),
                min=spec.volume_min,
                risk_pct=round(risk_pct, 4),
            ),
            notes=budget.notes,
        )
    notes = [
        *budget.notes,
        R.reason(
            R.SIZE_RISK,
            risk_pct=round(risk_pct, 4),
            volume=size.volume,
            loss_per_lot=round(size.loss_per_lot, 4),
        ),
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
