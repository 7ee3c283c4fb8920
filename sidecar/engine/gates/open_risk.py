"""Open risk: what the open positions lose at their stops counts against the loss limits.

- `equity_floor`: equity reached `risk.equity_floor_pct` of the high-water mark (the account
  state is halted for good; `decide` closes the positions): every verdict says so.
- `position_without_stop`: an open position without a stop can lose without bound, so no budget
  can hold it: no entries until it has one.
- `open_risk_budget`: a new entry is cut, or refused below volume min, so that the equity if
  every open stop is hit, less the new trade's loss at its stop, stays at or above the day's loss
  level (day-start equity x (1 - daily_loss_pct / 100)) and the drawdown level (high-water mark x
  (1 - drawdown_halted_pct / 100), or the equity floor when that is higher).

A position's further loss at its stop is its floating profit minus its result at the stop,
(sl - price_open) x direction x volume x value per price unit, and never below 0 (a stop the price
has gapped past adds nothing the equity does not already show). The EA's Guard applies the same
budget to every position of the account (`GuardPositionRisk`); the tick carries this EA's.
"""

from collections.abc import Mapping
from dataclasses import replace

from sidecar.engine import reasons as R
from sidecar.engine.gates import GateContext, Outcome, gate
from sidecar.engine.rounding import round9
from sidecar.engine.sizing import floor_to_step
from sidecar.protocol import Tick


@gate(order=11, phase="account")
def equity_floor(ctx: GateContext) -> Outcome | None:
    s = ctx.state
    if not s.floor_hit:
        return None
    pct = ctx.config.risk.equity_floor_pct
    return Outcome(
        veto=R.reason(
            R.RISK_EQUITY_FLOOR,
            equity=round(s.equity, 2),
            floor_pct=pct,
            hwm=round(s.hwm, 2),
            since=s.floor_hit,
            resume="POST /v1/resume",
        )
    )


@gate(order=52, phase="account")
def position_without_stop(ctx: GateContext) -> Outcome | None:
    for p in ctx.tick.positions:  # a plain loop: runs on every tick
        if p.sl <= 0:
            return Outcome(veto=R.reason(R.RISK_OPEN_NO_STOP, ticket=p.ticket, symbol=p.symbol))
    return None


def open_risk(tick: Tick, value_per_price: Mapping[str, float], own: float) -> float:
    """Money the open positions lose further if every stop is hit (positions without a stop
    are vetoed before this is asked)."""
    total = 0.0
    for p in tick.positions:
        if p.sl <= 0:
            continue
        vpp = own if p.symbol == tick.symbol else value_per_price.get(p.symbol, own)
        direction = 1.0 if p.side == "buy" else -1.0
        at_stop = (p.sl - p.price_open) * direction * p.volume * vpp
        further = p.profit - at_stop
        if further > 0:
            total += further
    return round9(total)


@gate(order=170, phase="order")
def open_risk_budget(ctx: GateContext) -> Outcome | None:
    p = ctx.proposal
    assert p is not None
    if p.loss_per_lot <= 0:
        return None
    s = ctx.state
    risk = ctx.config.risk
    spec = ctx.snap.symbol
    own = (ctx.tick.tick_value or spec.tick_value) / spec.tick_size
    held = open_risk(ctx.tick, ctx.snap.value_per_price, own)
    worst = ctx.tick.account.equity - held
    code, room = None, None
    if s.day_start_equity > 0:
        room = round9(worst - s.day_start_equity * (1.0 - risk.daily_loss_pct / 100.0))
        code = R.RISK_DAILY_BUDGET
    if s.hwm > 0:
        level = s.hwm * (1.0 - risk.drawdown_halted_pct / 100.0)
        if risk.equity_floor_pct > 0:
            level = max(level, s.hwm * risk.equity_floor_pct / 100.0)
        dd_room = round9(worst - level)
        if room is None or dd_room < room:
            code, room = R.RISK_DRAWDOWN_BUDGET, dd_room
    if code is None or room is None or p.volume * p.loss_per_lot <= room + 1e-9:
        return None
    fitted = floor_to_step(room / p.loss_per_lot, spec.volume_step) if room > 0 else 0.0
    if fitted < spec.volume_min - 1e-12:
        return Outcome(
            veto=R.reason(
                code,
                volume=p.volume,
                fits=fitted,
                min=spec.volume_min,
                room=round(room, 2),
                open_risk=round(held, 2),
                refused=1,
            )
        )
    new_risk = fitted * p.loss_per_lot / ctx.tick.account.equity * 100.0
    return Outcome(
        notes=(
            R.reason(
                code,
                volume_from=p.volume,
                volume_to=fitted,
                room=round(room, 2),
                open_risk=round(held, 2),
            ),
        ),
        proposal=replace(p, volume=fitted, risk_pct=round(new_risk, 4)),
    )
