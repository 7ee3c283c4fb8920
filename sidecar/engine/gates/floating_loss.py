"""Floating loss: open positions losing more than the limit (of balance) block new entries."""

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate
from sidecar.engine.rounding import round9


@gate(order=30, phase="account")
def floating_loss(ctx: GateContext) -> Outcome | None:
    open_pnl = 0.0
    for p in ctx.tick.positions:  # a plain loop: runs on every tick
        open_pnl += p.profit + p.swap
    if open_pnl >= 0:
        return None
    loss_pct = round9(100.0 * -open_pnl / ctx.tick.account.balance)
    if loss_pct <= ctx.config.risk.floating_loss_pct:
        return None
    return Outcome(
        veto=R.reason(
            R.RISK_FLOATING_LOSS,
            loss_pct=round(loss_pct, 2),
            limit_pct=ctx.config.risk.floating_loss_pct,
        )
    )
