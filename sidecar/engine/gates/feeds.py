"""Entry blocks supplied by the feeds layer (news blackouts, sentiment), passed in the snapshot."""

from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=60, phase="account")
def feed_blocks(ctx: GateContext) -> Outcome | None:
    blocks = ctx.snap.feed_blocks
    if not blocks:
        return None
    return Outcome(veto=blocks[0], notes=tuple(blocks[1:]))
