"""Leverage cut: total open notional / equity, new trade included, stays within the cap.

A trade that would breach the cap is reduced to fit, or refused if that falls below volume min.
"""

from dataclasses import replace

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate
from sidecar.engine.sizing import floor_to_step, notional_per_lot


@gate(order=160, phase="order")
def leverage_cut(ctx: GateContext) -> Outcome | None:
    p = ctx.proposal
    assert p is not None
    spec = ctx.snap.symbol
    equity = ctx.tick.account.equity
    vpp = ctx.snap.value_per_price
    own = (
        spec.tick_value / spec.tick_size
        if ctx.tick.tick_value is None
        else ctx.tick.tick_value / spec.tick_size
    )
    # Other symbols' positions use their own value per price unit when a hello introduced them.
    open_notional = sum(
        pos.volume * pos.price_open * vpp.get(pos.symbol, own) for pos in ctx.tick.positions
    )
    per_lot = notional_per_lot(p.entry, spec, ctx.tick.tick_value)
    room = ctx.leverage_cap * equity - open_notional
    if p.volume * per_lot <= room:
        return None
    fitted = floor_to_step(max(room, 0.0) / per_lot, spec.volume_step)
    if fitted < spec.volume_min - 1e-12:
        return Outcome(
            veto=R.reason(
                R.LEVERAGE_CUT,
                volume=p.volume,
                fits=fitted,
                min=spec.volume_min,
                cap=ctx.leverage_cap,
                refused=1,
            )
        )
    new_risk = fitted * p.loss_per_lot / equity * 100.0
    return Outcome(
        notes=(
            R.reason(R.LEVERAGE_CUT, volume_from=p.volume, volume_to=fitted, cap=ctx.leverage_cap),
        ),
        proposal=replace(p, volume=fitted, risk_pct=round(new_risk, 4)),
    )
