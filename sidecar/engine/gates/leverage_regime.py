"""Leverage regime: the effective-leverage cap for this tick (defensive, normal or profit)."""

from sidecar.engine import reasons as R
from sidecar.engine.budget import journal_estimate
from sidecar.engine.gates import GateContext, Outcome, gate
from sidecar.engine.leverage import DEFENSIVE, regime


@gate(order=70, phase="account")
def leverage_regime(ctx: GateContext) -> Outcome | None:
    cfg = ctx.config
    s = ctx.state
    kelly = journal_estimate(cfg.sizing, ctx.snap.trades)
    r = regime(s, cfg.risk, cfg.leverage, ctx.snap.feed_defensive, kelly)
    context: dict[str, object] = {"regime": r.name, "cap": r.cap}
    if r.why:
        context["why"] = ",".join(r.why)
    notes = [R.reason(R.LEVERAGE_CAP, **context)]
    if r.name == DEFENSIVE and s.drawdown_pct > cfg.risk.drawdown_defensive_pct:
        notes.insert(0, R.reason(R.RISK_DRAWDOWN_DEFENSIVE, drawdown_pct=round(s.drawdown_pct, 2)))
    return Outcome(notes=tuple(notes), leverage_cap=r.cap)
