"""Open positions: at most `max_positions` for this EA, and one per symbol."""

import functools

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate


@gate(order=50, phase="account")
def max_positions(ctx: GateContext) -> Outcome | None:
    count = len(ctx.tick.positions)
    limit = ctx.config.risk.max_positions
    if count < limit:
        return None
    return Outcome(veto=R.reason(R.RISK_MAX_POSITIONS, open=count, max=limit))


@gate(order=51, phase="account")
def one_per_symbol(ctx: GateContext) -> Outcome | None:
    if not ctx.config.risk.one_per_symbol:
        return None
    symbol = ctx.tick.symbol
    for p in ctx.tick.positions:
        if p.symbol == symbol:
            return _symbol_open(symbol, p.ticket)
    return None


@functools.lru_cache(maxsize=1024)
def _symbol_open(symbol: str, ticket: int) -> Outcome:
    # The same position vetoes every tick while it is open: format its reason once.
    return Outcome(veto=R.reason(R.RISK_SYMBOL_OPEN, symbol=symbol, ticket=ticket))
