"""The open-risk budget, the equity floor and the rebuilt day anchor (issue 16).

What a trader relies on: an entry never puts the day's loss limit (or the drawdown limit) within
reach of one bad move of the open stops; a hard equity floor closes everything and stays shut;
a day whose start the sidecar did not see is anchored at what the account had, not at what was
left when the EA came back.
"""

from __future__ import annotations

import msgspec
import pytest
from pydantic import ValidationError

from sidecar.config import Config
from sidecar.engine import reasons as R
from sidecar.engine.account import resume
from sidecar.engine.decide import Engine
from sidecar.protocol import Trade
from sidecar.testing import messages
from tests.engine.helpers import LOGIN, T0, anchored, buy_signal, codes, config, decide, make_tick

DAY = 86_400


def _pos(ticket: int, symbol: str, side: str, volume: float, price_open: float, sl: float,
         profit: float = 0.0) -> dict[str, object]:  # fmt: skip
    return messages.position(ticket, symbol, side, volume, price_open, profit) | {"sl": sl}


def _reason(d: object, code: str) -> str:
    return next(r for r in d.verdict.reasons if r.startswith(code))  # type: ignore[attr-defined]


# ------------------------------------------------------------------ the daily budget


def test_an_entry_is_cut_to_what_the_day_has_left() -> None:
    # 2.5% down on a 3% day: 50 USD left; the 1% trade (0.19 lot x 500 USD at the 50-pip stop)
    # is cut to 50 / 500 = 0.10 lot, and the verdict says why.
    d = decide(anchored(), make_tick(equity=9750.0), buy_signal())
    assert d.verdict.action == "open" and d.verdict.open is not None
    assert d.verdict.open.volume == 0.1
    assert d.verdict.open.risk_pct == pytest.approx(50.0 / 9750.0 * 100, abs=1e-4)
    assert "volume_from=0.19 volume_to=0.1 room=50" in _reason(d, R.RISK_DAILY_BUDGET)


def test_with_room_to_spare_nothing_is_cut() -> None:
    d = decide(anchored(), make_tick(equity=9800.0), buy_signal())  # 100 USD left, 95 asked
    assert d.verdict.open is not None and d.verdict.open.volume == 0.19
    assert R.RISK_DAILY_BUDGET not in codes(d)


def test_open_positions_count_at_their_stops_not_at_their_floating_result() -> None:
    # Flat equity, but a GBPUSD position 25 pips (0.8 lot = 200 USD) from its stop: the day can
    # still lose 300 - 200 = 100 USD, so the 1% trade (0.2 lot = 100 USD) just fits.
    held = [_pos(5, "GBPUSD", "buy", 0.8, 1.25, 1.2475)]
    d = decide(anchored(), make_tick(equity=10000.0, positions=held), buy_signal())
    assert d.verdict.open is not None and d.verdict.open.volume == 0.2
    assert R.RISK_DAILY_BUDGET not in codes(d)
    d = decide(anchored(), make_tick(equity=10000.0, positions=held), buy_signal(0.003))
    # 1% of 10,000 at a 30-pip stop = 0.33 lot (99 USD); 100 USD left: fits exactly (0.33 lot)
    assert d.verdict.open is not None and d.verdict.open.volume == 0.33
    held = [_pos(5, "GBPUSD", "buy", 0.9, 1.25, 1.2475)]  # 225 USD at its stop: 75 left
    d = decide(anchored(), make_tick(equity=10000.0, positions=held), buy_signal(0.003))
    assert d.verdict.open is not None and d.verdict.open.volume == 0.25
    assert R.RISK_DAILY_BUDGET in codes(d)


def test_a_stop_at_breakeven_frees_the_budget_and_a_trailed_stop_counts_its_giveback() -> None:
    at_entry = [_pos(5, "GBPUSD", "buy", 2.0, 1.25, 1.25)]
    d = decide(anchored(), make_tick(equity=9800.0, positions=at_entry), buy_signal())
    assert d.verdict.open is not None and d.verdict.open.volume == 0.19  # 100 left, 95 asked
    # 300 USD in profit with the stop 10 pips above entry (locks 200): 100 more can go.
    trailed = [_pos(5, "GBPUSD", "buy", 2.0, 1.25, 1.251, profit=300.0)]
    d = decide(anchored(), make_tick(equity=9800.0, positions=trailed), buy_signal())
    assert R.RISK_DAILY_BUDGET in codes(d) and d.verdict.action == "hold"
    assert "room=0 open_risk=100" in _reason(d, R.RISK_DAILY_BUDGET)


def test_a_position_without_a_stop_blocks_every_entry_until_it_has_one() -> None:
    bare = [_pos(5, "GBPUSD", "buy", 0.01, 1.25, 0.0)]
    d = decide(anchored(), make_tick(positions=bare), buy_signal())
    assert d.verdict.action == "hold"
    assert _reason(d, R.RISK_OPEN_NO_STOP) == "RISK_OPEN_NO_STOP ticket=5 symbol=GBPUSD"
    d = decide(anchored(), make_tick(positions=bare))  # no signal: still reported, like a lock
    assert R.RISK_OPEN_NO_STOP in codes(d)
    protected = [_pos(5, "GBPUSD", "buy", 0.01, 1.25, 1.24)]
    d = decide(anchored(), make_tick(positions=protected), buy_signal())
    assert d.verdict.action == "open"


# ------------------------------------------------------------------ the drawdown budget


def test_the_drawdown_budget_keeps_the_halt_level_out_of_reach() -> None:
    # 14.5% below the high-water mark (new day, so the daily budget has 3% of 8550 = 256.5;
    # reducing moved to 14.9% so the risk is not halved): 50 USD above the 15% halt level ->
    # the 1% trade (0.17 lot = 85 USD) is cut to 0.10.
    cfg = config(risk={"drawdown_reducing_pct": 14.9})
    state = anchored(equity=8550.0, hwm=10000.0)
    d = decide(state, make_tick(equity=8550.0), buy_signal(), cfg)
    assert d.verdict.open is not None and d.verdict.open.volume == 0.1
    assert "room=50" in _reason(d, R.RISK_DRAWDOWN_BUDGET)


def test_the_equity_floor_is_the_drawdown_level_when_it_is_higher() -> None:
    cfg = config(risk={"equity_floor_pct": 90.0})
    state = anchored(equity=9050.0, hwm=10000.0)  # 50 USD above the 9,000 floor
    d = decide(state, make_tick(equity=9050.0), buy_signal(), cfg)
    assert d.verdict.open is not None and d.verdict.open.volume == 0.1
    assert R.RISK_DRAWDOWN_BUDGET in codes(d)


# ------------------------------------------------------------------ the equity floor


def test_the_equity_floor_flattens_halts_and_stays_shut() -> None:
    cfg = config(risk={"equity_floor_pct": 90.0, "halt_resume_pct": 12.0})
    here = _pos(7, "EURUSD", "buy", 0.2, 1.105, 1.095, profit=-100.0)
    there = _pos(8, "GBPUSD", "buy", 0.2, 1.25, 1.24)
    d = decide(anchored(), make_tick(equity=9000.0, positions=[here, there]), None, cfg)
    assert d.verdict.mode == "halted" and d.verdict.action == "close"
    # this symbol's positions (the EA on each chart closes its own)
    assert [(c.ticket, c.volume) for c in d.verdict.close] == [(7, 0.2)]
    assert R.RISK_EQUITY_FLOOR in codes(d) and R.RISK_FLATTEN in codes(d)
    assert any(t.event == "risk.equity_floor" for t in d.transitions)
    # Equity recovers to a 1% drawdown, below halt_resume_pct: a drawdown halt would lift, the
    # floor's does not (and a signal is refused).
    later = decide(d.state, make_tick(server=T0 + 7200, equity=9900.0), buy_signal(), cfg)
    assert later.verdict.mode == "halted" and later.verdict.action == "hold"
    assert R.RISK_EQUITY_FLOOR in codes(later)
    assert 'resume="POST /v1/resume"' in _reason(later, R.MODE_HALTED)
    # Only the operator's resume lifts it; the floor then follows the re-based mark.
    resumed, _ = resume(later.state, gmt=T0 + 7300, reason="new phase")
    assert resumed.floor_hit == 0 and resumed.mode == "active"
    after = decide(resumed, make_tick(server=T0 + 7400, equity=9900.0), buy_signal(), cfg)
    assert R.RISK_EQUITY_FLOOR not in codes(after) and after.verdict.mode == "active"


def test_just_above_the_floor_nothing_happens() -> None:
    cfg = config(risk={"equity_floor_pct": 90.0})
    d = decide(anchored(equity=9000.01, hwm=10000.0), make_tick(equity=9000.01), None, cfg)
    assert d.verdict.mode == "active" and R.RISK_EQUITY_FLOOR not in codes(d)


def test_the_floor_setting_is_validated() -> None:
    assert Config().risk.equity_floor_pct == 0.0  # off by default
    for bad in (-1.0, 100.0):
        with pytest.raises(ValidationError, match="equity_floor_pct"):
            config(risk={"equity_floor_pct": bad})


# ------------------------------------------------------------------ the rebuilt day anchor


def _trade(deal: int, profit: float, time: int, entry: str = "out") -> Trade:
    return msgspec.convert(
        messages.trade(deal, login=LOGIN, entry=entry, profit=profit, time=time), Trade
    )


def test_a_day_the_ea_did_not_see_start_is_anchored_at_the_rebuilt_balance() -> None:
    engine = Engine(Config())
    # Last tick at 20:00 on day 1 (flat at 10,000); the EA stops. Overnight a position of the
    # EA stops out at 03:00 on day 2 for -300 (a deal the EA reports when it comes back).
    state = anchored(last_gmt=T0 + 20 * 3600)
    state, _ = engine.on_trade(state, _trade(41, -300.0, T0 + DAY + 3 * 3600), T0 + 20 * 3600)
    assert (state.closed_day, state.closed_day_pnl) == (T0 // DAY + 1, -300.0)
    first = decide(state, make_tick(server=T0 + DAY + 8 * 3600, equity=9700.0), buy_signal())
    second = decide(first.state, make_tick(server=T0 + DAY + 8 * 3600 + 1, equity=9700.0))
    # The day started at 10,000 (9,700 + 300), not at the 9,700 seen at 08:00: it is already
    # 3% down and locked, as the firm counts it.
    assert second.state.day_start_equity == 10000.0
    assert R.RISK_DAILY_LOSS in codes(second)
    assert _reason(second, R.RISK_DAY_REBUILT) == (
        "RISK_DAY_REBUILT day_start_equity=10000 equity=9700 balance=9700 closed=-300"
    )


def test_a_rollover_the_ea_saw_keeps_the_equity_then() -> None:
    # Ticks at 23:58 and 00:01: a witnessed rollover. A -300 deal at 00:00:30 is part of the
    # new day's result through the equity, not added to the anchor.
    engine = Engine(Config())
    before = decide(anchored(), make_tick(server=T0 + DAY - 120, equity=10000.0)).state
    state, _ = engine.on_trade(before, _trade(42, -300.0, T0 + DAY + 30), T0 + DAY - 120)
    first = decide(state, make_tick(server=T0 + DAY + 60, equity=9700.0))
    second = decide(first.state, make_tick(server=T0 + DAY + 61, equity=9700.0))
    assert second.state.day_start_equity == 9700.0
    assert R.RISK_DAY_REBUILT not in codes(second)


def test_a_rebuilt_anchor_is_never_below_the_equity_seen() -> None:
    # Away overnight, a +200 win closed today and a position now 300 in profit: the day-start
    # balance (9,800) is below the equity seen (10,300): the equity, as before.
    engine = Engine(Config())
    state = anchored(last_gmt=T0 + 20 * 3600)
    state, _ = engine.on_trade(state, _trade(43, 200.0, T0 + DAY + 3600), T0 + 20 * 3600)
    tick = make_tick(server=T0 + DAY + 8 * 3600, equity=10300.0, balance=10000.0)
    first = decide(state, tick)
    second = decide(first.state, make_tick(server=T0 + DAY + 8 * 3600 + 1, equity=10300.0))
    assert second.state.day_start_equity == 10300.0
    assert R.RISK_DAY_REBUILT not in codes(second)


def test_deals_of_earlier_days_do_not_move_todays_anchor() -> None:
    engine = Engine(Config())
    state = anchored(last_gmt=T0 + 20 * 3600)
    state, _ = engine.on_trade(state, _trade(44, -300.0, T0 + 21 * 3600), T0 + 21 * 3600)
    first = decide(state, make_tick(server=T0 + DAY + 8 * 3600, equity=9700.0))
    second = decide(first.state, make_tick(server=T0 + DAY + 8 * 3600 + 1, equity=9700.0))
    assert second.state.day_start_equity == 9700.0  # the -300 was yesterday's
