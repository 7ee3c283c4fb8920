"""Walk-forward: windows that never let out-of-sample see in-sample data, the in-sample choice by
a metric (named or a safe expression), the stitched out-of-sample equity, and a deflated Sharpe
ratio that exposes the best of many lucky configurations.

Summaries come from the real `metrics.summarize` of synthetic runs (and, in the last test, of
real backtests over backtesting.py's EURUSD H1); nothing of the project is mocked.
"""

from __future__ import annotations

import itertools
import json
import math
from statistics import NormalDist

import numpy as np
import pytest

from sidecar.backtest import walkforward as wf
from sidecar.backtest.metrics import TRADING_DAYS, daily_returns, summarize
from sidecar.backtest.model import AccountSpec, BacktestResult, DecisionStats, EquityPoint
from sidecar.backtest.walkforward import (
    DAY,
    MetricError,
    OosCurve,
    Window,
    deflated_sharpe,
    expected_max_sharpe,
    metric_ratio,
    metric_value,
    probabilistic_sharpe,
    return_moments,
    select,
    stitch,
    walk_forward,
    windows,
)

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC


def run_from_daily_returns(
    rets: np.ndarray, start: int = T0, balance: float = 10_000.0
) -> BacktestResult:
    """A run whose equity closes each day (at 21:00 UTC) after compounding `rets`."""
    equity = balance * np.cumprod(1.0 + np.asarray(rets, dtype=float))
    times = [start + d * DAY + 21 * 3600 for d in range(len(equity))]
    points = [
        EquityPoint(t, float(e), float(e), 0.0, "active", 0.0)
        for t, e in zip(times, equity, strict=True)
    ]
    return BacktestResult(
        account=AccountSpec(balance=balance),
        instruments={},
        timeframe="D1",
        start=start,
        end=times[-1] if times else start,
        bars=len(times),
        config={},
        equity=points,
        trades=[],
        deals=[],
        modes=[],
        blackouts=[],
        decisions=DecisionStats(),
    )


def summary_of(rets: np.ndarray, start: int = T0) -> dict:
    return summarize(run_from_daily_returns(rets, start))


# --------------------------------------------------------------------------- windows


def test_rolling_windows_tile_the_data_and_oos_starts_where_is_ends() -> None:
    # 1 year of data, 90-day in-sample, 30-day out-of-sample: (365 - 120) // 30 + 1 = 9 windows
    got = windows(T0, T0 + 365 * DAY, 90 * DAY, 30 * DAY)
    assert len(got) == 9
    assert got[0] == Window(T0, T0 + 90 * DAY, T0 + 90 * DAY, T0 + 120 * DAY)
    assert got[1] == Window(T0 + 30 * DAY, T0 + 120 * DAY, T0 + 120 * DAY, T0 + 150 * DAY)
    assert got[-1].oos_end == T0 + 360 * DAY  # the 5 days left over make no partial window
    for a, b in itertools.pairwise(got):
        assert b.oos_start == a.oos_end  # out-of-sample periods tile without gap or overlap
    for w in got:
        assert w.is_end - w.is_start == 90 * DAY
        assert w.is_end <= w.oos_start  # half-open: no instant is in both
        assert w.is_start >= T0 and w.oos_end <= T0 + 365 * DAY


def test_anchored_windows_grow_from_the_first_time() -> None:
    got = windows(T0, T0 + 200 * DAY, 60 * DAY, 20 * DAY, anchored=True)
    assert [w.is_start for w in got] == [T0] * len(got)
    assert [(w.is_end - T0) // DAY for w in got] == [60, 80, 100, 120, 140, 160, 180]
    assert all(w.oos_start == w.is_end and w.oos_end - w.oos_start == 20 * DAY for w in got)


def test_step_moves_the_windows_by_its_own_length() -> None:
    got = windows(T0, T0 + 100 * DAY, 40 * DAY, 10 * DAY, step=25 * DAY)
    assert [(w.is_start - T0) // DAY for w in got] == [0, 25, 50]
    assert [(w.oos_end - T0) // DAY for w in got] == [50, 75, 100]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"in_sample": 0}, "in_sample"),
        ({"out_of_sample": -DAY}, "out_of_sample"),
        ({"step": 0}, "step"),
        ({"in_sample": 1.5}, "in_sample"),
        ({"out_of_sample": True}, "out_of_sample"),
        ({"last_time": T0}, "last_time"),
        ({"first_time": "2024-01-01"}, "first_time"),
        ({"in_sample": 300 * DAY}, "in_sample"),  # 300 + 30 days do not fit in 100
        ({"step": 1}, "step"),  # millions of windows
    ],
)
def test_window_errors_name_the_argument(kwargs: dict, named: str) -> None:
    args = {
        "first_time": T0,
        "last_time": T0 + 100 * DAY,
        "in_sample": 30 * DAY,
        "out_of_sample": 10 * DAY,
        "step": None,
    }
    args.update(kwargs)
    step = args.pop("step")
    with pytest.raises(ValueError, match=rf"^{named}:"):
        windows(**args, step=step)


def test_durations_in_words() -> None:
    assert wf.parse_duration("90d") == 90 * DAY
    assert wf.parse_duration("2w") == 14 * DAY
    assert wf.parse_duration("6h") == 6 * 3600
    assert wf.parse_duration(3600) == 3600
    with pytest.raises(ValueError, match="^in_sample:"):
        wf.parse_duration("3 months", "in_sample")


# --------------------------------------------------------------------------- selection


def test_select_picks_the_highest_metric_of_real_summaries() -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 0.01, 250)
    summaries = [summary_of(noise + drift) for drift in (0.0, 0.002, 0.001, -0.001)]
    sharpes = [s["returns"]["sharpe"] for s in summaries]
    assert select(summaries, "sharpe") == int(np.argmax(sharpes)) == 1
    assert select(summaries, "-sharpe") == 3  # lowest Sharpe when negated
    calmars = [s["returns"]["calmar"] for s in summaries]
    assert select(summaries, "calmar") == calmars.index(max(calmars))
    # dotted paths into the nested summary work too
    assert select(summaries, "returns.sharpe") == 1


def test_a_custom_expression_is_evaluated_like_arithmetic() -> None:
    rows = [
        {"sharpe": 1.5, "max_drawdown_pct": 40.0},  # 1.5 * 0.6 = 0.90
        {"sharpe": 1.2, "max_drawdown_pct": 10.0},  # 1.2 * 0.9 = 1.08  <- best
        {"sharpe": 1.0, "max_drawdown_pct": 0.0},  # 1.00
    ]
    expr = "sharpe * (1 - max_drawdown_pct/100)"
    assert metric_value(rows[1], expr) == pytest.approx(1.08)
    assert select(rows, expr) == 1
    assert metric_value(
        rows[0], "sqrt(abs(-16)) + log(1) + max(1, sharpe, 2) - min(3, 4) ** 2"
    ) == (pytest.approx(4 + 0 + 2 - 9))
    assert metric_value(rows[0], "2 ** 3 ** 2") == 512  # right-associative, as in Python


def test_missing_values_never_win_and_ties_go_to_the_first() -> None:
    rows = [
        {"profit_factor": None},  # no losing trade: summarize leaves it null
        {"profit_factor": 1.4},
        {"profit_factor": float("nan")},
        {"profit_factor": 1.4},
        {"profit_factor": float("inf")},
    ]
    assert select(rows, "profit_factor") == 1
    assert select(list(reversed(rows)), "profit_factor") == 1  # the first 1.4 of that order
    # a formula that breaks (0 / 0, log of a negative, overflow) has no value either
    assert metric_value({"a": 0.0}, "1 / a") is None
    assert metric_value({"a": -1.0}, "log(a)") is None
    assert metric_value({"a": 1e300}, "a ** 10") is None
    assert metric_value({"a": -8.0}, "a ** 0.5") is None
    assert select([{"a": 0.0}, {"a": 2.0}], "1 / a") == 1
    with pytest.raises(ValueError, match="no configuration has a value"):
        select([{"sharpe": None}, {"sharpe": None}], "sharpe")
    with pytest.raises(ValueError, match="^summaries: empty"):
        select([], "sharpe")


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch /tmp/pwned')",
        "sharpe.__class__.__mro__",
        "open('/etc/passwd')",
        "sharpe if sharpe else 0",
        "lambda: 1",
        "sharpe > 1",
        "[sharpe][0]",
        "sharpe and calmar",
        "'text'",
        "True",
        "sharpe; calmar",
        "max(*[1, 2])",
        "abs(x=1)",
        "sharpe // 2",
        "sharpe % 2",
    ],
)
def test_unsafe_or_unsupported_expressions_are_refused(text: str) -> None:
    with pytest.raises(MetricError, match="metric"):
        metric_value({"sharpe": 1.0, "calmar": 2.0}, text)


def test_an_unknown_field_is_named() -> None:
    s = summary_of(np.full(30, 0.001))
    with pytest.raises(MetricError, match=r"unknown field 'sharp'.*sharpe"):
        metric_value(s, "sharp * 2")
    with pytest.raises(MetricError, match="unknown field 'max_dd'"):
        wf.compile_metric("calmar - max_dd", wf.FIELDS)
    assert wf.compile_metric("returns.sortino / 2", wf.FIELDS).names == ("returns.sortino",)
    assert wf.compile_metric("calmar - max_drawdown_pct", wf.FIELDS).names == (
        "calmar",
        "max_drawdown_pct",
    )
    with pytest.raises(MetricError, match="sqrt\\(\\) takes 1"):
        wf.compile_metric("sqrt(1, 2)")


def test_flat_fields_of_a_summary_use_the_short_names() -> None:
    s = summary_of(np.array([0.01, -0.02, 0.015, 0.0, 0.01] * 10))
    f = wf.flat_fields(s)
    assert f["sharpe"] == s["returns"]["sharpe"]
    assert f["max_drawdown_pct"] == s["drawdown"]["max_pct"]
    assert f["trades"] == 0 and f["profit_factor"] is None
    assert f["days_with_bars"] == 50
    assert "config.server" not in f  # the configuration is not a metric
    # a flat row from numpy arrays works the same
    row = {"sharpe": np.float64(1.25), "trades": np.int64(12), "symbol": "EURUSD"}
    assert wf.flat_fields(row) == {"sharpe": 1.25, "trades": 12.0}
    assert metric_value(row, "sharpe * trades") == 15.0


# --------------------------------------------------------------------------- stitching


def test_stitch_compounds_each_windows_returns() -> None:
    # Each window's backtest starts again at 10,000; the stitched curve carries the equity on.
    w1 = OosCurve(10_000.0, [(100, 10_500.0), (200, 11_000.0)])  # +10 %
    w2 = (10_000.0, [(300, 9_000.0), (400, 11_000.0)])  # +10 %, a plain tuple works too
    w3 = OosCurve(10_000.0, [(500, 5_000.0)])  # -50 %
    curve = stitch([w1, w2, w3], 1_000.0)
    assert [t for t, _ in curve] == [100, 200, 300, 400, 500]
    assert [round(e, 6) for _, e in curve] == [1_050.0, 1_100.0, 990.0, 1_210.0, 605.0]


def test_stitch_marks_the_window_starts_when_asked() -> None:
    curve = stitch(
        [OosCurve(50.0, [(110, 55.0)], start=100), OosCurve(80.0, [(210, 40.0)], start=200)], 10.0
    )
    assert curve == [(100, 10.0), (110, 11.0), (200, 11.0), (210, 5.5)]


def test_stitch_refuses_overlapping_or_unordered_windows() -> None:
    with pytest.raises(ValueError, match=r"oos_curves\[1\]: time 150 overlaps"):
        stitch([(1.0, [(100, 1.0), (200, 1.0)]), (1.0, [(150, 1.0)])], 1.0)
    with pytest.raises(ValueError, match=r"oos_curves\[0\]: time 90 is not increasing"):
        stitch([(1.0, [(100, 1.0), (90, 1.0)])], 1.0)
    with pytest.raises(ValueError, match=r"oos_curves\[0\]: initial equity must be positive"):
        stitch([(0.0, [(100, 1.0)])], 1.0)
    with pytest.raises(ValueError, match="^start_equity:"):
        stitch([], -5)
    assert stitch([(1.0, []), (2.0, [(5, 3.0)])], 10.0) == [(5, 15.0)]  # an empty window is skipped
    # two points at one time inside a window (a bar's close clamped to the window's end): the
    # later one holds
    assert stitch([(1.0, [(5, 2.0), (9, 3.0), (9, 4.0)])], 1.0) == [(5, 2.0), (9, 4.0)]


# --------------------------------------------------------------------------- Sharpe statistics


def test_the_papers_deflated_sharpe_example() -> None:
    """Bailey & López de Prado (2014), 'The Deflated Sharpe Ratio', numerical example: 5 years
    of daily returns (T = 1250), annualized Sharpe 2.5, skewness -3, kurtosis 10, after
    N = 100 trials whose annualized Sharpes have variance 0.5 (250 days a year). The paper
    gets E[max SR] ≈ 0.1132 per day and DSR ≈ 0.9004."""
    sr = 2.5 / math.sqrt(250)
    variance = 0.5 / 250
    assert expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe(sr, [], 1250, -3.0, 10.0, n_trials=100, variance=variance)
    assert dsr == pytest.approx(0.9004, abs=5e-4)
    assert "a lucky maximum" in wf.dsr_verdict(dsr, 100)  # 0.90 < 0.95


def test_probabilistic_sharpe_by_hand() -> None:
    # Normal returns: PSR = Φ(SR·√(T−1) / √(1 + SR²/2)).
    # SR = 0.1 per day over 253 days: z = 0.1·√252 / √1.005 = 1.583497 → Φ(z) = 0.943346
    assert probabilistic_sharpe(0.1, 0.0, 253) == pytest.approx(0.943346, abs=1e-6)
    assert probabilistic_sharpe(0.0, 0.0, 100) == pytest.approx(0.5)
    # non-normal returns: skew -1, kurtosis 6 → √(1 + 0.1 + 5/4·0.01) = √1.1125
    z = 0.1 * math.sqrt(252) / math.sqrt(1.1125)
    assert probabilistic_sharpe(0.1, 0.0, 253, -1.0, 6.0) == pytest.approx(NormalDist().cdf(z))
    # negative skew and fat tails make a positive Sharpe less convincing
    assert probabilistic_sharpe(0.1, 0.0, 253, -1.0, 3.0) < probabilistic_sharpe(0.1, 0.0, 253)
    assert probabilistic_sharpe(0.1, 0.0, 253, 0.0, 9.0) < probabilistic_sharpe(0.1, 0.0, 253)


def test_excess_kurtosis_by_mistake_is_refused() -> None:
    with pytest.raises(ValueError, match="^kurtosis:.*not excess"):
        probabilistic_sharpe(0.1, 0.0, 100, skewness=0.0, kurtosis=0.0)
    with pytest.raises(ValueError, match="^n_returns:"):
        probabilistic_sharpe(0.1, 0.0, 1)
    with pytest.raises(ValueError, match="^observed_sr:"):
        probabilistic_sharpe(float("nan"), 0.0, 100)


def test_expected_maximum_matches_a_simulation() -> None:
    rng = np.random.default_rng(11)
    for n in (10, 100, 1000):
        simulated = rng.standard_normal((4000, n)).max(axis=1).mean()
        assert expected_max_sharpe(n, 1.0) == pytest.approx(simulated, rel=0.03)
    assert expected_max_sharpe(1, 1.0) == 0.0  # one trial: nothing was selected
    assert expected_max_sharpe(50, 0.0) == 0.0
    assert expected_max_sharpe(50, 4.0) == pytest.approx(2 * expected_max_sharpe(50, 1.0))


def test_more_trials_deflate_more_and_dsr_is_a_probability() -> None:
    trials = [0.05, -0.02, 0.01, 0.08, -0.04, 0.03]
    dsrs = [deflated_sharpe(0.12, trials, 500, n_trials=n) for n in (1, 10, 100, 1_000, 100_000)]
    assert all(a > b for a, b in itertools.pairwise(dsrs)), dsrs
    assert dsrs[0] == pytest.approx(probabilistic_sharpe(0.12, 0.0, 500))  # N = 1: plain PSR
    for sr in (-0.5, -0.05, 0.0, 0.05, 0.3, 2.0):
        for n in (2, 50, 5000):
            for skew, kurt in ((0.0, 3.0), (-2.0, 9.0), (1.5, 4.0)):
                d = deflated_sharpe(sr, trials, 250, skew, kurt, n_trials=n)
                assert 0.0 <= d <= 1.0


def test_the_best_of_many_no_skill_strategies_is_flagged_as_lucky() -> None:
    """200 configurations with no edge at all (zero-mean daily returns): the best in-sample
    Sharpe looks good annualized, and the DSR says it is a lucky maximum. A real edge of the
    same length passes."""
    rng = np.random.default_rng(5)
    days = 250
    trials = rng.normal(0.0, 0.01, (200, days))
    moments = [return_moments(r) for r in trials]
    srs = [m.sharpe for m in moments]
    best = int(np.argmax(srs))
    assert srs[best] * math.sqrt(TRADING_DAYS) > 1.5  # a tempting annualized Sharpe
    m = moments[best]
    dsr = deflated_sharpe(m.sharpe, srs, m.n, m.skewness, m.kurtosis)
    assert dsr < 0.5
    assert wf.dsr_verdict(dsr, 200).startswith("a lucky maximum")
    edge = rng.normal(0.003, 0.01, days)  # ~4.7 annualized
    e = return_moments(edge)
    dsr_edge = deflated_sharpe(e.sharpe, srs, e.n, e.skewness, e.kurtosis)
    assert dsr_edge > 0.95
    assert wf.dsr_verdict(dsr_edge, 200).startswith("likely genuine")


def test_moments_by_hand_and_the_summarys_sharpe_converts_to_per_day() -> None:
    r = [0.01, -0.01, 0.02, 0.0]
    # mean 0.005; deviations .005 -.015 .015 -.005; Σd² = 5e-4; sample std = √(5e-4/3)
    m = return_moments(r)
    assert m.n == 4
    assert m.sharpe == pytest.approx(0.005 / math.sqrt(5e-4 / 3))
    # population moments: m2 = 1.25e-4, m3 = 0, m4 = (2·.005⁴ + 2·.015⁴)/4 = 2.5625e-8
    assert m.skewness == pytest.approx(0.0, abs=1e-12)
    assert m.kurtosis == pytest.approx(2.5625e-8 / 1.25e-4**2)
    assert return_moments([0.01]).sharpe is None
    assert return_moments([0.01, 0.01, 0.01]).sharpe is None

    rets = np.random.default_rng(2).normal(0.001, 0.01, 300)
    run = run_from_daily_returns(rets)
    annual = summarize(run)["returns"]["sharpe"]  # daily × √252, rounded to 4 decimals
    per_day = return_moments(rets).sharpe
    assert wf.per_period_sharpe(annual) == pytest.approx(per_day, abs=1e-4 / math.sqrt(252))


def test_metric_ratio() -> None:
    assert metric_ratio(2.0, 1.0) == 0.5
    assert metric_ratio(2.0, -1.0) == -0.5
    assert metric_ratio(-2.0, 1.0) is None  # a ratio against an in-sample loss means nothing
    assert metric_ratio(0.0, 1.0) is None
    assert metric_ratio(None, 1.0) is None
    assert metric_ratio(1.0, float("nan")) is None


# --------------------------------------------------------------------------- assembling


def synthetic_walk_forward(n_configs: int = 6, n_windows: int = 4) -> tuple:
    """Configurations with drifts 0, 0.0005, ... per day; config 3 is best in every window
    in-sample. Out-of-sample each window trades the chosen configuration's returns."""
    rng = np.random.default_rng(9)
    days = 60 + 20 * n_windows
    ws = windows(T0, T0 + days * DAY, 60 * DAY, 20 * DAY)
    assert len(ws) == n_windows
    drifts = [0.0005 * j for j in range(n_configs)]
    drifts[3] = 0.006
    base = rng.normal(0, 0.008, (n_configs, days))
    points = [{"strategy.params.fast": 5 + j, "risk.risk_pct": 0.5} for j in range(n_configs)]
    is_summaries, oos_summaries, curves = [], [], []
    for w in ws:
        a = (w.is_start - T0) // DAY
        b = (w.oos_start - T0) // DAY
        c = (w.oos_end - T0) // DAY
        is_summaries.append(
            [summary_of(base[j, a:b] + drifts[j], w.is_start) for j in range(n_configs)]
        )
        run = run_from_daily_returns(base[3, b:c] + drifts[3] / 4, w.oos_start)  # edge fades OOS
        oos_summaries.append(summarize(run))
        curves.append(OosCurve(run.account.balance, [(p.time, p.equity) for p in run.equity]))
    return ws, is_summaries, oos_summaries, curves, points


def test_walk_forward_assembles_choices_ratio_curve_and_dsr() -> None:
    ws, is_s, oos_s, curves, points = synthetic_walk_forward()
    res = walk_forward(ws, is_s, oos_s, curves, points, "sharpe", 10_000.0)
    assert res.n_configurations == 6
    assert [w.chosen for w in res.windows] == [3, 3, 3, 3]
    assert res.windows[0].params == {"strategy.params.fast": 8, "risk.risk_pct": 0.5}
    for w, summaries, oos in zip(res.windows, is_s, oos_s, strict=True):
        assert w.is_value == summaries[3]["returns"]["sharpe"]
        assert w.oos_value == oos["returns"]["sharpe"]
        assert w.ratio == pytest.approx(w.oos_value / w.is_value)
    is_mean = np.mean([w.is_value for w in res.windows])
    oos_mean = np.mean([w.oos_value for w in res.windows])
    assert res.is_oos_ratio == pytest.approx(oos_mean / is_mean)
    # the stitched curve: every window's out-of-sample points, compounded from 10,000
    final = 10_000.0
    for oos in oos_s:
        final *= oos["returns"]["final_equity"] / oos["returns"]["initial_equity"]
    assert res.final_equity == pytest.approx(final, rel=1e-6)
    times = [t for t, _ in res.stitched]
    assert times == sorted(set(times))
    assert times[0] == ws[0].oos_start and times[-1] < ws[-1].oos_end
    # DSR from the stitched daily returns against 6 trials' in-sample Sharpe variance
    t = np.array(times)
    e = np.array([v for _, v in res.stitched])
    m = return_moments(daily_returns(t, e, 10_000.0))
    assert res.moments.n == m.n == 80 and res.moments.sharpe == pytest.approx(m.sharpe)
    variances = [
        np.var([s["returns"]["sharpe"] / math.sqrt(252) for s in row], ddof=1) for row in is_s
    ]
    assert res.trials_variance == pytest.approx(np.mean(variances))
    assert res.dsr == pytest.approx(
        probabilistic_sharpe(
            m.sharpe, expected_max_sharpe(6, np.mean(variances)), m.n, m.skewness, m.kurtosis
        )
    )
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["n_configurations"] == 6 and len(d["windows"]) == 4
    assert d["verdict"] == wf.dsr_verdict(res.dsr, 6)


def test_walk_forward_refuses_out_of_sample_data_outside_its_window() -> None:
    ws, is_s, oos_s, curves, points = synthetic_walk_forward()
    leaky = list(curves)
    # window 2's out-of-sample curve starting one day early: it would contain in-sample data
    first = leaky[1].points[0]
    leaky[1] = OosCurve(10_000.0, [(ws[1].oos_start - DAY, 10_000.0), *leaky[1].points])
    assert first[0] >= ws[1].oos_start
    with pytest.raises(ValueError, match=r"oos_curves\[1\]: point at .* outside the out-of-sample"):
        walk_forward(ws, is_s, oos_s, leaky, points, "sharpe", 10_000.0)
    with pytest.raises(ValueError, match=r"^is_summaries\[0\]: 5 summaries for 6"):
        walk_forward(ws, [row[:5] for row in is_s], oos_s, curves, points, "sharpe", 10_000.0)
    with pytest.raises(ValueError, match=r"^oos_curves: 3 entries for 4 windows"):
        walk_forward(ws, is_s, oos_s, curves[:3], points, "sharpe", 10_000.0)
    bad = [Window(w.is_start, w.is_end + DAY, w.oos_start, w.oos_end) for w in ws]
    with pytest.raises(ValueError, match=r"^windows\[0\]: in-sample must end before"):
        walk_forward(bad, is_s, oos_s, curves, points, "sharpe", 10_000.0)


def test_a_real_walk_forward_on_eurusd_h1() -> None:
    """Four sma_cross configurations over backtesting.py's EURUSD H1 (Apr 2017 – Feb 2018):
    90-day in-sample, 30-day out-of-sample windows; every in-sample run and every
    out-of-sample run stays inside its own period."""
    from backtesting.test import EURUSD

    from sidecar.backtest.data import load_backtesting_frame
    from sidecar.backtest.runner import Backtest, Market, RunOptions
    from sidecar.backtest.symbols import resolve_instrument
    from sidecar.config import load_config
    from sidecar.engine.strategies import strategy_problems

    data = load_backtesting_frame(EURUSD, "EURUSD", "H1")
    market = Market(data, resolve_instrument("EURUSD", None))
    points = [
        {"strategy.params.fast": f, "strategy.params.slow": s}
        for f, s in ((5, 20), (10, 30), (10, 50), (20, 60))
    ]
    configs = [
        load_config(
            None,
            env={},
            overrides={
                "strategy": {
                    "params": {"fast": p["strategy.params.fast"], "slow": p["strategy.params.slow"]}
                }
            },
            extra_checks=strategy_problems,
        )
        for p in points
    ]
    account = AccountSpec(leverage=500)

    def run(config, start: int, end: int) -> BacktestResult:
        return Backtest(config, account, [market], RunOptions(start=start, end=end - 1)).run()

    first = int(data.rows[0][0]) // DAY * DAY + 30 * DAY  # a month of warm-up before
    last = int(data.rows[-1][0]) // DAY * DAY
    ws = windows(first, last, 90 * DAY, 30 * DAY)[:4]
    assert len(ws) == 4
    is_summaries, oos_summaries, curves, chosen = [], [], [], []
    for w in ws:
        row = []
        for config in configs:
            r = run(config, w.is_start, w.is_end)
            assert all(w.is_start <= p.time < w.is_end for p in r.equity)
            row.append(summarize(r))
        is_summaries.append(row)
        pick = select(row, "sharpe")
        chosen.append(pick)
        oos = run(configs[pick], w.oos_start, w.oos_end)
        assert oos.equity and all(w.oos_start <= p.time < w.oos_end for p in oos.equity)
        oos_summaries.append(summarize(oos))
        curves.append(OosCurve(oos.account.balance, [(p.time, p.equity) for p in oos.equity]))
    res = walk_forward(ws, is_summaries, oos_summaries, curves, points, "sharpe", 10_000.0)
    assert [w.chosen for w in res.windows] == chosen
    assert res.n_configurations == 4
    assert len(res.stitched) == sum(len(c.points) + 1 for c in curves)  # + a start per window
    assert res.dsr is not None and 0.0 <= res.dsr <= 1.0
    assert res.moments.n > 60
    json.dumps(res.to_dict(), allow_nan=False)
