"""Breaker mode: `halted` blocks entries; `reducing` is reported (sizing halves the risk)."""

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate
from sidecar.engine.state import HALTED, REDUCING


@gate(order=10, phase="account")
def breaker_mode(ctx: GateContext) -> Outcome | None:
    s = ctx.state
    if s.mode == HALTED:
        resume = (
            f"drawdown<{ctx.config.risk.halt_resume_pct}%"
            if ctx.config.risk.halt_resume_pct > 0 and not s.floor_hit
            else "POST /v1/resume"  # the equity floor's halt: only a resume lifts it
        )
        return Outcome(
            veto=R.reason(
                R.MODE_HALTED,
                drawdown_pct=round(s.drawdown_pct, 2),
                since=s.mode_since,
                resume=resume,
            )
        )
    if s.mode == REDUCING:
        return Outcome(
            notes=(
                R.reason(
                    R.MODE_REDUCING,
                    drawdown_pct=round(s.drawdown_pct, 2),
                    risk_factor=ctx.config.risk.reducing_risk_factor,
                ),
            )
        )
    return None
