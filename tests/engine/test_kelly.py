"""Fractional Kelly sizing and the risk budget, worked by hand (docs/engine.md, "Sizing").

EURUSD, 10,000 USD equity, a 50-pip stop: one lot loses 500 USD at the stop, so 1% = 0.20 lots.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from sidecar.config import Config, ConfigError, load_config
from sidecar.engine import kelly
from sidecar.engine import reasons as R
from sidecar.engine.bars import Bars
from sidecar.engine.decide import Decision, Engine
from sidecar.engine.state import Snapshot, TradeStats
from sidecar.engine.volatility import atr_percentile, bars_needed
from tests.engine.helpers import analysis, anchored, buy_signal, codes, config, make_tick, spec


def journal(wins: int, win: float, losses: int, loss: float) -> tuple[float, ...]:
    # Interleaved, so any "last N" cut keeps the same mix.
    out: list[float] = []
    w = l_ = 0
    while w < wins or l_ < losses:
        if w * (wins + losses) <= (w + l_) * wins and w < wins:
            out.append(win)
            w += 1
        else:
            out.append(-loss)
            l_ += 1
    return tuple(out)


def decide(
    results: tuple[float, ...] = (),
    *,
    atr_pct: float | None = None,
    cfg: Config | None = None,
    equity: float = 10_000.0,
    hwm: float | None = None,
) -> Decision:
    snap = Snapshot(
        account=anchored(equity=equity, hwm=hwm or equity),
        symbol=spec(),
        analysis=replace(analysis(buy_signal(sl_distance=0.00500)), atr_pct=atr_pct),
        trades=TradeStats(results),
    )
    return Engine(cfg or Config()).decide(make_tick(equity=equity), snap)


def reason(d: Decision, code: str) -> str:
    return next(r for r in d.verdict.reasons if r.split(" ", 1)[0] == code)


# ------------------------------------------------------------------ the maths


def test_kelly_fraction_by_hand() -> None:
    assert kelly.kelly_fraction(0.6, 2.0) == pytest.approx(0.4)  # 0.6 - 0.4 / 2
    assert kelly.kelly_fraction(0.3, 1.0) == pytest.approx(-0.4)  # 0.3 - 0.7 / 1: no edge
    assert kelly.kelly_fraction(1 / 3, 2.0) == pytest.approx(0.0)  # break-even at p = 1/(1+b)
    assert kelly.kelly_fraction(0.5, math.inf) == 0.5  # never a loss: f* = p
    assert kelly.kelly_fraction(0.0, 0.0) == -1.0  # never a win


def test_journal_p_06_b_2_gives_f_04_and_half_kelly_02() -> None:
    # 30 wins of 200 USD, 20 losses of 100 USD: p = 0.6, b = 200 / 100 = 2.
    est = kelly.estimate(journal(30, 200.0, 20, 100.0), prior_trades=0.0)
    assert (est.n, est.wins, est.losses) == (50, 30, 20)
    assert est.p == pytest.approx(0.6) and est.b == pytest.approx(2.0)
    assert est.f_raw == pytest.approx(0.4) and est.f == pytest.approx(0.4)
    assert kelly.risk_pct(est, 0.5) == pytest.approx(20.0)  # half-Kelly: 0.2 of equity


def test_beta_prior_shrinks_by_n_over_n_plus_k() -> None:
    # Prior: k = 10 break-even pseudo-trades at p0 = 1/(1+b) = 1/3.
    # p~ = (30 + 10/3) / 60 = 0.5556;  f = p~ - (1 - p~)/2 = 0.3333 = 50/60 x 0.4.
    est = kelly.estimate(journal(30, 200.0, 20, 100.0), prior_trades=10.0)
    p_post = (30 + 10 / 3) / 60
    assert est.f == pytest.approx(p_post - (1 - p_post) / 2)
    assert est.f == pytest.approx(0.4 * 50 / 60)
    # The shrinkage keeps the sign of the edge and fades with the sample size.
    assert kelly.shrink(-0.4, 20, 10.0) == pytest.approx(-0.4 * 20 / 30)
    fs = [kelly.shrink(0.1, n, 10.0) for n in (5, 20, 50, 500)]
    assert fs == sorted(fs) and fs[-1] < 0.1


def test_edge_cases_without_wins_or_losses() -> None:
    all_wins = kelly.estimate((10.0,) * 20, prior_trades=10.0)
    assert all_wins.b == math.inf and all_wins.f == pytest.approx(20 / 30)
    all_losses = kelly.estimate((-10.0,) * 20, prior_trades=10.0)
    assert all_losses.b == 0.0 and not all_losses.edge
    scratch = kelly.estimate((0.0,) * 20 + (10.0,) * 20 + (-5.0,) * 20, prior_trades=0.0)
    assert scratch.p == pytest.approx(1 / 3) and scratch.b == pytest.approx(2.0)  # f = 0
    assert not scratch.edge


# ------------------------------------------------------------------ through the engine


def test_strong_edge_is_clamped_to_the_two_percent_cap() -> None:
    # f = 0.3333, half-Kelly 16.67% of equity -> clamped to 2%: 200 USD / 500 = 0.40 lots.
    d = decide(journal(30, 200.0, 20, 100.0))
    o = d.verdict.open
    assert o is not None and o.risk_pct == pytest.approx(2.0) and o.volume == 0.40
    k = reason(d, R.SIZE_KELLY)
    assert "f=0.3333 f_raw=0.4 p=0.6 b=2 n=50" in k and "risk_pct=2" in k
    assert "kelly_risk_pct=16.6667" in k


def test_no_edge_trades_at_the_minimum_or_is_refused() -> None:
    # p = 0.3, b = 1: f* = -0.4. Minimum risk 0.25% = 25 USD -> 0.05 lots.
    bad = journal(15, 100.0, 35, 100.0)
    d = decide(bad)
    assert d.verdict.open is not None and d.verdict.open.volume == 0.05
    assert "action=min" in reason(d, R.SIZE_NO_EDGE) and R.SIZE_KELLY not in codes(d)
    refused = decide(bad, cfg=config(sizing={"no_edge": "refuse"}))
    assert refused.verdict.action == "hold"
    assert "action=refuse" in reason(refused, R.SIZE_NO_EDGE)


def test_fewer_than_twenty_trades_use_the_base_risk() -> None:
    d = decide(journal(7, 200.0, 12, 100.0))  # 19 trades
    assert d.verdict.open.volume == 0.20 and d.verdict.open.risk_pct == pytest.approx(1.0)
    assert not {R.SIZE_KELLY, R.SIZE_NO_EDGE} & set(codes(d))


@pytest.mark.parametrize(
    ("wins", "losses", "f", "volume"),
    [
        # p = 0.35, b = 2: f* = 0.35 - 0.65/2 = 0.025 at every sample size.
        (7, 13, 0.025 * 20 / 30, 0.16),  # 20 trades: f = 0.01667, 0.8333% = 83.33 USD -> 0.16
        (14, 26, 0.025 * 40 / 50, 0.20),  # 40 trades: f = 0.02, 1.0% = 100 USD -> 0.20
    ],
)
def test_small_samples_shrink_toward_no_edge(
    wins: int, losses: int, f: float, volume: float
) -> None:
    d = decide(journal(wins, 200.0, losses, 100.0))
    k = reason(d, R.SIZE_KELLY)
    assert f"f={round(f, 4):.6g} " in k
    assert f"risk_pct={round(0.5 * f * 100, 4):.6g}" in k
    assert d.verdict.open.volume == volume


def test_only_the_last_kelly_trades_count() -> None:
    # 50 old losses followed by the 50-trade p = 0.6 journal: the losses are out of the window.
    d = decide(tuple([-100.0] * 50) + journal(30, 200.0, 20, 100.0))
    assert "n=50" in reason(d, R.SIZE_KELLY) and d.verdict.open.volume == 0.40


def test_kelly_can_be_switched_off() -> None:
    d = decide(journal(30, 200.0, 20, 100.0), cfg=config(sizing={"kelly_enabled": False}))
    assert d.verdict.open.volume == 0.20 and R.SIZE_KELLY not in codes(d)


@pytest.mark.parametrize(("atr_pct", "volume"), [(80.0, 0.20), (80.2, 0.10), (100.0, 0.10)])
def test_top_quintile_atr_halves_the_risk(atr_pct: float, volume: float) -> None:
    d = decide(atr_pct=atr_pct)
    assert d.verdict.open.volume == volume
    assert (R.SIZE_VOLATILITY in codes(d)) is (volume == 0.10)


def test_multipliers_multiply_and_the_product_is_clamped() -> None:
    strong = journal(30, 200.0, 20, 100.0)
    # Kelly 2% x volatility 0.5 = 1% -> 0.20 lots.
    assert decide(strong, atr_pct=95.0).verdict.open.volume == 0.20
    # No edge 0.25% x volatility 0.5 = 0.125% -> back up to the 0.25% floor -> 0.05 lots.
    d = decide(journal(15, 100.0, 35, 100.0), atr_pct=95.0)
    assert d.verdict.open.volume == 0.05
    assert "risk_from=0.125 risk_to=0.25" in reason(d, R.SIZE_CLAMPED)


def test_reducing_mode_halves_after_the_clamp() -> None:
    # 12.5% drawdown -> reducing. Kelly 2% x 0.5 = 1% of 8,750 = 87.5 USD -> 0.17 lots.
    strong = journal(30, 200.0, 20, 100.0)
    d = decide(strong, equity=8750.0, hwm=10_000.0)
    assert d.verdict.mode == "reducing" and d.verdict.open.volume == 0.17
    # At the floor the breaker still halves: 0.125% of 8,750 = 10.94 USD -> 0.02 lots.
    d = decide(journal(15, 100.0, 35, 100.0), equity=8750.0, hwm=10_000.0)
    assert d.verdict.open.volume == 0.02


def test_halted_refuses_whatever_the_journal() -> None:
    d = decide(journal(30, 200.0, 20, 100.0), equity=8500.0, hwm=10_000.0)
    assert d.verdict.mode == "halted" and d.verdict.action == "hold"


def test_sizing_config_is_validated(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[risk]\nrisk_pct = 0.2\n[sizing]\nmin_risk_pct = 0.25\nkelly_fraction = 1.5\n"
        'no_edge = "skip"\nkelly_min_trades = 60\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad, env={})
    text = str(err.value)
    for key in ("sizing.kelly_fraction", "sizing.no_edge"):
        assert key in text
    ok = tmp_path / "ok.toml"
    ok.write_text("[risk]\nrisk_pct = 0.2\n[sizing]\nmin_risk_pct = 0.25\n")
    with pytest.raises(ConfigError, match="sizing.min_risk_pct"):
        load_config(ok, env={})
    window = tmp_path / "window.toml"
    window.write_text("[sizing]\nkelly_min_trades = 60\n")
    with pytest.raises(ConfigError, match="sizing.kelly_min_trades"):
        load_config(window, env={})


# ------------------------------------------------------------------ the ATR percentile


def _bars(ranges: list[float]) -> Bars:
    rows = [[3600 * i, 1.0, 1.0 + r, 1.0, 1.0, 0, 0] for i, r in enumerate(ranges)]
    return Bars.from_rows(rows)


def test_atr_percentile_needs_a_full_window_and_ranks_the_newest_value() -> None:
    period, window = 14, 100
    need = bars_needed(period, window)
    assert need == 240
    calm = [0.001] * (need - 1)
    assert atr_percentile(_bars(calm), period, window) is None  # one bar short
    assert atr_percentile(_bars([*calm, 0.001]), period, window) == 100.0  # all equal: <= all
    assert atr_percentile(_bars([*calm, 0.010]), period, window) == 100.0
    # A rising range then a calm bar: the ATR dips below its last few values only.
    rising = [*np.linspace(0.001, 0.002, need - 1), 0.0]
    pct = atr_percentile(_bars(rising), period, window)
    assert pct is not None and 0.0 < pct < 100.0


def test_atr_percentile_does_not_depend_on_the_history_length() -> None:
    rng = np.random.default_rng(7)
    ranges = list(rng.uniform(0.0005, 0.003, 900))
    full = _bars(ranges)
    for n in (300, 600, 900):
        head = full.head(n)
        assert atr_percentile(head, 14, 100) == atr_percentile(head.tail(240), 14, 100)


def test_analyze_computes_the_percentile_once_per_bar() -> None:
    rng = np.random.default_rng(3)
    bars = _bars(list(rng.uniform(0.0005, 0.003, 600)))
    engine = Engine(config(sizing={"volatility_window": 200}))
    a = engine.analyze(bars)
    assert a.atr_pct == atr_percentile(bars, 14, 200) and a.atr_pct is not None
    assert Engine(Config()).analyze(bars).atr_pct is None  # 600 < 500 + 140 bars
