"""Fixed-fractional sizing, worked by hand for EURUSD, USDJPY and XAUUSD specs."""

from __future__ import annotations

import pytest

from sidecar.engine import reasons as R
from sidecar.engine.sizing import floor_to_step, notional_per_lot, size_position
from sidecar.testing import messages
from tests.engine.helpers import anchored, buy_signal, codes, decide, make_tick, spec


def test_eurusd_one_percent_fifty_pips_is_point_two_lots() -> None:
    # 1% of 10,000 USD = 100 USD. 50 pips = 0.00500 = 500 ticks x 1 USD = 500 USD per lot.
    size = size_position(10_000.0, 1.0, 0.00500, spec(messages.EURUSD_SPEC))
    assert size.loss_per_lot == pytest.approx(500.0)
    assert size.volume == 0.20


def test_usdjpy_on_a_usd_account() -> None:
    # 50 pips = 0.500 JPY = 500 ticks x (100/150) USD = 333.33 USD per lot; 100 / 333.33 = 0.30.
    size = size_position(10_000.0, 1.0, 0.500, spec(messages.USDJPY_SPEC))
    assert size.loss_per_lot == pytest.approx(333.3333, rel=1e-6)
    assert size.volume == 0.30


def test_xauusd_contract_of_100_ounces() -> None:
    # A 5.00 USD stop = 500 ticks x 1 USD = 500 USD per lot; 100 / 500 = 0.20 lots.
    size = size_position(10_000.0, 1.0, 5.00, spec(messages.XAUUSD_SPEC))
    assert size.volume == 0.20


def test_fresh_tick_value_from_the_tick_overrides_the_hello_spec() -> None:
    # USDJPY at 125.00: tick value 0.8 USD; loss per lot 400 -> 0.25 lots.
    size = size_position(10_000.0, 1.0, 0.500, spec(messages.USDJPY_SPEC), tick_value=0.8)
    assert size.volume == 0.25


def test_volume_is_floored_to_the_step_never_rounded_up() -> None:
    # 100 USD / (37 pips = 370 USD per lot) = 0.27027 lots.
    assert size_position(10_000.0, 1.0, 0.00370, spec()).volume == 0.27
    coarse = spec({**messages.EURUSD_SPEC, "volume_step": 0.1, "volume_min": 0.1})
    assert size_position(10_000.0, 1.0, 0.00370, coarse).volume == 0.2
    assert floor_to_step(0.3, 0.1) == 0.3  # 0.3 / 0.1 = 2.9999999999999996 must not lose a step
    assert floor_to_step(0.29999, 0.01) == 0.29


def test_below_volume_min_is_refused_not_rounded_up() -> None:
    # 1% of 100 USD = 1 USD; 50 pips cost 500 USD per lot -> 0.002 lots < 0.01.
    size = size_position(100.0, 1.0, 0.00500, spec())
    assert size.below_min and size.volume == 0.0
    d = decide(anchored(equity=100.0), make_tick(equity=100.0), buy_signal(sl_distance=0.005))
    assert d.verdict.action == "hold"
    assert R.SIZE_BELOW_MIN in codes(d)


def test_volume_is_capped_at_volume_max() -> None:
    small_max = spec({**messages.EURUSD_SPEC, "volume_max": 0.1})
    size = size_position(10_000.0, 1.0, 0.00500, small_max)
    assert size.capped and size.volume == 0.1


def test_open_verdict_is_sized_to_one_percent_with_sl_and_tp() -> None:
    d = decide(anchored(), make_tick(bid=1.10000, ask=1.10007), buy_signal(sl_distance=0.00500))
    o = d.verdict.open
    assert d.verdict.action == "open"
    assert o.volume == 0.20
    assert o.sl == pytest.approx(1.09507)  # ask - 50 pips
    assert o.tp == pytest.approx(1.11257)  # ask + 2.5 x 50 pips
    assert o.risk_pct == pytest.approx(1.0)
    assert any(r.startswith("SIZE_RISK risk_pct=1 volume=0.2") for r in d.verdict.reasons)


def test_notional_per_lot_in_account_currency() -> None:
    assert notional_per_lot(1.1, spec(messages.EURUSD_SPEC)) == pytest.approx(110_000)
    assert notional_per_lot(150.0, spec(messages.USDJPY_SPEC)) == pytest.approx(100_000)
    assert notional_per_lot(2000.0, spec(messages.XAUUSD_SPEC)) == pytest.approx(200_000)


def test_a_trade_breaching_the_leverage_cap_is_cut_to_fit() -> None:
    # 1,000 USD account, normal cap 1:300 -> at most 300,000 USD notional = 2.72 lots at 1.1.
    # A 5-pip stop at 1% risk would want 10 / 50 = 0.2 lots: fits. A 0.1-pip stop wants 20 lots.
    d = decide(
        anchored(equity=1000.0),
        make_tick(equity=1000.0, bid=1.1, ask=1.1),
        buy_signal(sl_distance=0.00001),
    )
    o = d.verdict.open
    assert o is not None and o.volume == 2.72
    assert R.LEVERAGE_CUT in codes(d)
    assert o.volume * 110_000 <= 300 * 1000.0


def test_leverage_cut_counts_open_positions_and_refuses_below_min() -> None:
    # Already 3.0 lots of EURUSD open (330,000 USD) on 1,000 USD: no room under 1:300.
    full = [messages.position(1, "GBPUSD", volume=3.0, price_open=1.1) | {"sl": 1.1}]
    d = decide(
        anchored(equity=1000.0),
        make_tick(equity=1000.0, positions=full),
        buy_signal(sl_distance=0.00001),
    )
    assert d.verdict.action == "hold"
    assert any(r.startswith(R.LEVERAGE_CUT) and "refused=1" in r for r in d.verdict.reasons)
