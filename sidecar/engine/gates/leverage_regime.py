"""Leverage regime: the effective-leverage cap for this tick (normal, or defensive when risky)."""

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=70, phase="account")
def leverage_regime(ctx: GateContext) -> Outcome | None:
    lev = ctx.config.leverage
    risk = ctx.config.risk
    s = ctx.state
    why: list[str] = []
    if s.drawdown_pct > risk.drawdown_defensive_pct:
        why.append(f"drawdown>{risk.drawdown_defensive_pct}%")
    if s.loss_streak >= risk.loss_streak:
        why.append(f"losses>={risk.loss_streak}")
    why.extend(ctx.snap.feed_defensive)
    if why:
        notes = [R.reason(R.LEVERAGE_CAP, regime="defensive", cap=lev.defensive, why=",".join(why))]
        if s.drawdown_pct > risk.drawdown_defensive_pct:
            notes.insert(
                0, R.reason(R.RISK_DRAWDOWN_DEFENSIVE, drawdown_pct=round(s.drawdown_pct, 2))
            )
        return Outcome(notes=tuple(notes), leverage_cap=lev.defensive)
    return Outcome(
        notes=(R.reason(R.LEVERAGE_CAP, regime="normal", cap=lev.normal),), leverage_cap=lev.normal
    )
