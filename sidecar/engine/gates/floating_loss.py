"""Floating loss: open positions losing more than the limit (of balance) block new entries."""

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=30, phase="account")
def floating_loss(ctx: GateContext) -> Outcome | None:
    open_pnl = sum(p.profit + p.swap for p in ctx.tick.positions)
    if open_pnl >= 0:
        return None
    loss_pct = round(100.0 * -open_pnl / ctx.tick.account.balance, 9)
    if loss_pct <= ctx.config.risk.floating_loss_pct:
        return None
    return Outcome(
        veto=R.reason(
            R.RISK_FLOATING_LOSS,
            loss_pct=round(loss_pct, 2),
            limit_pct=ctx.config.risk.floating_loss_pct,
        )
    )
