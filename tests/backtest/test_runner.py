"""The backtest runner: what a trader relies on when reading a report.

- no look-ahead: cutting the data at any bar changes no decision made before it;
- the summary's numbers follow from the trade list and the equity curve;
- the same inputs give byte-identical trades and summary;
- several symbols share one account, so account-level rules act across them.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from typing import Any

import pytest
from backtesting.test import EURUSD

from sidecar.backtest.data import load_backtesting_frame
from sidecar.backtest.metrics import summarize
from sidecar.backtest.model import AccountSpec, SeriesData
from sidecar.backtest.runner import Backtest, Market, RunOptions
from sidecar.backtest.symbols import resolve_instrument
from sidecar.config import load_config
from sidecar.engine.reasons import code_of
from sidecar.engine.strategies import strategy_problems
from sidecar.protocol import Tick, Verdict, encode

ACCOUNT = AccountSpec(balance=10_000.0, leverage=500, server_offset_hours=2.0)


def config(strategy: str = "sma_cross", **risk: Any) -> Any:
    overrides: dict[str, Any] = {"strategy": {"name": strategy}}
    if risk:
        overrides["risk"] = risk
    return load_config(None, env={}, overrides=overrides, extra_checks=strategy_problems)


def eurusd(bars: int | None = None) -> SeriesData:
    frame = EURUSD if bars is None else EURUSD.iloc[:bars]
    return load_backtesting_frame(frame, "EURUSD", "H1")


def run(cfg: Any, *series: SeriesData, **options: Any) -> tuple[Any, list[tuple[Tick, Verdict]]]:
    ticks: list[tuple[Tick, Verdict]] = []

    def keep(msg: Any, reply: Any) -> None:
        if isinstance(msg, Tick):
            ticks.append((msg, reply))

    markets = [Market(s, resolve_instrument(s.symbol, None)) for s in series]
    bt = Backtest(cfg, ACCOUNT, markets, RunOptions(warmup_bars=300, **options), on_reply=keep)
    return bt.run(), ticks


@pytest.mark.parametrize("strategy", ["sma_cross", "resonance"])
def test_cutting_the_data_at_any_bar_changes_no_decision_before_it(strategy: str) -> None:
    cfg = config(strategy)
    full_data = eurusd(1600)
    full, full_ticks = run(cfg, full_data)
    assert len(full.trades) >= 5
    rng = random.Random(13)
    cuts = sorted({310, 1599, *rng.sample(range(311, 1599), 8)})
    for cut in cuts:
        part = replace(full_data, rows=full_data.rows[:cut])
        _, ticks = run(cfg, part)
        assert ticks, cut
        for (msg_a, v_a), (msg_b, v_b) in zip(ticks, full_ticks, strict=False):
            assert encode(msg_a) == encode(msg_b), f"cut at {cut}: the inputs diverged"
            assert encode(v_a) == encode(v_b), f"cut at {cut}: verdict {msg_a.id} changed"


def test_the_summary_follows_from_the_trade_list_and_the_equity_curve() -> None:
    result, _ = run(config(), eurusd())
    s = summarize(result)
    trades = result.trades
    profits = [t.profit for t in trades]
    wins = [p for p in profits if p > 0]
    losses = [p for p in profits if p < 0]
    t = s["trades"]
    assert t["count"] == len(trades) > 50
    assert (t["wins"], t["losses"]) == (len(wins), len(losses))
    assert t["net_profit"] == pytest.approx(sum(profits), abs=0.01)
    assert t["gross_profit"] == pytest.approx(sum(wins), abs=0.01)
    assert t["gross_loss"] == pytest.approx(sum(losses), abs=0.01)
    assert t["win_rate_pct"] == pytest.approx(100 * len(wins) / len(trades), abs=1e-3)
    assert t["profit_factor"] == pytest.approx(sum(wins) / -sum(losses), abs=1e-4)
    assert t["payoff_ratio"] == pytest.approx(
        (sum(wins) / len(wins)) / (-sum(losses) / len(losses)), abs=1e-4
    )
    assert t["expectancy"] == pytest.approx(sum(profits) / len(trades), abs=0.01)
    streak = longest = 0
    for p in profits:
        streak = streak + 1 if p < 0 else 0
        longest = max(longest, streak)
    assert t["longest_losing_streak"] == longest
    # Money is conserved: every deal's profit, commission and swap is in the balance.
    r = s["returns"]
    assert r["final_balance"] == pytest.approx(ACCOUNT.balance + sum(profits), abs=0.01)
    assert r["final_equity"] == result.equity[-1].equity
    assert r["total_return_pct"] == pytest.approx(
        100 * (result.equity[-1].equity / ACCOUNT.balance - 1), abs=1e-3
    )
    peak, depth = ACCOUNT.balance, 0.0
    for p in result.equity:
        peak = max(peak, p.equity)
        depth = max(depth, 1 - p.equity / peak)
    assert s["drawdown"]["max_pct"] == pytest.approx(100 * depth, abs=1e-3)
    d = s["decisions"]
    assert d["opened"] == len(trades)
    assert d["ticks"] == result.bars


def test_the_same_inputs_give_byte_identical_trades_and_summary() -> None:
    a, _ = run(config("resonance"), eurusd(2500))
    b, _ = run(config("resonance"), eurusd(2500))
    assert a.trades == b.trades and a.deals == b.deals
    assert json.dumps(summarize(a), sort_keys=True) == json.dumps(summarize(b), sort_keys=True)


def _other_symbol(data: SeriesData, symbol: str, lag: int, factor: float) -> SeriesData:
    """A second symbol over the same hours with its own moves: the prices of `lag` bars later,
    scaled (GBPUSD-like)."""
    rows = [
        [r[0], *(round(x * factor, 5) for x in later[1:5]), later[5], later[6]]
        for r, later in zip(data.rows, data.rows[lag:], strict=False)
    ]
    return SeriesData(symbol, data.timeframe, rows, f"{data.source} +{lag} bars x{factor}")


def test_symbols_on_one_account_share_its_limits() -> None:
    base = eurusd(2300)
    other = _other_symbol(base, "GBPUSD", 300, 1.17)
    capped, ticks = run(config(max_positions=1), base, other)
    refused = [code_of(r) for _, v in ticks if isinstance(v, Verdict) for r in v.reasons]
    assert "RISK_MAX_POSITIONS" in refused  # one symbol's position blocked the other's entry
    assert {t.symbol for t in capped.trades} == {"EURUSD", "GBPUSD"}
    # Never two positions at once with a one-position account.
    spans = sorted((t.entry_time, t.exit_time) for t in capped.trades)
    assert all(spans[k][1] <= spans[k + 1][0] for k in range(len(spans) - 1))
    free, _ = run(config(max_positions=3), base, other)
    assert len(free.trades) > len(capped.trades)


def test_ohlc_ticks_ask_the_sidecar_at_every_price_point_of_a_bar() -> None:
    once, _ = run(config(), eurusd(900))
    four, ticks = run(config(), eurusd(900), ticks="ohlc")
    assert once.decisions.ticks == once.bars
    assert four.decisions.ticks == 4 * four.bars == len(ticks)
    # Between bar opens the sidecar sees no new bar: the extra ticks carry none.
    assert sum(1 for msg, _ in ticks if msg.bars) == four.bars


def test_several_symbols_never_move_the_clock_back() -> None:
    base = eurusd(1200)
    other = _other_symbol(base, "GBPUSD", 300, 1.17)
    result, ticks = run(config(), base, other, ticks="ohlc")
    times = [msg.time.gmt for msg, _ in ticks]
    assert times == sorted(times)
    reasons = [r for _, v in ticks if isinstance(v, Verdict) for r in v.reasons]
    assert not any(r.startswith("DATA_CLOCK_BACKWARDS") for r in reasons)
    deal_times = [d.time for d in result.deals]
    assert deal_times == sorted(deal_times)


def test_prices_with_more_decimals_than_the_symbol_are_quoted_on_its_digits() -> None:
    base = eurusd(900)
    rows = [[r[0], *(x + 0.0000049 for x in r[1:5]), r[5], 0.0] for r in base.rows]
    result, ticks = run(config(), SeriesData("EURUSD", "H1", rows, "6 decimals"))
    assert result.bars > 0
    assert all(round(msg.bid, 5) == msg.bid and msg.ask >= msg.bid for msg, _ in ticks)


def test_the_eas_inputs_are_checked_like_the_ea_checks_them(tmp_path: Any, capsys: Any) -> None:
    from sidecar.cli import main

    run_file = tmp_path / "run.toml"
    run_file.write_text(
        "[ea]\nmax_positions = 0\nmax_risk_pct = -3\nday_offset_hours = 99\n", encoding="utf-8"
    )
    data = tmp_path / "EURUSD.csv"
    data.write_text("time,open,high,low,close,volume\n1,1,1,1,1,1\n", encoding="utf-8")
    code = main(["backtest", "--run", str(run_file), "--data", str(data), "--symbol", "EURUSD"])
    err = capsys.readouterr().err
    assert code == 2
    assert "ea.max_positions must be in 1..5, got 0" in err
    assert "ea.max_risk_pct must be in (0, 2.0], got -3.0" in err
    assert "ea.day_offset_hours must be in [-23, 23], got 99.0" in err
    code = main(
        [
            "backtest",
            "--data",
            str(data),
            "--symbol",
            "EURUSD",
            "--from",
            "2017-06-01",
            "--to",
            "2017-05-01",
        ]
    )
    assert code == 2
