"""Daily loss: once equity fell the limit below the broker day's start, no entries that day."""

from sidecar.engine import reasons as R
from sidecar.engine.account import next_day_start
from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=20, phase="account")
def daily_loss_lock(ctx: GateContext) -> Outcome | None:
    s = ctx.state
    if s.daily_lock_day != s.day_key:
        return None
    loss_pct = 100.0 * (s.day_start_equity - s.equity) / s.day_start_equity
    return Outcome(
        veto=R.reason(
            R.RISK_DAILY_LOSS,
            loss_pct=round(loss_pct, 2),
            limit_pct=ctx.config.risk.daily_loss_pct,
            until_server=next_day_start(s.day_key, ctx.config.broker),
        )
    )
