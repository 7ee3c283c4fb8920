"""Leverage regimes and effective leverage, worked by hand (DESIGN.md: 1:50-100 / 1:100-300 / 1:500)."""

from __future__ import annotations

import msgspec
import pytest
from pydantic import ValidationError

from sidecar.config import Config, LeverageConfig
from sidecar.engine import reasons as R
from sidecar.engine.decide import Decision, Engine
from sidecar.engine.kelly import estimate
from sidecar.engine.leverage import effective_leverage, fit_volume, open_notional, regime
from sidecar.engine.state import Snapshot, TradeStats
from sidecar.protocol import Position
from sidecar.testing import messages
from tests.engine.helpers import analysis, anchored, buy_signal, codes, config, make_tick, spec

EDGE = (200.0, 200.0, 200.0, -100.0, -100.0) * 10  # p = 0.6, b = 2, 50 trades: f = 0.333
NO_EDGE = (100.0, -100.0, -100.0) * 10  # p = 1/3, b = 1


def decide(
    trades: tuple[float, ...] = (),
    *,
    equity: float = 1000.0,
    hwm: float | None = None,
    positions: list | None = None,
    defensive: tuple[str, ...] = (),
    vpp: dict[str, float] | None = None,
    sl: float = 0.00001,
) -> Decision:
    snap = Snapshot(
        account=anchored(equity=equity, hwm=hwm or equity),
        symbol=spec(),
        analysis=analysis(buy_signal(sl_distance=sl)),
        trades=TradeStats(trades),
        feed_defensive=defensive,
        value_per_price=vpp or {},
    )
    tick = make_tick(equity=equity, bid=1.1, ask=1.1, positions=positions or [])
    return Engine(Config()).decide(tick, snap)


def cap_reason(d: Decision) -> str:
    return next(r for r in d.verdict.reasons if r.startswith(R.LEVERAGE_CAP))


def test_regime_table() -> None:
    risk, lev = Config().risk, Config().leverage
    est = estimate(EDGE, 10.0)
    top = anchored(equity=1000.0)
    assert regime(top, risk, lev).name == "normal"  # no journal: no edge known
    assert regime(top, risk, lev, kelly=est) == regime(top, risk, lev, kelly=est)
    assert regime(top, risk, lev, kelly=est).cap == 500
    assert regime(top, risk, lev, kelly=estimate(NO_EDGE, 10.0)).cap == 300
    below = anchored(equity=990.0, hwm=1000.0)  # 1% under the high-water mark
    assert regime(below, risk, lev, kelly=est).name == "normal"
    assert regime(anchored(equity=940.0, hwm=1000.0), risk, lev, kelly=est).cap == 100
    streak = top.evolve(loss_streak=3)
    assert regime(streak, risk, lev, kelly=est).why == ("losses>=3",)
    news = regime(top, risk, lev, ["NEWS_BLACKOUT currency=USD"], kelly=est)
    assert (news.name, news.cap) == ("defensive", 100)


def test_no_configuration_exceeds_the_hard_ceiling() -> None:
    with pytest.raises(ValidationError):
        LeverageConfig(profit=600)
    with pytest.raises(ValidationError):
        LeverageConfig(normal=400, profit=300)  # bands must be ordered


def test_effective_leverage_by_hand() -> None:
    # 2.72 lots EURUSD at 1.1 on 1,000 USD: 299,200 USD notional = 1:299.2.
    pos = msgspec.convert(messages.position(1, "EURUSD", volume=2.72, price_open=1.1), Position)
    held = open_notional([pos], {}, 1.0 / 0.00001)
    assert held == pytest.approx(299_200.0)
    assert effective_leverage(held, 1000.0) == pytest.approx(299.2)
    # Room under 1:300 for another lot at 110,000 USD: 800 USD -> 0.00727 lots -> 0.
    assert fit_volume(300, 1000.0, held, 110_000.0, 0.01) == 0.0
    assert fit_volume(500, 1000.0, held, 110_000.0, 0.01) == 1.82  # 200,800 / 110,000 = 1.825


def test_normal_regime_cuts_a_1000_usd_trade_to_fit_1_to_300() -> None:
    # The acceptance case: 1% = 10 USD; a 0.1-pip stop loses 1 USD per lot -> 10 lots, 1:1100.
    # 1:300 allows 300,000 / 110,000 = 2.727 -> 2.72 lots (1:299.2 after the cut).
    d = decide()
    assert d.verdict.leverage_cap == 300 and "regime=normal" in cap_reason(d)
    assert d.verdict.open.volume == 2.72
    cut = next(r for r in d.verdict.reasons if r.startswith(R.LEVERAGE_CUT))
    assert "volume_from=10 volume_to=2.72 cap=300 leverage=1100" in cut


def test_profit_phase_allows_1_to_500_at_the_high_water_mark_with_an_edge() -> None:
    # Kelly asks 2% = 20 USD; a 0.1-pip stop loses 1 USD per lot -> 20 lots; 1:500 fits 4.54.
    d = decide(EDGE)
    assert d.verdict.leverage_cap == 500
    assert "regime=profit" in cap_reason(d) and "kelly_f=0.3333" in cap_reason(d)
    assert d.verdict.open.volume == 4.54
    assert d.verdict.open.volume * 110_000 <= 500 * 1000.0


def test_profit_phase_needs_the_high_water_mark() -> None:
    d = decide(EDGE, equity=990.0, hwm=1000.0)
    assert d.verdict.leverage_cap == 300 and d.verdict.open.volume == 2.7  # 297,000 / 110,000


def test_defensive_regime_from_feeds_beats_the_profit_phase() -> None:
    d = decide(EDGE, defensive=("SENTIMENT_NEGATIVE score=-0.4",))
    assert d.verdict.leverage_cap == 100
    assert "why=SENTIMENT_NEGATIVE" in cap_reason(d).replace('"', "")
    assert d.verdict.open.volume == 0.9  # 100,000 / 110,000 = 0.909


def test_other_symbols_count_at_their_own_value_per_price() -> None:
    # 1 lot USDJPY at 150.00 on a USD account: 150 x (100/150)/0.001 = 100,000 USD.
    jpy = messages.position(5, "USDJPY", volume=1.0, price_open=150.0) | {"sl": 150.0}
    d = decide(positions=[jpy], vpp={"USDJPY": (100.0 / 150.0) / 0.001})
    assert d.verdict.open.volume == 1.81  # (300,000 - 100,000) / 110,000 = 1.818
    assert R.LEVERAGE_CUT in codes(d)


def test_leverage_bands_follow_the_config() -> None:
    cfg = config(leverage={"defensive": 50, "normal": 200, "profit": 400})
    snap = Snapshot(
        account=anchored(equity=1000.0),
        symbol=spec(),
        analysis=analysis(buy_signal(sl_distance=0.00001)),
        trades=TradeStats(EDGE),
    )
    d = Engine(cfg).decide(make_tick(equity=1000.0, bid=1.1, ask=1.1), snap)
    assert d.verdict.leverage_cap == 400 and d.verdict.open.volume == 3.63
