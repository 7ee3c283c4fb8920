"""Account protections: each limit just below, at and just above its boundary (DESIGN.md table)."""

from __future__ import annotations

import msgspec
import pytest

from sidecar.config import Config
from sidecar.engine import reasons as R
from sidecar.engine.account import TRACKED_POSITIONS, broker_day, next_day_start
from sidecar.engine.decide import Engine
from sidecar.protocol import Trade
from sidecar.testing import messages
from tests.engine.helpers import (
    LOGIN,
    T0,
    anchored,
    buy_signal,
    codes,
    config,
    decide,
    make_tick,
    spec,
)

# ------------------------------------------------------------------ daily loss (3% of day start)


@pytest.mark.parametrize(("loss_pct", "locked"), [(2.99, False), (3.0, True), (3.1, True)])
def test_daily_loss_lock_boundary(loss_pct: float, locked: bool) -> None:
    equity = 10000.0 * (1 - loss_pct / 100)
    d = decide(anchored(), make_tick(equity=equity), buy_signal())
    assert (R.RISK_DAILY_LOSS in codes(d)) is locked
    assert d.verdict.action == "hold"
    # 2.99% down is not locked, but the 1 USD left of the day's 300 holds no 1% trade
    # (the open-risk budget, tests/engine/test_open_risk.py)
    assert (R.RISK_DAILY_BUDGET in codes(d)) is not locked


def test_daily_lock_holds_all_day_even_after_recovery_and_lifts_next_broker_day() -> None:
    d1 = decide(anchored(), make_tick(equity=9690.0), buy_signal())  # 3.1% down
    assert d1.state.daily_lock_day == d1.state.day_key
    # Equity recovers within the same day: still locked, signal or not.
    d2 = decide(d1.state, make_tick(server=T0 + 7200, equity=10000.0), None)
    assert R.RISK_DAILY_LOSS in codes(d2)
    lock = next(r for r in d2.verdict.reasons if r.startswith(R.RISK_DAILY_LOSS))
    assert f"until_server={T0 + 86400}" in lock
    # Last second of the broker day: locked. First second of the next: lifted, new anchor.
    d3 = decide(d2.state, make_tick(server=T0 + 86399, equity=9800.0), buy_signal())
    assert R.RISK_DAILY_LOSS in codes(d3)
    # The first tick of the next broker day is only a candidate (one wrong clock must not lift
    # the lock); the second confirms the new day, anchored at the first tick's equity.
    nxt = buy_signal(bar_time=T0 + 86400)
    d4 = decide(d3.state, make_tick(server=T0 + 86400, equity=9800.0), nxt)
    assert R.RISK_DAILY_LOSS in codes(d4) and d4.state.pending_day == d3.state.day_key + 1
    d5 = decide(d4.state, make_tick(server=T0 + 86401, equity=9810.0), nxt)
    assert R.RISK_DAILY_LOSS not in codes(d5)
    assert d5.state.day_start_equity == 9800.0
    assert d5.verdict.action == "open"


def test_one_tick_with_a_future_clock_does_not_lift_the_daily_lock() -> None:
    locked = decide(anchored(), make_tick(equity=9600.0)).state  # 4% down: locked
    future = decide(locked, make_tick(server=T0 + 86400 + 60, equity=9500.0), buy_signal())
    assert R.RISK_DAILY_LOSS in codes(future)  # still the old day
    back = decide(future.state, make_tick(server=T0 + 3700, equity=9500.0), buy_signal())
    assert R.RISK_DAILY_LOSS in codes(back) and back.verdict.action == "hold"
    assert back.state.pending_day == -1 and back.state.day_key == locked.day_key
    assert any(t.event == "account.clock_jump_ignored" for t in back.transitions)
    # and the clock is not frozen at the wrong time: the next tick is not "backwards"
    nxt = decide(back.state, make_tick(server=T0 + 3710, equity=9500.0))
    assert R.DATA_CLOCK_BACKWARDS not in codes(nxt)


def test_broker_day_offset_shifts_the_boundary() -> None:
    broker = config(broker={"day_offset_hours": -7}).broker  # day starts 17:00 server time
    assert broker_day(T0 + 17 * 3600 - 1, broker) == broker_day(T0, broker)
    assert broker_day(T0 + 17 * 3600, broker) == broker_day(T0, broker) + 1
    assert next_day_start(broker_day(T0, broker), broker) == T0 + 17 * 3600


# ------------------------------------------------------------------ floating loss (10% of balance)


@pytest.mark.parametrize(("loss", "blocked"), [(999.0, False), (1000.0, False), (1000.5, True)])
def test_floating_loss_boundary(loss: float, blocked: bool) -> None:
    pos = messages.position(7, symbol="GBPUSD", profit=-loss)
    tick = make_tick(equity=10000.0 - loss, balance=10000.0, positions=[pos])
    state = anchored(day_start_equity=10000.0 - loss + 1, hwm=10000.0 - loss + 1)  # no other lock
    d = decide(state, tick, buy_signal())
    assert (R.RISK_FLOATING_LOSS in codes(d)) is blocked


# ------------------------------------------------------------------ drawdown stages


@pytest.mark.parametrize(
    ("dd", "mode", "cap"),
    [
        (4.99, "active", 300),
        (5.01, "active", 100),  # defensive leverage above 5%
        (11.99, "active", 100),
        (12.0, "reducing", 100),
        (14.99, "reducing", 100),
        (15.0, "halted", 100),
    ],
)
def test_drawdown_stages(dd: float, mode: str, cap: int) -> None:
    equity = 10000.0 * (1 - dd / 100)
    # Day start at current equity so the daily-loss lock does not mask the drawdown stages.
    state = anchored(equity=equity, hwm=10000.0)
    d = decide(state, make_tick(equity=equity), buy_signal())
    assert d.verdict.mode == mode
    assert d.verdict.leverage_cap == cap
    if mode == "halted":
        assert d.verdict.action == "hold"
        assert R.MODE_HALTED in codes(d)
    elif dd == 14.99:
        # 1 USD above the 15% level: no trade fits the drawdown budget (test_open_risk.py)
        assert d.verdict.action == "hold" and R.RISK_DRAWDOWN_BUDGET in codes(d)
    else:
        assert d.verdict.action == "open"
    if dd > 5:
        assert R.RISK_DRAWDOWN_DEFENSIVE in codes(d)


def test_reducing_mode_halves_the_risk() -> None:
    equity = 8750.0  # 12.5% below the 10,000 high-water mark
    active = decide(anchored(equity=equity, hwm=equity), make_tick(equity=equity), buy_signal())
    reducing = decide(anchored(equity=equity, hwm=10000.0), make_tick(equity=equity), buy_signal())
    assert reducing.verdict.mode == "reducing"
    assert reducing.verdict.open.volume == pytest.approx(active.verdict.open.volume / 2, abs=0.01)
    assert R.MODE_REDUCING in codes(reducing)


def test_reducing_lifts_below_resume_level_but_halted_is_sticky() -> None:
    state = decide(anchored(equity=8800.0, hwm=10000.0), make_tick(equity=8800.0)).state
    assert state.mode == "reducing"
    still = decide(state, make_tick(equity=9000.0)).state  # 10% drawdown: not below 10%
    assert still.mode == "reducing"
    back = decide(still, make_tick(equity=9001.0)).state  # 9.99%
    assert back.mode == "active"

    halted = decide(anchored(equity=8500.0, hwm=10000.0), make_tick(equity=8500.0)).state
    assert halted.mode == "halted"
    recovered = decide(halted, make_tick(equity=9900.0), buy_signal())
    assert recovered.verdict.mode == "halted"  # halt_resume_pct = 0: manual resume only
    assert recovered.verdict.action == "hold"


def test_an_automatic_resume_goes_through_reducing() -> None:
    cfg = config(risk={"halt_resume_pct": 14.0})  # resume level inside the reducing band
    halted = decide(anchored(equity=8400.0, hwm=10000.0), make_tick(equity=8400.0), cfg=cfg).state
    assert halted.mode == "halted"
    d = decide(halted, make_tick(equity=8700.0), cfg=cfg)  # 13%: recovered, but still >= 12%
    assert d.state.mode == "reducing"


def test_halted_auto_resume_when_configured() -> None:
    cfg = config(risk={"halt_resume_pct": 8.0})
    halted = decide(anchored(equity=8500.0, hwm=10000.0), make_tick(equity=8500.0), cfg=cfg).state
    assert halted.mode == "halted"
    d = decide(halted, make_tick(equity=9200.0), cfg=cfg)  # 8.0% drawdown: not yet
    assert d.state.mode == "halted"
    d = decide(d.state, make_tick(equity=9201.0), cfg=cfg)  # 7.99%
    assert d.state.mode == "active"
    assert any(t.event == "drawdown.active" for t in d.transitions)


def test_manual_resume_rebases_high_water_mark() -> None:
    from sidecar.engine.account import resume

    halted = decide(anchored(equity=8500.0, hwm=10000.0), make_tick(equity=8500.0)).state
    resumed, events = resume(halted, gmt=T0 + 4000, reason="operator checked the account")
    assert resumed.mode == "active" and resumed.hwm == 8500.0
    assert events[0].event == "drawdown.resumed"
    d = decide(resumed, make_tick(equity=8500.0, server=T0 + 4000), buy_signal())
    assert d.verdict.mode == "active" and d.verdict.action == "open"


def test_flatten_on_halt_closes_this_symbols_positions() -> None:
    cfg = config(risk={"flatten_on_halt": True})
    positions = [messages.position(1, "EURUSD", volume=0.3), messages.position(2, "GBPUSD")]
    d = decide(
        anchored(equity=8500.0, hwm=10000.0), make_tick(equity=8500.0, positions=positions), cfg=cfg
    )
    assert d.verdict.action == "close"
    assert [(c.ticket, c.volume) for c in d.verdict.close] == [(1, 0.3)]
    assert R.RISK_FLATTEN in codes(d)


# ------------------------------------------------------------------ positions


@pytest.mark.parametrize(("count", "blocked"), [(2, False), (3, True), (4, True)])
def test_max_open_positions(count: int, blocked: bool) -> None:
    positions = [messages.position(i, f"SYM{i}") for i in range(count)]
    d = decide(anchored(), make_tick(positions=positions), buy_signal())
    assert (R.RISK_MAX_POSITIONS in codes(d)) is blocked


def test_one_position_per_symbol() -> None:
    d = decide(anchored(), make_tick(positions=[messages.position(9, "EURUSD")]), buy_signal())
    assert R.RISK_SYMBOL_OPEN in codes(d)
    assert d.verdict.action == "hold"


# ------------------------------------------------------------------ duplicates


@pytest.mark.parametrize(("age", "blocked"), [(299, True), (300, True), (301, False)])
def test_duplicate_signal_window(age: int, blocked: bool) -> None:
    first = decide(anchored(), make_tick(server=T0 + 100), buy_signal())
    assert first.verdict.action == "open"
    sid = first.verdict.open.signal_id
    again = decide(first.state, make_tick(server=T0 + 100 + age), buy_signal())
    assert (R.RISK_DUPLICATE_SIGNAL in codes(again)) is blocked
    if blocked:
        assert f"signal_id={sid}" in " ".join(again.verdict.reasons)


# ------------------------------------------------------------------ loss streak cooldown


def _deals(state, *deals: tuple[int, float], start: int = T0 + 1000):
    """Fold closing deals, given as (position, net result), into `state`, one second apart."""
    return _fold(state, *[("out", position, net, 0.0) for position, net in deals], start=start)


def _fold(state, *deals: tuple[str, int, float, float], start: int = T0 + 1000):
    """Fold deals given as (entry, position, profit, commission), one second apart."""
    engine = Engine(Config())
    events = []
    for i, (entry, position, profit, commission) in enumerate(deals):
        msg = messages.trade(
            100 + i,
            entry=entry,
            profit=profit,
            commission=commission,
            time=start + i,
            position=position,
        )
        state, ev = engine.on_trade(state, msgspec.convert(msg, Trade), start + i)
        events += ev
    return state, events


def _losses(n: int, start: int = T0 + 1000):
    """`n` losing positions, each closed by one deal."""
    return _deals(anchored(), *[(501 + i, -10.0) for i in range(n)], start=start)


@pytest.mark.parametrize(("losses", "cooling"), [(2, False), (3, True)])
def test_three_losses_start_a_cooldown(losses: int, cooling: bool) -> None:
    state, events = _losses(losses)
    d = decide(state, make_tick(server=T0 + 1100), buy_signal())
    assert (R.RISK_COOLDOWN in codes(d)) is cooling
    assert bool(events) is cooling


def test_cooldown_lasts_sixty_minutes_and_forces_defensive_leverage() -> None:
    state, _ = _losses(3)
    last_loss = T0 + 1002
    assert state.cooldown_until == last_loss + 3600
    inside = decide(state, make_tick(server=last_loss + 3599), buy_signal())
    assert R.RISK_COOLDOWN in codes(inside)
    # The end is confirmed by a second tick past it (one wrong clock cannot lift it).
    first = decide(inside.state, make_tick(server=last_loss + 3600), buy_signal())
    assert R.RISK_COOLDOWN in codes(first)
    after = decide(first.state, make_tick(server=last_loss + 3601), buy_signal())
    assert R.RISK_COOLDOWN not in codes(after)
    assert after.verdict.leverage_cap == 100  # still 3 losses in a row: defensive


def test_one_tick_with_a_wrong_future_clock_does_not_lift_the_cooldown() -> None:
    state, _ = _losses(3)
    last_loss = T0 + 1002
    ahead = decide(state, make_tick(server=last_loss + 7200), buy_signal())  # 2 h ahead
    assert R.RISK_COOLDOWN in codes(ahead)
    back = decide(ahead.state, make_tick(server=last_loss + 60), buy_signal())  # right again
    assert R.RISK_COOLDOWN in codes(back) and back.state.cooldown_past == 0
    assert "account.clock_jump_ignored" in [t.event for t in back.transitions]
    # Two ticks past the real end lift it.
    end = state.cooldown_until
    again = decide(back.state, make_tick(server=end), buy_signal())
    lifted = decide(again.state, make_tick(server=end + 1), buy_signal())
    assert R.RISK_COOLDOWN in codes(again) and R.RISK_COOLDOWN not in codes(lifted)


def test_a_win_resets_the_streak() -> None:
    state, _ = _deals(anchored(), (501, -10.0), (502, -10.0), (503, 5.0))
    assert state.loss_streak == 0


def test_a_losing_position_closed_in_three_parts_is_one_loss() -> None:
    state, events = _deals(anchored(), (501, -4.0), (501, -3.0), (501, -3.0))
    assert state.loss_streak == 1
    assert events == []  # no cooldown: one losing trade, not three
    d = decide(state, make_tick(server=T0 + 1100), buy_signal())
    assert R.RISK_COOLDOWN not in codes(d)


def test_a_profitable_partial_close_then_a_smaller_loss_is_a_win() -> None:
    # Two losses, then a position that took +30 at its partial close and gave back 10 at the
    # stop: +20 overall, so the streak ends instead of reaching three.
    state, events = _deals(anchored(), (501, -10.0), (502, -10.0), (503, 30.0), (503, -10.0))
    assert state.loss_streak == 0
    assert events == []


def test_a_partial_win_then_a_bigger_loss_counts_once() -> None:
    state, events = _deals(anchored(), (501, -10.0), (502, -10.0), (503, 10.0), (503, -25.0))
    assert state.loss_streak == 1  # the first two ended with 503's partial win
    assert events == []
    state, events = _deals(state, (504, -1.0), (505, -1.0), start=T0 + 2000)
    assert state.loss_streak == 3 and events[0].event == "risk.cooldown"


def test_a_losing_position_still_open_counts_again_after_a_win() -> None:
    # 501 loses a part, 502 wins (streak over), then 501's remainder loses: the most recent
    # trade to finish is a loss, so the new streak counts it.
    state, _ = _deals(anchored(), (501, -10.0), (502, 5.0), (501, -5.0))
    assert state.loss_streak == 1


def test_the_entry_commission_counts_in_the_position_result() -> None:
    # Two losses, then a position closed at +0.40 gross after a 0.70 commission charged on its
    # entry deal: -0.30 net, the third loss in a row.
    state, events = _fold(
        anchored(),
        ("out", 501, -10.0, 0.0),
        ("out", 502, -10.0, 0.0),
        ("in", 503, 0.0, -0.70),
        ("out", 503, 0.40, 0.0),
    )
    assert dict(state.position_results)[503] == -0.3
    assert state.loss_streak == 3 and events[0].event == "risk.cooldown"


def test_an_entry_deal_starts_the_result_but_is_not_a_result() -> None:
    state, events = _fold(anchored(), ("out", 501, -10.0, 0.0), ("in", 502, 0.0, -0.70))
    assert state.loss_streak == 1 and events == []  # the open position is neither loss nor win
    state, _ = _fold(state, ("out", 502, 1.0, -0.70), start=T0 + 2000)
    assert dict(state.position_results)[502] == -0.4  # 1.00 - 0.70 - 0.70: a loss
    assert state.loss_streak == 2
    state, _ = _fold(state, ("in", 503, 0.0, 0.0), start=T0 + 3000)
    assert 503 not in dict(state.position_results)  # a free entry changes nothing


def test_an_entry_cost_outlives_many_other_trades_while_its_position_is_open() -> None:
    # Position 1 stays open while 100 others are traded (wins); its entry cost still counts.
    others = [("out", 1000 + i, 1.0, 0.0) for i in range(100)]
    state, _ = _fold(anchored(), ("in", 1, 0.0, -0.70), *others, ("out", 1, 0.40, 0.0))
    assert dict(state.position_results)[1] == -0.3
    assert state.loss_streak == 1


def test_a_win_after_costs_still_ends_the_streak() -> None:
    state, _ = _fold(
        anchored(),
        ("out", 501, -10.0, 0.0),
        ("out", 502, -10.0, 0.0),
        ("in", 503, 0.0, -0.70),
        ("out", 503, 2.0, -0.70),
    )
    assert dict(state.position_results)[503] == 0.6
    assert state.loss_streak == 0


def test_deals_without_a_position_id_are_each_their_own_trade() -> None:
    state, events = _deals(anchored(), (0, -1.0), (0, -1.0), (0, -1.0))
    assert state.loss_streak == 3 and events


def test_cent_sums_are_exact() -> None:
    # 0.1 + 0.2 - 0.3 is 5.6e-17 in binary: a position back at exactly zero is no win.
    state, _ = _deals(anchored(), (501, -10.0), (502, 0.1), (502, 0.2), (502, -0.3))
    assert dict(state.position_results)[502] == 0.0
    assert state.loss_streak == 0  # 502's partial win ended the streak; its zero adds nothing


def test_the_state_remembers_a_bounded_number_of_positions() -> None:
    state, _ = _deals(anchored(), *[(1000 + i, -1.0) for i in range(TRACKED_POSITIONS + 10)])
    assert len(state.position_results) == TRACKED_POSITIONS
    assert len(state.streak_positions) == TRACKED_POSITIONS
    assert state.loss_streak == TRACKED_POSITIONS + 10


# ------------------------------------------------------------------ reporting


def test_every_verdict_reports_mode_and_all_active_locks_even_without_a_signal() -> None:
    positions = [messages.position(i, f"S{i}", profit=-400.0) for i in range(3)]
    tick = make_tick(equity=8500.0, balance=10000.0, positions=positions)
    d = decide(anchored(hwm=10000.0), tick, None)
    got = set(codes(d))
    assert {R.MODE_HALTED, R.RISK_DAILY_LOSS, R.RISK_FLOATING_LOSS, R.RISK_MAX_POSITIONS} <= got
    assert d.verdict.mode == "halted"
    assert R.SIGNAL_NONE in got


def test_clock_jumping_back_keeps_the_day_and_is_reported() -> None:
    d0 = decide(anchored(), make_tick(server=T0 + 86400 + 5, equity=10000.0))
    d1 = decide(d0.state, make_tick(server=T0 + 86400 + 10, equity=10000.0))
    assert d1.state.day_key == T0 // 86400 + 1
    d2 = decide(d1.state, make_tick(server=T0 + 50, equity=9000.0))
    assert d2.state.day_key == d1.state.day_key  # never moves backwards
    assert R.DATA_CLOCK_BACKWARDS in codes(d2)


def test_reward_risk_gate() -> None:
    d = decide(anchored(), make_tick(), buy_signal(rr=1.9))
    assert R.RISK_REWARD_RISK in codes(d) and d.verdict.action == "hold"
    d = decide(anchored(), make_tick(), buy_signal(rr=2.0))
    assert d.verdict.action == "open"


def test_valid_until_and_management_parameters() -> None:
    d = decide(anchored(), make_tick(server=T0 + 3600, gmt=T0 + 3600 - 7200), buy_signal())
    v = d.verdict
    assert v.valid_until == T0 + 3600 - 7200 + 5  # the EA's GMT clock + 5 s
    assert v.manage.breakeven_r == 1.0
    assert v.manage.partial_fraction == 0.5
    assert v.manage.partial_r == pytest.approx(1.25)  # 50% of a 2.5R target
    assert v.manage.trail_distance == pytest.approx(0.005)  # 2 x ATR 0.0025
    _ = (LOGIN, spec)


def test_reduce_on_reducing_cuts_each_position_once_per_spell() -> None:
    cfg = config(risk={"reduce_on_reducing": True, "reduce_fraction": 0.5})
    positions = [
        messages.position(1, "EURUSD", volume=0.30),
        messages.position(2, "GBPUSD", volume=1.0),  # another chart's symbol: not ours to cut
    ]
    first = decide(
        anchored(equity=8800.0, hwm=10000.0), make_tick(equity=8800.0, positions=positions), cfg=cfg
    )
    assert first.verdict.mode == "reducing" and first.verdict.action == "reduce"
    assert [(c.ticket, c.volume) for c in first.verdict.close] == [(1, 0.15)]
    assert R.RISK_REDUCE in codes(first)
    assert first.state.reduced_tickets == (1,)
    again = decide(first.state, make_tick(equity=8800.0, positions=positions), cfg=cfg)
    assert again.verdict.action == "hold" and again.verdict.close == []
    # Back to active, then reducing again: a new spell may cut again.
    recovered = decide(again.state, make_tick(equity=9500.0, positions=positions), cfg=cfg)
    assert recovered.state.mode == "active" and recovered.state.reduced_tickets == ()
    second = decide(recovered.state, make_tick(equity=8700.0, positions=positions), cfg=cfg)
    assert second.verdict.action == "reduce"


def test_reduce_skips_cuts_below_volume_min() -> None:
    cfg = config(risk={"reduce_on_reducing": True, "reduce_fraction": 0.5})
    tiny = [messages.position(1, "EURUSD", volume=0.01)]
    d = decide(
        anchored(equity=8800.0, hwm=10000.0), make_tick(equity=8800.0, positions=tiny), cfg=cfg
    )
    assert d.verdict.action == "hold" and d.state.reduced_tickets == (1,)


def test_reduce_is_off_by_default() -> None:
    positions = [messages.position(1, "EURUSD", volume=0.30)]
    d = decide(anchored(equity=8800.0, hwm=10000.0), make_tick(equity=8800.0, positions=positions))
    assert d.verdict.mode == "reducing" and d.verdict.action == "hold"


def test_feed_close_flattens_this_symbol_only() -> None:
    from sidecar.engine.decide import Engine
    from sidecar.engine.state import Snapshot
    from tests.engine.helpers import analysis

    positions = [messages.position(1, "EURUSD", volume=0.3), messages.position(2, "GBPUSD")]
    snap = Snapshot(
        account=anchored(),
        symbol=spec(),
        analysis=analysis(buy_signal()),
        feed_blocks=('NEWS_BLACKOUT currency=USD event="NFP"',),
        feed_close=('NEWS_CLOSE currency=USD event="NFP" at=2024-12-18T13:30Z',),
    )
    v = Engine(config()).decide(make_tick(positions=positions), snap).verdict
    assert v.action == "close" and [(c.ticket, c.volume) for c in v.close] == [(1, 0.3)]
    assert "NEWS_CLOSE" in [r.split(" ")[0] for r in v.reasons]
    flat = Engine(config()).decide(make_tick(positions=positions[1:]), snap).verdict
    assert flat.action == "hold" and flat.close == []
