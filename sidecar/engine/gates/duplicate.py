"""Duplicate signals: the same signal id within the window is refused (no double entries)."""

from sidecar.engine import reasons as R
from sidecar.engine.account import signal_age
from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=110, phase="order")
def duplicate_signal(ctx: GateContext) -> Outcome | None:
    assert ctx.proposal is not None
    age = signal_age(ctx.state, ctx.proposal.signal_id, ctx.tick.time.gmt)
    window = ctx.config.risk.duplicate_window_seconds
    if age is None or age > window:
        return None
    return Outcome(
        veto=R.reason(
            R.RISK_DUPLICATE_SIGNAL, signal_id=ctx.proposal.signal_id, age_s=age, window_s=window
        )
    )
