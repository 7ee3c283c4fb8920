"""Leverage regime: the effective-leverage cap for this tick (defensive, normal or profit)."""

import functools

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
    dd_note = (
        round(s.drawdown_pct, 2)
        if r.name == DEFENSIVE and s.drawdown_pct > cfg.risk.drawdown_defensive_pct
        else None
    )
    return _outcome(r.name, r.cap, r.why, dd_note)


@functools.lru_cache(maxsize=1024)
def _outcome(name: str, cap: int, why: tuple[str, ...], dd_note: float | None) -> Outcome:
    # The same regime repeats tick after tick: build its reasons and outcome once.
    context: dict[str, object] = {"regime": name, "cap": cap}
    if why:
        context["why"] = ",".join(why)
    notes = [R.reason(R.LEVERAGE_CAP, **context)]
    if dd_note is not None:
        notes.insert(0, R.reason(R.RISK_DRAWDOWN_DEFENSIVE, drawdown_pct=dd_note))
    return Outcome(notes=tuple(notes), leverage_cap=cap)
