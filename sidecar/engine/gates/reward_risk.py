"""Reward:risk: the target must be at least `min_reward_risk` times the stop distance."""

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=130, phase="order")
def reward_risk(ctx: GateContext) -> Outcome | None:
    p = ctx.proposal
    assert p is not None
    rr = p.tp_distance / p.sl_distance
    minimum = ctx.config.risk.min_reward_risk
    if rr + 1e-9 >= minimum and p.tp > 0:
        return None
    return Outcome(veto=R.reason(R.RISK_REWARD_RISK, rr=round(rr, 3), min=minimum))
