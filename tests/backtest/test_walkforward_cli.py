"""Walk-forward over the sweep (issue 14): at least four windows, a stitched out-of-sample curve and
a deflated Sharpe ratio; out-of-sample runs read no in-sample bar but the warm-up, and in-sample
runs read nothing after their window.

The warm-up decision (docs/sweeps.md): an out-of-sample run is a fresh account that trades from
the window's start, and its indicators are warmed on the bars just before the window, exactly
the bars `hello` would carry live when the EA is attached on that day (the strategy's and the
volatility rank's need, `runner.needed_warmup`). Prices only: no trade, equity, Kelly journal or
breaker state of the in-sample period reaches it. The tests below prove it by corrupting every
other bar of the file and getting byte-identical summaries.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from backtesting.test import EURUSD

from sidecar.backtest.data import load_backtesting_frame
from sidecar.backtest.grid import build_grid
from sidecar.backtest.model import AccountSpec
from sidecar.backtest.runner import needed_warmup
from sidecar.backtest.sweep import (
    MarketData,
    SerialExecutor,
    SweepPlan,
    market_data,
    run_backtest,
    walk_forward_sweep,
)
from sidecar.backtest.sweep_store import ResultStore
from sidecar.backtest.symbols import resolve_instrument
from sidecar.backtest.walkforward import parse_duration
from sidecar.cli import main
from sidecar.engine.decide import Engine

GRID = {
    "grid": {"strategy.params.fast": [5, 10], "strategy.params.slow": [20, 40]},
    "walkforward": {"in_sample": "30d", "out_of_sample": "15d", "metric": "sharpe"},
}


def corrupt(m: MarketData, keep: slice) -> MarketData:
    """The same market with every bar outside `keep` moved far away (still valid bars)."""
    rows = m.rows.copy()
    outside = np.ones(len(rows), dtype=bool)
    outside[keep] = False
    rows[outside, 1:5] *= 1.37
    return dataclasses.replace(m, rows=rows, digest="corrupted")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SweepPlan, object, Path]:
    out = tmp_path_factory.mktemp("wf")
    series = load_backtesting_frame(EURUSD.iloc[:2600], "EURUSD", "H1")
    data = market_data(series, resolve_instrument("EURUSD", None))
    plan = SweepPlan(build_grid(GRID, env={}), [(data,)], AccountSpec(), {})
    outcome = walk_forward_sweep(
        plan,
        out,
        SerialExecutor(),
        parse_duration("30d"),
        parse_duration("15d"),
        metric="sharpe",
    )
    return plan, outcome, out


def test_four_or_more_windows_give_a_stitched_curve_and_a_deflated_sharpe(run) -> None:
    plan, outcome, out = run
    assert len(outcome.windows) >= 4
    assert outcome.report.failed == [] and outcome.report.computed == 5 * len(outcome.windows)
    doc = json.loads((out / "walkforward.json").read_text(encoding="utf-8"))
    assert doc["n_configurations"] == 4 and len(doc["windows"]) == len(outcome.windows)
    stitched = doc["stitched"]
    assert stitched["equity"][0] == 10_000 and len(stitched["t"]) > 30
    assert stitched["t"] == sorted(set(stitched["t"]))
    assert stitched["t"][0] >= outcome.windows[0].oos_start
    assert stitched["t"][-1] < outcome.windows[-1].oos_end
    assert 0.0 <= doc["dsr"] <= 1.0 and doc["verdict"]
    assert doc["is_oos_ratio"] is None or isinstance(doc["is_oos_ratio"], float)
    for w, k in zip(doc["windows"], outcome.chosen, strict=True):
        assert w["chosen"] == k and w["params"] == plan.grid.points[k].values
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    best = (out / "best.sidecar.toml").read_text(encoding="utf-8")
    assert "[strategy.params]" in best  # the last window's choice, ready to paste


def test_out_of_sample_runs_read_only_their_window_and_its_warm_up(run) -> None:
    plan, outcome, out = run
    (data,) = plan.datasets[0]
    times = data.rows[:, 0].astype(np.int64)
    with ResultStore(out / "sweep.sqlite") as store:
        for w, spec in zip(outcome.windows, outcome.oos_specs, strict=True):
            warm = needed_warmup(spec.config, Engine(spec.config))
            first = int(np.searchsorted(times, w.oos_start))
            end = int(np.searchsorted(times, w.oos_end))
            # The bars read before the window are the warm-up alone, all of them in sample.
            assert first - warm >= 0 and times[first - 1] < w.oos_start <= times[first]
            # Every other bar of the file (in sample or later) corrupted: the same summary.
            again = run_backtest(spec, corrupt(data, slice(first - warm, end)))
            stored = store.summary(spec.key)
            assert again["summary"] == stored
            # A fresh account from the window's start: nothing of the in-sample run carried.
            assert stored["period"]["start"] >= w.oos_start
            assert stored["returns"]["initial_equity"] == plan.account.balance
            initial, curve = store.curve(spec.key)
            assert initial == plan.account.balance and curve[0][0] >= w.oos_start
            # ... while corrupting the warm-up does change it: the test can see a leak.
            moved = run_backtest(spec, corrupt(data, slice(first, end)))
            assert moved["summary"] != stored


def test_in_sample_choices_never_see_the_out_of_sample_bars(run) -> None:
    plan, outcome, out = run
    (data,) = plan.datasets[0]
    times = data.rows[:, 0].astype(np.int64)
    w = outcome.windows[0]
    is_end = int(np.searchsorted(times, w.is_end))  # every bar from the OOS start on corrupted
    with ResultStore(out / "sweep.sqlite") as store:
        for spec in outcome.is_specs[0]:
            blind = run_backtest(spec, corrupt(data, slice(0, is_end)))
            assert blind["summary"] == store.summary(spec.key)


def test_the_command_reads_its_defaults_from_the_grid_file_and_reuses_the_store(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, outcome, out = run
    csv = tmp_path / "EURUSD_H1.csv"
    EURUSD.iloc[:2600].to_csv(csv, index_label="time")
    grid = tmp_path / "grid.toml"
    grid.write_text(
        '[grid]\n"strategy.params.fast" = [5, 10]\n"strategy.params.slow" = [20, 40]\n\n'
        '[walkforward]\nin_sample = "30d"\nout_of_sample = "15d"\n',
        encoding="utf-8",
    )
    args = ["backtest", "walkforward", "--grid", str(grid), "--data", str(csv), "--symbol"]
    args += ["EURUSD", "--timeframe", "H1", "--out", str(tmp_path / "wf"), "--serial", "--quiet"]
    args += ["--store", str(out / "sweep.sqlite")]
    capsys.readouterr()
    assert main(args) == 0
    stdout = capsys.readouterr().out
    n = 5 * len(outcome.windows)
    assert f"{len(outcome.windows)} windows x 4 configurations: 0 computed, {n} from the store" in (
        stdout
    )
    assert "deflated Sharpe" in stdout
    assert (tmp_path / "wf" / "walkforward.json").read_bytes() == (
        out / "walkforward.json"
    ).read_bytes()
    # Periods that fit no window are an input error, before anything runs.
    bad = [*args[:-2], "--in-sample", "3000d"]
    assert main(bad) == 2
    assert "no window fits" in capsys.readouterr().err
