"""Leverage cut: total open notional / equity, new trade included, stays within the cap.

A trade that would breach the cap is reduced to fit, or refused if that falls below volume min.
"""

from dataclasses import replace

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate
from sidecar.engine.leverage import effective_leverage, fit_volume, open_notional
from sidecar.engine.sizing import notional_per_lot


@gate(order=160, phase="order")
def leverage_cut(ctx: GateContext) -> Outcome | None:
    p = ctx.proposal
    assert p is not None
    spec = ctx.snap.symbol
    equity = ctx.tick.account.equity
    own = (ctx.tick.tick_value or spec.tick_value) / spec.tick_size
    # Other symbols' positions use their own value per price unit when a hello introduced them.
    held = open_notional(ctx.tick.positions, ctx.snap.value_per_price, own)
    per_lot = notional_per_lot(p.entry, spec, ctx.tick.tick_value)
    wanted = effective_leverage(held + p.volume * per_lot, equity)
    if wanted <= ctx.leverage_cap:
        return None
    fitted = fit_volume(ctx.leverage_cap, equity, held, per_lot, spec.volume_step)
    if fitted < spec.volume_min - 1e-12:
        return Outcome(
            veto=R.reason(
                R.LEVERAGE_CUT,
                volume=p.volume,
                fits=fitted,
                min=spec.volume_min,
                cap=ctx.leverage_cap,
                leverage=round(wanted, 1),
                refused=1,
            )
        )
    new_risk = fitted * p.loss_per_lot / equity * 100.0
    return Outcome(
        notes=(
            R.reason(
                R.LEVERAGE_CUT,
                volume_from=p.volume,
                volume_to=fitted,
                cap=ctx.leverage_cap,
                leverage=round(wanted, 1),
            ),
        ),
        proposal=replace(p, volume=fitted, risk_pct=round(new_risk, 4)),
    )
