"""The broker simulator as a specification: every expected number below is worked by hand.

EURUSD-like symbol: 5 digits, tick 0.00001 worth 1.0 USD per lot, so one lot moves 100,000 USD
per 1.0 of price (10 USD per pip); volume 0.01..100 in steps of 0.01.
"""

from __future__ import annotations

import pytest

from sidecar.backtest.broker import (
    RETCODE_DONE,
    RETCODE_FROZEN,
    RETCODE_INVALID,
    RETCODE_INVALID_STOPS,
    RETCODE_INVALID_VOLUME,
    RETCODE_NO_CHANGES,
    RETCODE_NO_MONEY,
    RETCODE_POSITION_CLOSED,
    RETCODE_PRICE_OFF,
    Broker,
    weekday,
)
from sidecar.backtest.model import AccountSpec, InstrumentSpec
from sidecar.protocol import AccountSnapshot, Position, SymbolSpec

TUE = 1704153600  # 2024-01-02 00:00, a Tuesday
H = 3600
DAY = 86400


def eurusd(**kw: object) -> InstrumentSpec:
    sym = SymbolSpec(
        name="EURUSD",
        digits=5,
        point=0.00001,
        tick_size=0.00001,
        tick_value=1.0,
        contract_size=100000.0,
        volume_min=0.01,
        volume_step=0.01,
        volume_max=100.0,
        base="EUR",
        quote="USD",
        stops_level=int(kw.pop("stops_level", 0)),  # type: ignore[call-overload]
        freeze_level=int(kw.pop("freeze_level", 0)),  # type: ignore[call-overload]
    )
    return InstrumentSpec(symbol=sym, **kw)  # type: ignore[arg-type]


def make(account: AccountSpec | None = None, **kw: object) -> Broker:
    return Broker(account or AccountSpec(), {"EURUSD": eurusd(**kw)})


def quote(b: Broker, bid: float, t: int = TUE + 12 * H, spread: float = 0.0002) -> None:
    b.set_quote("EURUSD", bid, round(bid + spread, 5), t)


# ---------------------------------------------------------------- prices and costs


def test_buys_open_at_ask_and_close_at_bid_sells_the_other_way() -> None:
    b = make()
    quote(b, 1.1000)  # ask 1.1002
    buy = b.market_order("EURUSD", "buy", 0.1, comment="sc:a")
    sell = b.market_order("EURUSD", "sell", 0.1)
    assert buy.retcode == sell.retcode == RETCODE_DONE
    assert buy.deals[0].price == 1.1002 and buy.deals[0].entry == "in"
    assert sell.deals[0].price == 1.1000
    assert buy.position == buy.order and buy.position != sell.position  # hedging: two positions
    quote(b, 1.1010, TUE + 13 * H)  # ask 1.1012
    out_buy = b.close_position(buy.position).deals[0]
    out_sell = b.close_position(sell.position).deals[0]
    assert (out_buy.side, out_buy.entry, out_buy.price) == ("sell", "out", 1.1010)
    assert out_buy.profit == pytest.approx(8.00)  # (1.1010 - 1.1002) * 100000 * 0.1
    assert (out_sell.side, out_sell.price) == ("buy", 1.1012)
    assert out_sell.profit == pytest.approx(-12.00)  # (1.1000 - 1.1012) * 100000 * 0.1
    assert b.account().balance == pytest.approx(10_000 - 4.00)
    assert [d.deal for d in b.deals] == [1, 2, 3, 4]
    assert {d.reason for d in b.deals} == {"expert"}


def test_commission_on_both_sides_pro_rata_for_a_partial_close() -> None:
    b = make(commission_per_lot=3.0)
    quote(b, 1.1000)
    r = b.market_order("EURUSD", "buy", 0.2)
    assert r.deals[0].commission == pytest.approx(-0.60)
    assert b.account().balance == pytest.approx(9_999.40)  # paid when the deal is made
    part = b.close_position(r.position, 0.05).deals[0]
    assert part.commission == pytest.approx(-0.15) and part.volume == 0.05
    assert b.positions()[0].volume == pytest.approx(0.15)
    assert b.positions()[0].ticket == r.position  # a partial close keeps the position
    rest = b.close_position(r.position).deals[0]
    assert rest.commission == pytest.approx(-0.45) and rest.volume == pytest.approx(0.15)
    # the price did not move: profit is the spread, 0.0002 * 100000 * 0.2 = 4.00
    assert b.account().balance == pytest.approx(10_000 - 1.20 - 4.00)


def test_swap_per_night_with_the_triple_day() -> None:
    # -5 points per lot per night: 5 * 0.00001 * 100000 * 1 lot = 5.00 USD per night
    b = make(swap_long=-5.0, swap_short=2.0, triple_swap_day=2)  # Wednesday
    quote(b, 1.1000, TUE + 12 * H)
    r = b.market_order("EURUSD", "buy", 1.0)
    quote(b, 1.1000, TUE + DAY + 12 * H)  # Wednesday 00:00: Tuesday night
    assert b.positions()[0].swap == pytest.approx(-5.00)
    assert b.account().equity == pytest.approx(10_000 - 20.00 - 5.00)  # spread 20, swap 5
    quote(b, 1.1000, TUE + 2 * DAY + 12 * H)  # Thursday 00:00: Wednesday night x3
    assert b.positions()[0].swap == pytest.approx(-20.00)
    out = b.close_position(r.position).deals[0]
    assert out.swap == pytest.approx(-20.00)  # MT5 shows the swap on the out deal
    assert b.account().balance == pytest.approx(10_000 - 20.00 - 20.00)


def test_swap_over_the_weekend_is_one_night_and_zero_when_swap_free() -> None:
    fri = TUE + 3 * DAY
    assert weekday(TUE) == 1 and weekday(fri) == 4
    for free, expect in ((False, 2.00), (True, 0.0)):
        b = make(AccountSpec(swap_free=free), swap_long=-5.0, swap_short=2.0)
        quote(b, 1.1000, fri + 12 * H)
        b.market_order("EURUSD", "sell", 1.0)
        # Saturday 00:00 charges Friday night; Sunday and Monday 00:00 charge nothing
        quote(b, 1.1000, fri + 3 * DAY + 12 * H)
        assert b.positions()[0].swap == pytest.approx(expect)


def test_partial_close_takes_its_share_of_the_swap() -> None:
    b = make(swap_long=-5.0)
    quote(b, 1.1000, TUE + 12 * H)
    r = b.market_order("EURUSD", "buy", 1.0)
    quote(b, 1.1000, TUE + DAY + 12 * H)
    part = b.close_position(r.position, 0.4).deals[0]
    assert part.swap == pytest.approx(-2.00)
    assert b.positions()[0].swap == pytest.approx(-3.00)


# ---------------------------------------------------------------- margin


def test_an_order_without_free_margin_is_refused() -> None:
    b = make(AccountSpec(balance=1000.0, leverage=100))
    quote(b, 1.1000)
    # margin = 1.1002 * 100000 * lots / 100: 1100.20 for 1 lot > 1000 free
    r = b.market_order("EURUSD", "buy", 1.0)
    assert r.retcode == RETCODE_NO_MONEY and r.deals == () and b.positions() == []
    assert b.market_order("EURUSD", "buy", 0.9).ok  # margin 990.18
    acc = b.account()
    assert acc.margin == pytest.approx(990.18)
    assert acc.equity == pytest.approx(982.00)  # spread: 0.0002 * 90000 = 18
    assert acc.free_margin == pytest.approx(-8.18)
    assert acc.margin_level == pytest.approx(982.00 / 990.18 * 100)
    assert acc.margin_call  # below 100 %
    assert b.market_order("EURUSD", "buy", 0.01).retcode == RETCODE_NO_MONEY


def test_margin_rate_scales_the_margin() -> None:
    b = make(AccountSpec(leverage=100), margin_rate=0.5)
    quote(b, 1.1000)
    b.market_order("EURUSD", "buy", 1.0)
    assert b.account().margin == pytest.approx(550.10)  # 110020 / 100 * 0.5


def test_stop_out_closes_the_largest_loss_first_until_above_the_level() -> None:
    b = make(AccountSpec(balance=1000.0, leverage=100, stop_out_pct=50.0))
    quote(b, 1.1000)
    first = b.market_order("EURUSD", "buy", 0.4)  # at 1.1002, margin 440.08
    quote(b, 1.1050, TUE + 13 * H)
    second = b.market_order("EURUSD", "buy", 0.4)  # at 1.1052, margin 442.08
    assert b.account().margin == pytest.approx(882.16)
    # bid 1.0950: -208 and -408, equity 384, level 384 / 882.16 = 43.5 % <= 50 %
    deals = b.set_quote("EURUSD", 1.0950, 1.0952, TUE + 14 * H)
    assert [(d.position, d.reason, d.price) for d in deals] == [(second.position, "so", 1.095)]
    assert deals[0].profit == pytest.approx(-408.00)
    acc = b.account()  # 592 - 208 = 384 over 440.08: 87.3 %, above the stop-out
    assert acc.equity == pytest.approx(384.00) and acc.margin_call
    assert [p.ticket for p in b.positions()] == [first.position]


def test_stop_out_repeats_while_the_level_stays_at_or_below() -> None:
    b = make(AccountSpec(balance=1000.0, leverage=100, stop_out_pct=50.0))
    quote(b, 1.1000)
    first = b.market_order("EURUSD", "buy", 0.4)
    quote(b, 1.1050, TUE + 13 * H)
    second = b.market_order("EURUSD", "buy", 0.4)
    # bid 1.0900: -408 and -608, equity -16: both go, the larger loss first
    deals = b.set_quote("EURUSD", 1.0900, 1.0902, TUE + 14 * H)
    assert [(d.position, d.profit) for d in deals] == [
        (second.position, pytest.approx(-608.00)),
        (first.position, pytest.approx(-408.00)),
    ]
    assert b.positions() == [] and b.account().balance == pytest.approx(-16.00)


# ---------------------------------------------------------------- order checks


def test_volume_must_be_within_the_limits_and_on_the_step() -> None:
    b = make()
    quote(b, 1.1000)
    for bad in (0.005, 0.015, 100.01, 0.0, -1.0, float("nan")):
        assert b.market_order("EURUSD", "buy", bad).retcode == RETCODE_INVALID_VOLUME, bad
    r = b.market_order("EURUSD", "buy", 0.03)
    assert r.ok
    assert b.close_position(r.position, 0.015).retcode == RETCODE_INVALID_VOLUME
    assert b.close_position(r.position, 0.005).retcode == RETCODE_INVALID_VOLUME
    assert b.market_order("EURUSD", "buy", 100.0).retcode == RETCODE_NO_MONEY  # valid volume


def test_stops_must_be_on_the_right_side_and_beyond_the_stops_level() -> None:
    b = make(stops_level=100)  # 0.00100 from the closing price (bid for a buy, ask for a sell)
    quote(b, 1.1000)  # ask 1.1002
    assert b.market_order("EURUSD", "buy", 0.1, sl=1.0995).retcode == RETCODE_INVALID_STOPS
    assert b.market_order("EURUSD", "buy", 0.1, sl=1.1001).retcode == RETCODE_INVALID_STOPS
    assert b.market_order("EURUSD", "buy", 0.1, tp=1.1005).retcode == RETCODE_INVALID_STOPS
    assert b.market_order("EURUSD", "sell", 0.1, sl=1.1010).retcode == RETCODE_INVALID_STOPS
    assert b.market_order("EURUSD", "sell", 0.1, tp=1.0990).ok  # ask - tp = 0.0012
    buy = b.market_order("EURUSD", "buy", 0.1, sl=1.0990, tp=1.1010)  # exactly 100 points
    assert buy.ok
    assert b.market_order("EURUSD", "sell", 0.1, sl=1.1012).ok  # ask + 100 points
    assert b.modify_position(buy.position, 1.0995, 1.1010) == RETCODE_INVALID_STOPS
    assert b.modify_position(buy.position, 1.0990, 1.1010) == RETCODE_NO_CHANGES
    assert b.modify_position(buy.position, 1.0985, 1.1010) == RETCODE_DONE
    assert b.positions()[1].sl == 1.0985
    assert b.modify_position(999, 1.0, 0.0) == RETCODE_POSITION_CLOSED
    assert b.close_position(999).retcode == RETCODE_POSITION_CLOSED


def test_freeze_level_blocks_close_and_modify_near_a_stop() -> None:
    b = make(freeze_level=50)
    quote(b, 1.1000)
    r = b.market_order("EURUSD", "buy", 0.1, sl=1.0990)
    quote(b, 1.0994, TUE + 13 * H)  # 0.0004 above the SL, inside 0.0005
    assert b.modify_position(r.position, 1.0980, 0.0) == RETCODE_FROZEN
    assert b.close_position(r.position).retcode == RETCODE_FROZEN


def test_unknown_symbol_bad_side_and_no_quote() -> None:
    b = make()
    assert b.market_order("GBPUSD", "buy", 0.1).retcode == RETCODE_INVALID
    assert b.market_order("EURUSD", "buy", 0.1).retcode == RETCODE_PRICE_OFF
    quote(b, 1.1)
    assert b.market_order("EURUSD", "long", 0.1).retcode == RETCODE_INVALID  # type: ignore[arg-type]


# ---------------------------------------------------------------- SL/TP inside a bar


def bar(t: int, o: float, h: float, lo: float, c: float, spread: float = 2) -> list[float]:
    return [t, o, h, lo, c, 100, spread]


def test_a_bar_touching_both_sl_and_tp_fills_the_sl() -> None:
    b = make()
    quote(b, 1.1000)  # ask 1.1002
    buy = b.market_order("EURUSD", "buy", 0.1, sl=1.0980, tp=1.1030)
    sell = b.market_order("EURUSD", "sell", 0.1, sl=1.1030, tp=1.0980)  # at 1.1000
    deals = b.process_bar(
        "EURUSD", bar(TUE + 13 * H, 1.1000, 1.1040, 1.0970, 1.1010), bar_close_time=TUE + 14 * H
    )
    got = {d.position: (d.reason, d.price, d.profit) for d in deals}
    assert got[buy.position] == ("sl", 1.098, pytest.approx(-22.00))  # (1.0980 - 1.1002) * 10000
    assert got[sell.position] == ("sl", 1.103, pytest.approx(-30.00))  # (1.1000 - 1.1030) * 10000
    assert deals[0].comment == "[sl 1.09800]"


def test_a_stop_crossed_inside_the_bar_fills_at_the_level() -> None:
    b = make()
    quote(b, 1.1000)
    buy = b.market_order("EURUSD", "buy", 0.1, sl=1.0980, tp=1.1030)
    deals = b.process_bar(
        "EURUSD", bar(TUE + 13 * H, 1.1000, 1.1010, 1.0975, 1.1005), bar_close_time=TUE + 14 * H
    )
    assert [(d.position, d.reason, d.price) for d in deals] == [(buy.position, "sl", 1.098)]
    b2 = make()
    quote(b2, 1.1000)
    b2.market_order("EURUSD", "buy", 0.1, sl=1.0980, tp=1.1030)
    deals = b2.process_bar(
        "EURUSD", bar(TUE + 13 * H, 1.1000, 1.1035, 1.0990, 1.1020), bar_close_time=TUE + 14 * H
    )
    assert [(d.reason, d.price, d.profit) for d in deals] == [("tp", 1.103, pytest.approx(28.0))]
    assert deals[0].time == TUE + 13 * H + 2400  # the second extreme, 2/3 into the bar


def test_a_sell_stop_uses_the_ask_path_with_the_bar_spread() -> None:
    b = make()
    quote(b, 1.1000)
    sell = b.market_order("EURUSD", "sell", 0.1, sl=1.1030)
    # high 1.10298 + 2 points of spread = ask 1.10300: the stop is reached
    deals = b.process_bar(
        "EURUSD", bar(TUE + 13 * H, 1.1000, 1.10298, 1.0995, 1.1010), bar_close_time=TUE + 14 * H
    )
    assert [(d.position, d.reason, d.price) for d in deals] == [(sell.position, "sl", 1.103)]
    b2 = make(spread_points=1)  # a fixed spread replaces the bar's: ask 1.10299, no fill
    quote(b2, 1.1000)
    b2.market_order("EURUSD", "sell", 0.1, sl=1.1030)
    assert (
        b2.process_bar(
            "EURUSD",
            bar(TUE + 13 * H, 1.1000, 1.10298, 1.0995, 1.1010),
            bar_close_time=TUE + 14 * H,
        )
        == []
    )
    assert b2.quote("EURUSD").ask == 1.10101  # the close, with 1 point  # type: ignore[union-attr]


def test_a_gap_through_a_stop_fills_at_the_open() -> None:
    b = make()
    quote(b, 1.1000)
    buy = b.market_order("EURUSD", "buy", 0.1, sl=1.0980, tp=1.1030)
    deals = b.process_bar(
        "EURUSD", bar(TUE + DAY, 1.0950, 1.0990, 1.0940, 1.0960), bar_close_time=TUE + DAY + H
    )
    assert [(d.position, d.reason, d.price) for d in deals] == [(buy.position, "sl", 1.095)]
    assert deals[0].profit == pytest.approx(-52.00)  # worse than the stop's -22
    b2 = make()
    quote(b2, 1.1000)
    b2.market_order("EURUSD", "buy", 0.1, sl=1.0980, tp=1.1030)
    deals = b2.process_bar(
        "EURUSD", bar(TUE + DAY, 1.1060, 1.1070, 1.1050, 1.1065), bar_close_time=TUE + DAY + H
    )
    assert [(d.reason, d.price, d.profit) for d in deals] == [("tp", 1.106, pytest.approx(58.0))]
    b3 = make()
    quote(b3, 1.1000)
    b3.market_order("EURUSD", "sell", 0.1, sl=1.1030)
    deals = b3.process_bar(
        "EURUSD", bar(TUE + DAY, 1.1050, 1.1060, 1.1040, 1.1055), bar_close_time=TUE + DAY + H
    )
    assert [(d.reason, d.price) for d in deals] == [("sl", 1.10502)]  # the open's ask


def test_the_bar_path_visits_the_adverse_extreme_first() -> None:
    seen: list[tuple[float, float, int]] = []
    b = make()
    quote(b, 1.1000)
    b.market_order("EURUSD", "sell", 0.1)
    b.process_bar(
        "EURUSD",
        bar(TUE + 13 * H, 1.1000, 1.1010, 1.0990, 1.1005),
        bar_close_time=TUE + 14 * H,
        on_point=lambda s, bid, ask, t: seen.append((bid, ask, t)),
    )
    t0 = TUE + 13 * H
    assert seen == [
        (1.1, 1.10002, t0),
        (1.101, 1.10102, t0 + 1200),  # short: the high first
        (1.099, 1.09902, t0 + 2400),
        (1.1005, 1.10052, t0 + 3599),
    ]


# ---------------------------------------------------------------- netting and hedging


def test_netting_adds_reduces_and_reverses_one_position() -> None:
    b = make(AccountSpec(mode="netting"))
    quote(b, 1.1000)
    first = b.market_order("EURUSD", "buy", 0.1, sl=1.0950)  # at 1.1002
    quote(b, 1.1010, TUE + 13 * H)  # ask 1.1012
    add = b.market_order("EURUSD", "buy", 0.3)
    assert add.position == first.position and add.deals[0].entry == "in"
    (p,) = b.positions()
    assert p.volume == pytest.approx(0.4) and p.sl == 1.095  # stops kept when none are given
    assert p.price_open == pytest.approx(1.10095)  # (1.1002 * 0.1 + 1.1012 * 0.3) / 0.4
    red = b.market_order("EURUSD", "sell", 0.1).deals[0]
    assert (red.entry, red.position, red.price) == ("out", first.position, 1.101)
    assert red.profit == pytest.approx(0.50)  # (1.1010 - 1.10095) * 100000 * 0.1
    rev = b.market_order("EURUSD", "sell", 0.5, sl=1.1050).deals[0]
    assert (rev.entry, rev.volume, rev.position) == ("inout", 0.5, first.position)
    assert rev.profit == pytest.approx(1.50)  # the 0.3 closed
    (p,) = b.positions()
    assert (p.side, p.volume, p.price_open, p.sl, p.ticket) == (
        "sell",
        pytest.approx(0.2),
        1.101,
        1.105,
        first.position,
    )
    out = b.market_order("EURUSD", "buy", 0.2).deals[0]
    assert out.entry == "out" and out.profit == pytest.approx(-4.00)  # (1.1010 - 1.1012) * 20000
    assert b.positions() == []
    assert b.account().balance == pytest.approx(10_000 + 0.50 + 1.50 - 4.00)


def test_hedging_opens_a_position_per_order() -> None:
    b = make(AccountSpec(mode="hedging"))
    quote(b, 1.1000)
    r1 = b.market_order("EURUSD", "buy", 0.1)
    r2 = b.market_order("EURUSD", "buy", 0.3)
    r3 = b.market_order("EURUSD", "sell", 0.1)
    assert [p.ticket for p in b.positions()] == [r1.position, r2.position, r3.position]
    assert [d.entry for d in b.deals] == ["in", "in", "in"]
    assert [(p.side, p.volume) for p in b.positions("EURUSD")] == [
        ("buy", 0.1),
        ("buy", 0.3),
        ("sell", 0.1),
    ]


def test_netting_reduce_margin_and_reverse_margin() -> None:
    b = make(AccountSpec(mode="netting", balance=1000.0, leverage=100))
    quote(b, 1.1000)
    assert b.market_order("EURUSD", "buy", 0.5).ok  # margin 550.10
    assert b.market_order("EURUSD", "sell", 0.5).ok  # a close needs no margin
    assert b.market_order("EURUSD", "buy", 0.5).ok
    # a reversal to 1.5 sell needs 1.5 * 1100 = 1650 - 550.10 released > free margin
    assert b.market_order("EURUSD", "sell", 2.0).retcode == RETCODE_NO_MONEY


# ---------------------------------------------------------------- views and the end


def test_views_convert_to_the_protocol_and_close_all_ends_the_run() -> None:
    b = make(swap_long=-5.0)
    quote(b, 1.1000, TUE + 12 * H)
    r = b.market_order("EURUSD", "buy", 0.1, sl=1.0950, tp=1.1100, comment="sc:abc")
    quote(b, 1.1010, TUE + DAY + H)
    (p,) = b.positions()
    assert p.profit == pytest.approx(8.00) and p.swap == pytest.approx(-0.50)
    assert p.to_protocol() == Position(
        ticket=r.position,
        symbol="EURUSD",
        side="buy",
        volume=0.1,
        price_open=1.1002,
        sl=1.095,
        tp=1.11,
        profit=8.0,
        swap=-0.5,
        time=TUE + 12 * H,
        comment="sc:abc",
    )
    acc = b.account()
    assert acc.floating == pytest.approx(7.50) and acc.equity == pytest.approx(10_007.50)
    assert acc.notional == pytest.approx(11_010.0)  # 1.1010 * 100000 * 0.1
    assert acc.to_protocol() == AccountSnapshot(
        balance=10_000.0, equity=10_007.5, margin=110.02, free_margin=9897.48
    )
    deals = b.close_all(TUE + DAY + 2 * H)
    assert [(d.reason, d.entry, d.price, d.time) for d in deals] == [
        ("end", "out", 1.101, TUE + DAY + 2 * H)
    ]
    assert b.account().balance == pytest.approx(10_007.50)
    assert b.account().margin_level == 0.0


def test_a_usdjpy_profit_is_converted_at_the_closing_rate() -> None:
    from sidecar.backtest.symbols import preset

    b = Broker(AccountSpec(), {"USDJPY": preset("USDJPY")})  # type: ignore[dict-item]
    b.set_quote("USDJPY", 150.000, 150.000, TUE + 12 * H)
    r = b.market_order("USDJPY", "buy", 1.0)
    b.set_quote("USDJPY", 151.500, 151.500, TUE + 13 * H)
    out = b.close_position(r.position).deals[0]
    # 1.5 yen x 100,000 yen per lot, converted to USD at 151.5: MT5's profit in a USD account
    assert out.profit == pytest.approx(round(1.5 * 100_000 / 151.5, 2))
