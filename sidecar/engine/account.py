"""Account protections as pure state transitions.

`observe` folds one tick's account numbers into the risk state: broker-day rollover, the equity
high-water mark, the breaker mode (`active -> reducing -> halted`) and the daily-loss lock.
`apply_trade` folds a deal into its position's result, the loss streak and cooldown.
`resume` is the explicit operator action that lifts a halt. None of them read the clock: time
comes from the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.config import BrokerConfig, RiskConfig
from sidecar.engine.rounding import round9
from sidecar.engine.state import ACTIVE, HALTED, REDUCING, AccountState

DAY = 86_400
# Positions whose running result the state remembers (and that a streak can name): a position
# closed in parts, or still open since its entry, while more than this many others were traded
# would count as a new one (its entry cost forgotten). The Kelly journal keeps as many open ones.
TRACKED_POSITIONS = 256
# A broker-day rollover counts as seen (the day starts at the equity of its first tick) when a tick
# came at most this long before the day started and the new day's first tick at most this long
# after; otherwise the anchor is rebuilt from the deal history (the EA's GUARD_ROLL_WITNESS_SEC).
ROLL_WITNESS_SECONDS = 300


@dataclass(frozen=True)
class Transition:
    """A change worth a log line and an alert: `event` is the log event name."""

    event: str
    detail: dict[str, object]


def broker_day(server_time: int, broker: BrokerConfig) -> int:
    """Broker day number: days since the epoch in server time, shifted by the configured offset."""
    return int((server_time - broker.day_offset_hours * 3600) // DAY)


def next_day_start(day_key: int, broker: BrokerConfig) -> int:
    """Server time at which the broker day after `day_key` starts."""
    return int((day_key + 1) * DAY + broker.day_offset_hours * 3600)


def _day_anchor(
    state: AccountState,
    day: int,
    server_time: int,
    gmt: int,
    equity: float,
    balance: float,
    broker: BrokerConfig,
) -> tuple[float, bool]:
    """(anchor, rebuilt) of broker day `day` first seen at this tick; `rebuilt` when the anchor
    came from the deal history rather than the equity.

    A rollover the sidecar saw (the previous tick within ROLL_WITNESS_SECONDS before the day's
    start, this one within as long after it) starts at the equity now. Otherwise (the EA was not
    running, or the account's first tick) the anchor is the day-start balance rebuilt from the
    day's known deals, balance - their net results, or the equity now when higher: never looser
    than the equity rule, and what firms that measure from the day-start balance use."""
    start = next_day_start(day - 1, broker)
    prev_server = state.last_gmt + (server_time - gmt)
    if (
        state.day_key >= 0
        and state.last_gmt > 0
        and start - ROLL_WITNESS_SECONDS <= prev_server < start
        and server_time - start <= ROLL_WITNESS_SECONDS
    ):
        return equity, False
    closed = state.closed_day_pnl if state.closed_day == day else 0.0
    rebuilt = round9(balance - closed)
    return (rebuilt, True) if rebuilt > equity else (equity, False)


def observe(
    state: AccountState,
    *,
    server_time: int,
    gmt: int,
    equity: float,
    balance: float,
    risk: RiskConfig,
    broker: BrokerConfig,
) -> tuple[AccountState, list[Transition]]:
    events: list[Transition] = []
    if gmt < state.last_gmt:
        # Clocks may jump back (a VPS resync, the tester restarting): keep every anchor and lock,
        # never move the broker day backwards.
        events.append(Transition("account.clock_backwards", {"from": state.last_gmt, "to": gmt}))
    day = broker_day(server_time, broker)
    day_key, day_start, hwm = state.day_key, state.day_start_equity, state.hwm
    pending_day, pending_equity = state.pending_day, state.pending_equity
    pending_rebuilt = state.pending_rebuilt
    if day_key < 0 or hwm <= 0:
        day_start, rebuilt = _day_anchor(state, day, server_time, gmt, equity, balance, broker)
        day_key, hwm = day, equity
        events.append(Transition("account.anchored", {"day": day, "equity": day_start}))
        if rebuilt:
            events.append(_rebuilt(day, day_start, equity, balance, state))
    elif day > day_key:
        if state.pending_day == day:  # the second tick of the new day: roll over
            day_start = state.pending_equity
            events.append(
                Transition(
                    "account.new_day",
                    {"day": day, "day_start_equity": day_start, "previous": state.day_start_equity},
                )
            )
            if state.pending_rebuilt:
                events.append(_rebuilt(day, day_start, equity, balance, state))
            day_key, pending_day, pending_equity, pending_rebuilt = day, -1, 0.0, False
        else:  # the first: remember it (and its anchor), keep the current day and its lock
            pending_day = day
            pending_equity, pending_rebuilt = _day_anchor(
                state, day, server_time, gmt, equity, balance, broker
            )
    elif state.pending_day >= 0:
        # A tick of the current day after a "new day" one: that clock was wrong, forget it.
        events.append(Transition("account.clock_jump_ignored", {"day": state.pending_day}))
        pending_day, pending_equity, pending_rebuilt = -1, 0.0, False
    # One copy per tick, through the cheap evolve() (this runs on every tick).
    s = state.evolve(
        day_key=day_key,
        day_start_equity=day_start,
        hwm=max(hwm, equity),
        equity=equity,
        balance=balance,
        last_gmt=gmt,
        pending_day=pending_day,
        pending_equity=pending_equity,
        pending_rebuilt=pending_rebuilt,
    )

    # Daily loss: a lock for the rest of the broker day, even if equity recovers.
    if s.daily_lock_day != s.day_key and s.day_start_equity > 0:
        loss_pct = round9(100.0 * (s.day_start_equity - equity) / s.day_start_equity)
        if loss_pct >= risk.daily_loss_pct:
            s = s.evolve(daily_lock_day=s.day_key)
            events.append(
                Transition(
                    "risk.daily_lock",
                    {"loss_pct": round(loss_pct, 4), "limit_pct": risk.daily_loss_pct},
                )
            )

    # Loss cooldown: its end is confirmed by a second tick past it; a tick back inside it after
    # one past it means that clock was wrong (the count starts over).
    if s.cooldown_until > 0:
        past = min(s.cooldown_past + 1, 2) if server_time >= s.cooldown_until else 0
        if past == 0 and s.cooldown_past:
            events.append(
                Transition("account.clock_jump_ignored", {"cooldown_until": s.cooldown_until})
            )
        if past != s.cooldown_past:
            s = s.evolve(cooldown_past=past)

    s, mode_events = _breaker(s, gmt, risk)
    if mode_events:
        events.extend(mode_events)

    # Equity floor: halted (for good: only a resume lifts it) and flattened by decide.
    if risk.equity_floor_pct > 0 and not s.floor_hit and s.hwm > 0:
        pct = round9(100.0 * equity / s.hwm)
        if pct <= risk.equity_floor_pct:
            why = (
                f"equity floor: equity {equity:g} <= {risk.equity_floor_pct:g}% of the "
                f"high-water mark {s.hwm:g}"
            )
            since = s.mode_since if s.mode == HALTED else gmt
            s = s.evolve(
                floor_hit=gmt or 1,
                mode=HALTED,
                mode_reason=why,
                mode_since=since,
                reduced_tickets=(),
            )
            events.append(
                Transition(
                    "risk.equity_floor",
                    {"equity": equity, "hwm": s.hwm, "floor_pct": risk.equity_floor_pct},
                )
            )
    return s, events


def _rebuilt(
    day: int, anchor: float, equity: float, balance: float, state: AccountState
) -> Transition:
    closed = state.closed_day_pnl if state.closed_day == day else 0.0
    return Transition(
        "account.day_rebuilt",
        {
            "day": day,
            "day_start_equity": anchor,
            "equity": equity,
            "balance": balance,
            "closed": closed,
        },
    )


def _breaker(s: AccountState, gmt: int, risk: RiskConfig) -> tuple[AccountState, list[Transition]]:
    if s.floor_hit:
        return s, []  # the equity floor's halt lifts only by a resume
    dd = s.drawdown_pct
    target = s.mode
    why = s.mode_reason
    if dd >= risk.drawdown_halted_pct:
        target, why = HALTED, f"drawdown {dd:.2f}% >= {risk.drawdown_halted_pct}%"
    elif s.mode == HALTED:
        if risk.halt_resume_pct > 0 and dd < risk.halt_resume_pct:
            # Leave a halt through the reducing check: never straight to full risk while the
            # drawdown is still in the reducing band.
            target = REDUCING if dd >= risk.drawdown_reducing_pct else ACTIVE
            why = f"equity recovered: drawdown {dd:.2f}% < {risk.halt_resume_pct}%"
    elif dd >= risk.drawdown_reducing_pct:
        target, why = REDUCING, f"drawdown {dd:.2f}% >= {risk.drawdown_reducing_pct}%"
    elif s.mode == REDUCING and dd < risk.reducing_resume_pct:
        target, why = ACTIVE, f"drawdown {dd:.2f}% < {risk.reducing_resume_pct}%"
    if target == s.mode:
        return s, []
    event = Transition(
        f"drawdown.{target}",
        {"from": s.mode, "to": target, "drawdown_pct": round(dd, 4), "reason": why},
    )
    # A new mode starts a new spell: positions may be reduced again if reducing comes back.
    return s.evolve(mode=target, mode_reason=why, mode_since=gmt, reduced_tickets=()), [event]


def net_result(profit: float, commission: float, swap: float) -> float:
    """What a deal did to the account: profit plus (negative) commission and swap."""
    return profit + commission + swap


def position_key(position: int, deal: int) -> int:
    """The trade a deal belongs to: its position, or the deal alone when the EA sent no position
    id (negative keys never meet real position ids)."""
    return position or -deal


def apply_trade(
    state: AccountState,
    *,
    entry: str,
    net_profit: float,
    position: int,
    server_time: int,
    signal_id: str | None,
    gmt: int,
    risk: RiskConfig,
    broker: BrokerConfig | None = None,
) -> tuple[AccountState, list[Transition]]:
    """Fold one deal into its position's result, the loss streak, cooldown and signal ids
    (and, given `broker`, into its broker day's net result: see `_day_anchor`).

    The streak counts losing positions, not deals: a position closed in parts (a partial close,
    then the stop) is one trade whose result is the sum of all its deals, the entry's commission
    included (many brokers charge it on the entry deal, some all of it there: a close at +0.40
    after a 0.70 commission is a loss). The entry deal only starts the sum; closing deals judge
    it. A closing deal that leaves its position's result negative counts that position once; one
    that leaves it positive is a win and ends the streak (a position back at exactly zero changes
    nothing). `position` is the key from `position_key`.
    """
    s = state
    events: list[Transition] = []
    if signal_id:
        s = remember_signal(s, signal_id, gmt, risk)
    if broker is not None and net_profit != 0:
        day = broker_day(server_time, broker)
        if day > s.closed_day:
            s = s.evolve(closed_day=day, closed_day_pnl=round9(net_profit))
        elif day == s.closed_day:
            s = s.evolve(closed_day_pnl=round9(s.closed_day_pnl + net_profit))
    if entry == "in" and net_profit == 0:
        return s, events
    results = dict(s.position_results)
    result = round9(results.pop(position, 0.0) + net_profit)  # sums of cents: no binary noise
    results[position] = result  # re-inserted: the most recently touched position is last
    s = s.evolve(position_results=tuple(results.items())[-TRACKED_POSITIONS:])
    if entry == "in":  # an open position is not a result yet
        return s, events
    if result < 0 and position not in s.streak_positions:
        streak = s.loss_streak + 1
        s = s.evolve(
            loss_streak=streak,
            streak_positions=(*s.streak_positions, position)[-TRACKED_POSITIONS:],
        )
        if streak % risk.loss_streak == 0 and risk.cooldown_minutes > 0:
            until = server_time + 60 * risk.cooldown_minutes
            s = s.evolve(cooldown_until=max(s.cooldown_until, until), cooldown_past=0)
            events.append(Transition("risk.cooldown", {"losses": streak, "until": until}))
    elif result > 0 and (s.loss_streak or s.streak_positions):
        s = s.evolve(loss_streak=0, streak_positions=())
    return s, events


def remember_signal(
    state: AccountState, signal_id: str, gmt: int, risk: RiskConfig
) -> AccountState:
    horizon = gmt - risk.duplicate_window_seconds
    kept = tuple((sid, t) for sid, t in state.recent_signals if t >= horizon and sid != signal_id)
    return state.evolve(recent_signals=(*kept, (signal_id, gmt))[-256:])


def signal_age(state: AccountState, signal_id: str, gmt: int) -> int | None:
    for sid, t in state.recent_signals:
        if sid == signal_id:
            return gmt - t
    return None


def resume(state: AccountState, *, gmt: int, reason: str) -> tuple[AccountState, list[Transition]]:
    """Operator lifts a halt. The high-water mark is re-based to current equity, otherwise the
    unchanged drawdown would halt again on the next tick; the loss is acknowledged, not erased."""
    if state.mode == ACTIVE:
        return state, []
    s = state.evolve(
        mode=ACTIVE,
        mode_reason=f"resumed: {reason}",
        mode_since=gmt,
        hwm=state.equity if state.equity > 0 else state.hwm,
        floor_hit=0,  # the floor follows the re-based mark: equity_floor_pct of it
    )
    return s, [
        Transition(
            "drawdown.resumed",
            {"from": state.mode, "reason": reason, "hwm_from": state.hwm, "hwm_to": s.hwm},
        )
    ]
