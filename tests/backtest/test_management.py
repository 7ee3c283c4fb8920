"""The EA's local management replayed on the simulated broker, on price paths worked by hand.

EURUSD-like symbol (see test_broker.py): 0.1 lot earns 10,000 USD per 1.0 of price. A buy of
0.2 lot at 1.10000 with SL 1.09800 risks 0.00200 (1R); the defaults close half at 1R, move the
SL to entry at 1R and trail 2 ATRs behind the bid after the partial close.
"""

from __future__ import annotations

import pytest

from sidecar.backtest.broker import Broker
from sidecar.backtest.management import LocalManager, ea_atr, params_from_manage
from sidecar.backtest.model import AccountSpec
from sidecar.manager import ManageParams
from sidecar.protocol import Manage
from tests.backtest.test_broker import TUE, H, bar, eurusd


def setup(mode: str = "hedging", volume: float = 0.2) -> tuple[Broker, LocalManager, int]:
    b = Broker(AccountSpec(mode=mode), {"EURUSD": eurusd()})  # type: ignore[arg-type]
    lm = LocalManager(b)
    lm.set_atr("EURUSD", 0.0008)  # trail 2 x 0.0008 = 0.0016
    b.set_quote("EURUSD", 1.09998, 1.10000, TUE + 12 * H)
    r = b.market_order("EURUSD", "buy", volume, sl=1.0980, tp=1.1050)
    assert r.ok and r.deals[0].price == 1.1
    return b, lm, r.position


def walk(b: Broker, lm: LocalManager, t: int, o: float, h: float, lo: float, c: float) -> list:
    return b.process_bar("EURUSD", bar(t, o, h, lo, c), bar_close_time=t + H, on_point=lm.on_point)


def test_partial_close_then_atr_trailing_then_the_trailed_stop() -> None:
    b, lm, ticket = setup()
    # bar 1, long: open 1.1005 (0.25R), low 1.1003, high 1.1030 (1.5R), close 1.1025
    d1 = walk(b, lm, TUE + 13 * H, 1.1005, 1.1030, 1.1003, 1.1025)
    # at the high: half closed at 1.1030 (+30.00), SL trailed to 1.1030 - 0.0016 = 1.1014
    assert [(d.entry, d.volume, d.price, d.reason) for d in d1] == [("out", 0.1, 1.103, "expert")]
    assert d1[0].profit == pytest.approx(30.00) and d1[0].time == TUE + 13 * H + 2400
    (p,) = b.positions()
    assert (p.ticket, p.volume, p.sl, p.tp) == (ticket, 0.1, 1.1014, 1.105)
    # bar 2: the high 1.1045 trails to 1.1029; the close 1.1040 (1.1024) does not move it back
    assert walk(b, lm, TUE + 14 * H, 1.1026, 1.1045, 1.1020, 1.1040) == []
    assert b.positions()[0].sl == 1.1029
    # bar 3: open 1.1038 (trail 1.1022 < 1.1029), then down through the stop: filled at 1.1029
    d3 = walk(b, lm, TUE + 15 * H, 1.1038, 1.1041, 1.1010, 1.1015)
    assert [(d.reason, d.price, d.volume) for d in d3] == [("sl", 1.1029, 0.1)]
    assert d3[0].profit == pytest.approx(29.00)
    assert b.positions() == [] and b.account().balance == pytest.approx(10_059.00)
    assert lm.anchors == {}  # forgotten once the position is gone (QueueDeal)


def test_breakeven_without_atr_or_distance() -> None:
    b, lm, _ = setup()
    lm.set_atr("EURUSD", 0.0)
    # 1R at 1.1020: half closed, SL to the entry
    walk(b, lm, TUE + 13 * H, 1.1005, 1.1020, 1.1004, 1.1012)
    (p,) = b.positions()
    assert (p.volume, p.sl) == (0.1, 1.1)
    d = walk(b, lm, TUE + 14 * H, 1.1010, 1.1011, 1.0995, 1.1000)
    assert [(x.reason, x.price, x.profit) for x in d] == [("sl", 1.1, 0.0)]


def test_verdict_manage_replaces_the_defaults() -> None:
    manage = Manage(
        breakeven_r=0.5,
        partial_r=0.0,
        partial_fraction=0.0,
        trail_atr=0.0,
        trail_distance=0.0,
        breakeven_buffer=0.0002,
    )
    assert params_from_manage(manage, ManageParams()) == ManageParams(
        0.5, 0.0, 0.0, 0.0, 0.0, 0.0002
    )
    assert params_from_manage(None, ManageParams(trail_atr=3.0)) == ManageParams(trail_atr=3.0)
    b, lm, _ = setup()
    lm.set_manage("EURUSD", manage)
    # 0.5R at 1.1010: SL to entry + 0.0002, nothing closed
    assert walk(b, lm, TUE + 13 * H, 1.1005, 1.1010, 1.1004, 1.1008) == []
    (p,) = b.positions()
    assert (p.volume, p.sl) == (0.2, 1.1002)
    lm.set_manage("EURUSD", None)  # a verdict without manage: back to the EA's defaults
    assert lm.params["EURUSD"] == ManageParams()


def test_a_position_too_small_to_split_trails_at_once() -> None:
    b, lm, _ = setup(volume=0.01)
    walk(b, lm, TUE + 13 * H, 1.1005, 1.1025, 1.1004, 1.1020)
    (p,) = b.positions()
    assert (p.volume, p.sl) == (0.01, 1.1009)  # 1.1025 - 0.0016
    # the close (1R) trails no higher: the EA logs the partial held back (HELD)
    assert list(lm.held) == [(TUE + 13 * H + 3599, p.ticket, "PARTIAL_TOO_SMALL")]


def test_netting_partial_is_a_reduce_and_counts_as_done() -> None:
    b, lm, ticket = setup(mode="netting")
    d = walk(b, lm, TUE + 13 * H, 1.1005, 1.1030, 1.1003, 1.1025)
    assert [(x.entry, x.comment, x.volume) for x in d] == [("out", "sc:reduce", 0.1)]
    (p,) = b.positions()
    assert (p.ticket, p.volume, p.sl) == (ticket, 0.1, 1.1014)
    # the partial is never repeated: 0.1 < 0.2 - 0.005 says it is done
    assert walk(b, lm, TUE + 14 * H, 1.1026, 1.1050 - 0.0001, 1.1020, 1.1040) == []
    assert b.positions()[0].volume == 0.1


def test_the_runner_sequence_open_tick_then_the_rest_of_the_bar() -> None:
    b = Broker(AccountSpec(), {"EURUSD": eurusd()})
    lm = LocalManager(b)
    lm.set_atr("EURUSD", 0.0008)
    row = bar(TUE + 13 * H, 1.1000, 1.1030, 1.0999, 1.1025)
    t = int(row[0])
    ask = b.ask_for("EURUSD", row[1], row[6])
    b.set_quote("EURUSD", row[1], ask, t)  # the first tick of the new bar
    lm.on_point("EURUSD", row[1], ask, t)  # OnTick: ManagePositions first
    r = b.market_order("EURUSD", "buy", 0.2, sl=1.0980, tp=1.1050)  # then the verdict
    assert r.deals[0].price == 1.10002
    b.process_bar("EURUSD", row, bar_close_time=t + H, include_open=False, on_point=lm.on_point)
    # risk 1.10002 - 1.0980 = 0.00202; the high 1.1030 is 1.48R: half closed, trail 1.1014
    (p,) = b.positions()
    assert (p.volume, p.sl) == (0.1, 1.1014)
    assert lm.anchors[r.position] == (pytest.approx(0.00202), 0.2)


def test_ea_atr_is_the_mean_true_range_of_the_last_period_bars() -> None:
    rows = [[TUE + i * H, 1.1, 1.101, 1.1, 1.1005, 0, 2] for i in range(20)]
    rows[-1] = [TUE + 19 * H, 1.1, 1.1150, 1.1, 1.11, 0, 2]  # true range 0.015
    assert ea_atr(rows, 14) == pytest.approx((13 * 0.001 + 0.015) / 14)
    assert ea_atr(rows[:14], 14) == 0.0  # fewer than period + 1 bars
