"""Consecutive losses: after N losing closes in a row, no entries until the cooldown ends, which
the second tick past its end confirms (`AccountState.cooldown_past`, counted by account.observe)."""

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=40, phase="account")
def loss_cooldown(ctx: GateContext) -> Outcome | None:
    s = ctx.state
    now = ctx.tick.time.server
    if now >= s.cooldown_until and (s.cooldown_until <= 0 or s.cooldown_past >= 2):
        return None
    return Outcome(
        veto=R.reason(
            R.RISK_COOLDOWN,
            losses=s.loss_streak,
            until_server=s.cooldown_until,
            remaining_s=max(0, s.cooldown_until - now),
        )
    )
