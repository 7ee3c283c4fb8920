"""`sidecar.backtest.metrics.summarize` against numbers recomputed independently in the test:
trade statistics from a hand-made trade list, Sharpe/Sortino/drawdown from a hand-made equity
series (by hand and with the `statistics` module), and the degenerate runs."""

from __future__ import annotations

import itertools
import json
import math
import statistics

import pytest

from sidecar.backtest.metrics import mask_secrets, summarize
from sidecar.backtest.model import (
    AccountSpec,
    BacktestResult,
    DecisionStats,
    EquityPoint,
    InstrumentSpec,
    Span,
    TradeRecord,
)
from sidecar.protocol import SymbolSpec

D0 = 1_704_067_200  # 2024-01-01 00:00 UTC
H = 3600
DAY = 86_400


def t(day: int, hour: float) -> int:
    """Time on day `day` (1-based) at `hour` UTC."""
    return D0 + (day - 1) * DAY + int(hour * H)


def spec(name: str) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=SymbolSpec(
            name=name,
            digits=5,
            point=0.00001,
            tick_size=0.00001,
            tick_value=1.0,
            contract_size=100_000,
            volume_min=0.01,
            volume_step=0.01,
            volume_max=100.0,
        )
    )


def trade(
    pos: int,
    sym: str,
    side: str,
    entry: int,
    exit_: int,
    profit: float,
    commission: float = 0.0,
    swap: float = 0.0,
    reason: str = "tp",
) -> TradeRecord:
    return TradeRecord(
        position=pos,
        symbol=sym,
        side=side,  # type: ignore[arg-type]
        volume=0.1,
        entry_time=entry,
        entry_price=1.1,
        exit_time=exit_,
        exit_price=1.1,
        sl=1.09,
        tp=1.12,
        profit=profit,
        commission=commission,
        swap=swap,
        exit_reason=reason,
        signal_id=f"s{pos}",
        reasons=("SIGNAL_SMA_CROSS side=" + side,),
    )


def point(time: int, equity: float, leverage: float = 0.0, mode: str = "active") -> EquityPoint:
    return EquityPoint(
        time=time, balance=equity, equity=equity, margin=0.0, mode=mode, leverage=leverage
    )


def result(
    equity: list[EquityPoint],
    trades: list[TradeRecord] | None = None,
    *,
    start: int = D0,
    end: int | None = None,
    decisions: DecisionStats | None = None,
    modes: list[Span] | None = None,
    config: dict | None = None,
) -> BacktestResult:
    return BacktestResult(
        account=AccountSpec(balance=10_000.0, leverage=500),
        instruments={"EURUSD": spec("EURUSD"), "GBPUSD": spec("GBPUSD")},
        timeframe="H1",
        start=start,
        end=end if end is not None else (equity[-1].time if equity else start),
        bars=len(equity),
        config=config if config is not None else {"strategy": {"name": "sma_cross"}},
        equity=equity,
        trades=trades or [],
        deals=[],
        modes=modes or [],
        blackouts=[],
        decisions=decisions or DecisionStats(),
    )


# --- the hand-made equity series ----------------------------------------------------------
# initial 10 000; day 1 peaks at 10 300 and closes 10 100; day 2 has no bars; day 3 troughs at
# 9 500 and closes 9 700; day 4 is back above the peak at 15:00 and closes 10 400; day 5: 10 350.
EQUITY = [
    point(t(1, 1), 10_000, 50),
    point(t(1, 12), 10_300, 100),
    point(t(1, 23), 10_100, 0),
    point(t(3, 2), 9_800, 200),
    point(t(3, 10), 9_500, 300),
    point(t(3, 20), 9_700, 0),
    point(t(4, 5), 10_000, 0),
    point(t(4, 15), 10_400, 0),
    point(t(4, 22), 10_400, 0),
    point(t(5, 3), 10_350, 150),
]
DAY_CLOSES = [10_000, 10_100, 9_700, 10_400, 10_350]  # the initial equity, then each day's close

# --- the hand-made trade list (given out of order) -----------------------------------------
TRADES = [
    trade(7, "GBPUSD", "sell", t(4, 1), t(4, 3), 200.0, -7.0, 1.5),
    trade(1, "EURUSD", "buy", t(1, 1), t(1, 5), 120.0, -7.0, 0.0),
    trade(3, "GBPUSD", "buy", t(2, 10), t(2, 12), -30.0, -3.5, -0.25, "sl"),
    trade(2, "EURUSD", "sell", t(1, 4), t(1, 8), -50.0, -7.0, 0.0, "sl"),
    trade(5, "EURUSD", "sell", t(3, 0), t(3, 6), 0.0, -3.5, 0.0, "expert"),
    trade(4, "GBPUSD", "buy", t(2, 13), t(2, 14), -20.0, -3.5, 0.0, "sl"),
    trade(8, "EURUSD", "buy", t(4, 2), t(4, 5), 40.0, -7.0, -1.0, "end"),
    trade(6, "EURUSD", "buy", t(3, 7), t(3, 9), -10.0, -3.5, 0.0, "sl"),
]


def no_nan(obj: object) -> str:
    return json.dumps(obj, allow_nan=False)


def test_trade_statistics_recomputed_independently() -> None:
    s = summarize(result(EQUITY, TRADES))
    tr = s["trades"]
    profits = [x.profit for x in TRADES]
    wins = [p for p in profits if p > 0]
    losses = [p for p in profits if p < 0]
    assert tr["count"] == len(TRADES) == 8
    assert tr["wins"] == len(wins) == 3
    assert tr["losses"] == len(losses) == 4
    assert tr["breakeven"] == 1
    assert tr["long"] == 5 and tr["short"] == 3
    assert tr["win_rate_pct"] == pytest.approx(100 * 3 / 8)
    assert tr["gross_profit"] == pytest.approx(sum(wins)) == 360
    assert tr["gross_loss"] == pytest.approx(sum(losses)) == -110
    assert tr["net_profit"] == pytest.approx(250)
    assert tr["avg_win"] == pytest.approx(120)
    assert tr["avg_loss"] == pytest.approx(-27.5)
    assert tr["largest_win"] == 200 and tr["largest_loss"] == -50
    assert tr["payoff_ratio"] == pytest.approx((360 / 3) / (110 / 4), abs=1e-4)
    assert tr["profit_factor"] == pytest.approx(360 / 110, abs=1e-4)
    assert tr["expectancy"] == pytest.approx(250 / 8)
    # by exit time: + - - - 0 - + +  → 3 losses in a row; a break-even trade ends a streak
    assert tr["longest_losing_streak"] == 3
    assert tr["longest_winning_streak"] == 2
    durations_h = [(x.exit_time - x.entry_time) / H for x in TRADES]
    assert tr["avg_duration_hours"] == pytest.approx(sum(durations_h) / 8, abs=0.01)
    assert tr["commission"] == pytest.approx(sum(x.commission for x in TRADES)) == -42
    assert tr["swap"] == pytest.approx(0.25)
    assert s["costs"] == {"commission": -42.0, "swap": 0.25}
    assert tr["by_exit_reason"] == {"sl": 4, "tp": 2, "end": 1, "expert": 1}
    assert list(tr["by_exit_reason"]) == ["sl", "tp", "end", "expert"]
    assert tr["by_symbol"] == {
        "EURUSD": {"trades": 5, "net_profit": 100.0, "win_rate_pct": 40.0},
        "GBPUSD": {
            "trades": 3,
            "net_profit": 150.0,
            "win_rate_pct": pytest.approx(100 / 3, abs=1e-3),
        },
    }

    # Exposure: hours with at least one position open (all times are whole hours), union.
    covered: set[int] = set()
    for x in TRADES:
        covered.update(range(x.entry_time, x.exit_time, H))
    run = t(5, 3) - D0
    assert len(covered) == 22  # 01-08 d1, 10-12 + 13-14 d2, 00-06 + 07-09 d3, 01-05 d4
    assert s["exposure"]["exposure_pct"] == pytest.approx(len(covered) * H / run * 100, abs=1e-3)


def test_leverage_over_points_with_positions() -> None:
    s = summarize(result(EQUITY, TRADES))
    used = [p.leverage for p in EQUITY if p.leverage > 0]
    assert s["exposure"]["avg_leverage"] == pytest.approx(sum(used) / len(used), abs=0.01)
    assert s["exposure"]["max_leverage"] == 300


def test_returns_sharpe_sortino_drawdown_by_hand() -> None:
    s = summarize(result(EQUITY, TRADES))
    r = s["returns"]
    assert r["initial_equity"] == 10_000 and r["final_equity"] == 10_350
    assert r["net_profit"] == 350 and r["total_return_pct"] == pytest.approx(3.5)

    # Daily simple returns of end-of-day equity, days with bars only (day 2 has none).
    rets = [b / a - 1 for a, b in itertools.pairwise(DAY_CLOSES)]
    assert rets[0] == pytest.approx(0.01) and rets[1] == pytest.approx(-400 / 10_100)
    assert s["period"]["days_with_bars"] == 4
    sharpe = statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(252)
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in rets) / len(rets))
    sortino = statistics.mean(rets) / downside * math.sqrt(252)
    assert r["sharpe"] == pytest.approx(sharpe, abs=1e-4)
    assert r["sortino"] == pytest.approx(sortino, abs=1e-4)
    assert r["best_day_pct"] == pytest.approx(max(rets) * 100, abs=1e-3)
    assert r["worst_day_pct"] == pytest.approx(min(rets) * 100, abs=1e-3)

    # Max drawdown: 10 300 (day 1 12:00) → 9 500 (day 3 10:00), back at 10 400 on day 4 15:00.
    dd = s["drawdown"]
    assert dd["max_pct"] == pytest.approx(800 / 10_300 * 100, abs=1e-3)
    assert dd["max_money"] == 800
    assert dd["peak_time"] == "2024-01-01T12:00:00Z"
    assert dd["trough_time"] == "2024-01-03T10:00:00Z"
    assert dd["recovery_time"] == "2024-01-04T15:00:00Z"
    assert dd["recovered"] is True
    assert dd["duration_days"] == pytest.approx(3 + 3 / 24, abs=1e-3)
    assert dd["longest_days"] == pytest.approx(3 + 3 / 24, abs=1e-3)

    years = (t(5, 3) - D0) / (365.25 * DAY)
    cagr = ((10_350 / 10_000) ** (1 / years) - 1) * 100
    assert r["cagr_pct"] == pytest.approx(cagr, rel=1e-6)
    assert r["calmar"] == pytest.approx(cagr / (800 / 10_300 * 100), rel=1e-4)
    no_nan(s)


def test_unrecovered_drawdown_runs_to_the_end() -> None:
    eq = [point(t(1, 1), 10_500), point(t(2, 1), 9_450), point(t(3, 1), 10_000)]
    s = summarize(result(eq, end=t(4, 1)))
    dd = s["drawdown"]
    assert dd["max_pct"] == pytest.approx(10.0)
    assert dd["max_money"] == 1050
    assert dd["recovery_time"] is None and dd["recovered"] is False
    assert dd["duration_days"] == pytest.approx(3.0)  # peak day 1 01:00 → end day 4 01:00
    assert dd["longest_days"] == pytest.approx(3.0)


def test_drawdown_from_the_initial_equity() -> None:
    """The high-water mark starts at the initial balance, before the first point."""
    eq = [point(t(1, 1), 9_000), point(t(1, 2), 10_000), point(t(1, 3), 10_001)]
    dd = summarize(result(eq))["drawdown"]
    assert dd["max_pct"] == pytest.approx(10.0)
    assert dd["peak_time"] == "2024-01-01T00:00:00Z"  # the run's start
    assert dd["recovery_time"] == "2024-01-01T02:00:00Z"


def test_monthly_returns_compound_to_the_year() -> None:
    jan, feb, mar = D0 + 5 * DAY, D0 + 40 * DAY, D0 + 70 * DAY
    dec = 1_735_603_200  # 2024-12-31 00:00
    jan25 = dec + 10 * DAY
    eq = [
        point(jan, 10_200),
        point(jan + H, 10_500),  # January closes 10 500: +5 %
        point(feb, 9_975),  # February: -5 %
        point(mar, 10_972.5),  # March: +10 %
        point(dec, 10_972.5),  # December: 0 %
        point(jan25, 12_069.75),  # 2025 January: +10 %
    ]
    m = summarize(result(eq, start=jan))["monthly_returns"]
    assert list(m) == ["2024", "2025"]
    assert m["2024"]["months"][:3] == [pytest.approx(5.0), pytest.approx(-5.0), pytest.approx(10.0)]
    assert m["2024"]["months"][3:11] == [None] * 8
    assert m["2024"]["months"][11] == 0.0
    assert m["2024"]["year"] == pytest.approx((1.05 * 0.95 * 1.10 - 1) * 100, abs=1e-3)
    assert m["2025"]["months"][0] == pytest.approx(10.0)
    assert m["2025"]["year"] == pytest.approx(10.0)


def test_decisions_and_modes() -> None:
    decisions = DecisionStats(
        ticks=1000,
        signals=40,
        opened=8,
        refused={"NEWS_BLACKOUT": 5, "RISK_COOLDOWN": 12, "MODE_HALTED": 5},
        guard_refused={"GUARD_MAX_LEVERAGE": 2},
        actions={"hold": 980, "open": 8, "close": 12},
    )
    modes = [Span(t(2, 0), t(2, 12), "reducing drawdown=12.1%"), Span(t(3, 0), t(3, 6), "halted")]
    s = summarize(result(EQUITY, TRADES, decisions=decisions, modes=modes))
    d = s["decisions"]
    assert d["signals"] == 40 and d["opened"] == 8 and d["taken_pct"] == 20.0
    # sorted by count, then name
    assert list(d["refused"].items()) == [
        ("RISK_COOLDOWN", 12),
        ("MODE_HALTED", 5),
        ("NEWS_BLACKOUT", 5),
    ]
    assert d["refused_total"] == 22
    assert d["guard_refused"] == {"GUARD_MAX_LEVERAGE": 2} and d["guard_refused_total"] == 2
    assert list(d["actions"]) == ["hold", "close", "open"]
    run = t(5, 3) - D0
    # mode_seconds not filled by the runner: derived from the spans
    assert s["modes"]["reducing"]["seconds"] == 12 * H
    assert s["modes"]["halted"]["seconds"] == 6 * H
    assert s["modes"]["active"]["seconds"] == run - 18 * H
    assert list(s["modes"]) == ["active", "reducing", "halted"]
    assert s["modes"]["halted"]["pct"] == pytest.approx(6 * H / run * 100, abs=1e-3)

    given = DecisionStats(mode_seconds={"halted": 60, "active": 100})
    s2 = summarize(result(EQUITY, decisions=given, modes=modes))
    assert s2["modes"] == {
        "active": {"seconds": 100, "pct": pytest.approx(100 / run * 100, abs=1e-3)},
        "halted": {"seconds": 60, "pct": pytest.approx(60 / run * 100, abs=1e-3)},
    }


def test_no_trades_no_points() -> None:
    s = summarize(result([], [], end=D0))
    no_nan(s)
    assert s["trades"]["count"] == 0
    assert s["trades"]["win_rate_pct"] is None
    assert s["trades"]["profit_factor"] is None and s["trades"]["expectancy"] is None
    assert s["returns"]["final_equity"] == 10_000 and s["returns"]["net_profit"] == 0
    assert s["returns"]["sharpe"] is None and s["returns"]["cagr_pct"] is None
    assert s["drawdown"]["max_pct"] == 0 and s["returns"]["calmar"] is None
    assert s["exposure"] == {"exposure_pct": None, "avg_leverage": None, "max_leverage": None}
    assert s["decisions"]["taken_pct"] is None
    assert s["monthly_returns"] == {}
    assert any("no trades" in n for n in s["notes"])


def test_all_wins() -> None:
    trades = [trade(i, "EURUSD", "buy", t(1, i), t(1, i + 1), 10.0 * i) for i in range(1, 4)]
    s = summarize(result(EQUITY, trades))
    no_nan(s)
    tr = s["trades"]
    assert tr["wins"] == 3 and tr["losses"] == 0 and tr["win_rate_pct"] == 100.0
    assert tr["profit_factor"] is None and tr["payoff_ratio"] is None
    assert tr["avg_loss"] is None and tr["largest_loss"] is None
    assert tr["longest_losing_streak"] == 0 and tr["longest_winning_streak"] == 3
    assert any("profit_factor" in n for n in s["notes"])


def test_all_losses() -> None:
    trades = [trade(i, "EURUSD", "buy", t(1, i), t(1, i + 1), -5.0) for i in range(1, 4)]
    tr = summarize(result(EQUITY, trades))["trades"]
    assert tr["profit_factor"] == 0.0 and tr["payoff_ratio"] is None
    assert tr["longest_losing_streak"] == 3


def test_one_day() -> None:
    eq = [point(t(1, h), 10_000 + 10 * h) for h in range(1, 8)]
    s = summarize(result(eq))
    no_nan(s)
    assert s["period"]["days_with_bars"] == 1
    assert s["returns"]["sharpe"] is None and s["returns"]["sortino"] is None
    assert s["returns"]["total_return_pct"] == pytest.approx(0.7)
    assert s["returns"]["cagr_pct"] is not None  # finite, extrapolated from 7 hours
    assert any("shorter than a month" in n for n in s["notes"])


def test_zero_equity_change() -> None:
    eq = [point(t(d, 12), 10_000) for d in range(1, 11)]
    s = summarize(result(eq))
    no_nan(s)
    r = s["returns"]
    assert r["net_profit"] == 0 and r["total_return_pct"] == 0 and r["cagr_pct"] == 0
    assert r["sharpe"] is None and r["sortino"] is None and r["calmar"] is None
    assert r["volatility_pct"] == 0
    assert s["drawdown"]["max_pct"] == 0 and s["drawdown"]["longest_days"] == 0


def test_no_losing_day_sortino_null() -> None:
    eq = [point(t(d, 12), 10_000 + 100 * d) for d in range(1, 6)]
    r = summarize(result(eq))["returns"]
    assert r["sharpe"] is not None and r["sharpe"] > 0
    assert r["sortino"] is None


def test_huge_growth_in_minutes_does_not_overflow() -> None:
    eq = [point(D0 + 60, 10_000), point(D0 + 120, 1_000_000)]
    s = summarize(result(eq))
    no_nan(s)
    assert s["returns"]["cagr_pct"] is None


def test_deterministic_and_json_ready() -> None:
    cfg = {
        "server": {"token": "abc", "http": "127.0.0.1:8765"},
        "feeds": {"eodhd_token": "x", "list": [{"password": "p"}]},
        "alerts": {"dingtalk_webhook": "https://x", "url": "https://h/send?access_token=zz&a=1"},
        "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 30}},
    }
    a = summarize(result(EQUITY, TRADES, config=cfg))
    b = summarize(result(EQUITY, list(reversed(TRADES)), config=cfg))
    assert no_nan(a) == no_nan(b)
    text = no_nan(a)
    for secret in ('"abc"', '"x"', '"p"', "zz"):
        assert secret not in text
    assert a["config"]["server"] == {"token": "***", "http": "127.0.0.1:8765"}
    assert a["config"]["alerts"]["url"] == "https://h/send?access_token=***&a=1"
    assert a["strategy"] == {"name": "sma_cross", "params": {"fast": 10, "slow": 30}}
    assert list(a) == [
        "version",
        "period",
        "account",
        "strategy",
        "returns",
        "drawdown",
        "trades",
        "exposure",
        "costs",
        "decisions",
        "modes",
        "breaker_spans",
        "blackouts",
        "monthly_returns",
        "config",
        "notes",
    ]


def test_mask_secrets_keeps_structure() -> None:
    assert mask_secrets({"a": {"Secret_Key": 1, "b": [1, 2.5, None]}}) == {
        "a": {"Secret_Key": "***", "b": [1, 2.5, None]}
    }
    assert mask_secrets({"x": float("nan")}) == {"x": "nan"}
