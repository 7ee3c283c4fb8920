"""Parameter sweeps on Dask (issue 14): the same results serially, on a LocalCluster and on a real
`dask scheduler` with two `dask worker` processes on loopback; resumable; failures reported.

Real parts only: backtesting.py's EURUSD H1 bars written as a `sidecar pull` CSV, the sidecar's
own command line, Dask's own processes, the SQLite result store on disk.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from backtesting.test import EURUSD

from sidecar.cli import main

BARS = 1500
GRID = """\
[grid]
"strategy.params.fast" = [5, 10]
"strategy.params.slow" = { from = 20, to = 40, step = 20 }
"strategy.params.sl_atr" = [1.5, 2.5]
"risk.risk_pct" = [0.5, 1.0]
"""  # 16 configurations
DEADLINE = 90.0  # seconds any wait on Dask's processes may take


def pull_csv(path: Path, bars: int = BARS) -> Path:
    frame = EURUSD.iloc[:bars]
    lines = ["time,open,high,low,close,volume"]
    for t, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        lines.append(
            f"{int(t.timestamp())},{row.Open},{row.High},{row.Low},{row.Close},{row.Volume}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sweep")
    grid = root / "grid.toml"
    grid.write_text(GRID, encoding="utf-8")
    return {"root": root, "data": pull_csv(root / "EURUSD_H1.csv"), "grid": grid}


def sweep_args(inputs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "backtest",
        "sweep",
        "--grid",
        str(inputs["grid"]),
        "--data",
        str(inputs["data"]),
        "--symbol",
        "EURUSD",
        "--spread",
        "8",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def counts(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"(\d+) computed, (\d+) from the store, (\d+) failed", stdout)
    assert m, stdout
    return int(m[1]), int(m[2]), int(m[3])


def summaries(store: Path) -> dict[str, dict]:
    db = sqlite3.connect(store)
    try:
        return {k: json.loads(s) for k, s in db.execute("SELECT key, summary FROM runs")}
    finally:
        db.close()


@pytest.fixture(scope="module")
def serial(inputs: dict[str, Path]) -> Path:
    """The reference: the 16 backtests one after the other in this process."""
    out = inputs["root"] / "serial"
    assert main(sweep_args(inputs, out, "--serial")) == 0
    return out


def test_a_local_cluster_gives_exactly_the_serial_summaries_and_bytes(
    inputs: dict[str, Path], serial: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = inputs["root"] / "local"
    assert main(sweep_args(inputs, out, "--workers", "2")) == 0
    stdout = capsys.readouterr().out
    assert counts(stdout) == (16, 0, 0) and "LocalCluster(2 workers)" in stdout
    expected = summaries(serial / "sweep.sqlite")
    assert len(expected) == 16
    assert summaries(out / "sweep.sqlite") == expected  # every field of every summary
    for name in ("results.csv", "best.sidecar.toml", "report.html"):
        assert (out / name).read_bytes() == (serial / name).read_bytes(), name
    rows = (serial / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 17 and rows[0].startswith("rank,strategy.params.fast,")
    # A repeated sweep costs nothing: no backtest, and no cluster started for none.
    assert main(sweep_args(inputs, out, "--workers", "2")) == 0
    assert counts(capsys.readouterr().out) == (0, 16, 0)


def test_the_sweep_runs_what_sidecar_backtest_runs(
    inputs: dict[str, Path], serial: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "sidecar.toml"
    cfg.write_text(
        '[risk]\nrisk_pct = 0.5\n[strategy]\nname = "sma_cross"\n'
        "[strategy.params]\nfast = 10\nslow = 40\nsl_atr = 2.5\n",
        encoding="utf-8",
    )
    single = tmp_path / "summary.json"
    args = ["backtest", "--config", str(cfg), "--data", str(inputs["data"]), "--symbol"]
    args += ["EURUSD", "--spread", "8", "--json", str(single), "--quiet"]
    assert main(args) == 0
    mine = json.loads(single.read_text(encoding="utf-8"))
    swept = [
        s
        for s in summaries(serial / "sweep.sqlite").values()
        if s["config"]["strategy"]["params"] == {"fast": 10, "slow": 40, "sl_atr": 2.5}
        and s["config"]["risk"]["risk_pct"] == 0.5
    ]
    assert swept == [mine]


# --------------------------------------------------------------------------- a real cluster


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and two `dask worker` processes on loopback, as docs/sweeps.md starts
    them on several machines; stopped at the end whatever happens."""
    from distributed import Client

    root = tmp_path_factory.mktemp("cluster")
    info = root / "scheduler.json"
    # As docs/sweeps.md advises: scattered bars stay on every worker (no replica reduction).
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__START": "False"}
    logs = [open(root / f"{n}.log", "wb") for n in ("scheduler", "worker1", "worker2")]  # noqa: SIM115
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1"),
                    *("--port", "0", "--no-dashboard", "--scheduler-file", str(info)),
                ],
                stdout=logs[0],
                stderr=subprocess.STDOUT,
                cwd=root,
                env=env,
            )
        )
        deadline = time.monotonic() + DEADLINE
        while not info.exists() or not info.read_text(encoding="utf-8").strip():
            assert procs[0].poll() is None, (root / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole, then read
        address = json.loads(info.read_text(encoding="utf-8"))["address"]
        assert address.startswith("tcp://127.0.0.1:")
        for k in (1, 2):
            procs.append(
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "dask", "worker", address, "--nworkers", "1"),
                        *("--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"),
                        *("--local-directory", str(root / f"w{k}"), "--name", f"w{k}"),
                    ],
                    stdout=logs[k],
                    stderr=subprocess.STDOUT,
                    cwd=root,
                )
            )
        with Client(address, timeout=DEADLINE) as client:
            client.wait_for_workers(2, timeout=DEADLINE)
            assert len(client.scheduler_info()["workers"]) == 2
        yield address
    finally:
        for p in reversed(procs):
            _stop(p)
        for fh in logs:
            fh.close()


def test_a_real_scheduler_and_two_workers_give_the_same_results(
    inputs: dict[str, Path], serial: Path, cluster: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    out = inputs["root"] / "remote"
    assert main(sweep_args(inputs, out, "--scheduler", cluster)) == 0
    assert counts(capsys.readouterr().out) == (16, 0, 0)
    assert summaries(out / "sweep.sqlite") == summaries(serial / "sweep.sqlite")
    for name in ("results.csv", "best.sidecar.toml", "report.html"):
        assert (out / name).read_bytes() == (serial / name).read_bytes(), name


def test_a_failing_backtest_is_retried_and_reported_not_dropped(
    inputs: dict[str, Path], cluster: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 1,900-bar volatility rank needs more warm-up than the file's 1,500 bars: the runner
    # raises in the worker, every time, for those configurations only.
    grid = tmp_path / "grid.toml"
    grid.write_text(
        '[grid]\n"sizing.volatility_window" = [100, 1900]\n"strategy.params.fast" = [5, 10]\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = sweep_args({**inputs, "grid": grid}, out, "--scheduler", cluster, "--retries", "1")
    capsys.readouterr()
    assert main(args) == 1
    captured = capsys.readouterr()
    assert counts(captured.out) == (2, 0, 2)
    assert "2 backtest(s) failed after their retries" in captured.err
    assert captured.err.count("ValueError: EURUSD: no bar to trade") == 2
    assert "c0003" in captured.err and "c0004" in captured.err
    db = sqlite3.connect(out / "sweep.sqlite")
    try:
        assert db.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
    finally:
        db.close()
    rows = (out / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3  # the two that ran; the failures are in the store and on stderr
    # A failure is not a result: the next run tries them again (and only them).
    assert main(args) == 1
    assert counts(capsys.readouterr().out) == (0, 2, 2)


# --------------------------------------------------------------------------- resume


def test_a_killed_sweep_resumes_and_recomputes_only_what_is_missing(
    inputs: dict[str, Path], serial: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = inputs["root"] / "killed"
    store = out / "sweep.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidecar", *sweep_args(inputs, out, "--serial")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        stored = 0
        while stored < 4:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "no results stored in time"
            if store.exists():
                db = sqlite3.connect(f"file:{store.as_posix()}?mode=ro", uri=True, timeout=5)
                try:
                    stored = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
                except sqlite3.OperationalError:  # the table is being created
                    stored = 0
                finally:
                    db.close()
            time.sleep(0.02)
        proc.kill()  # half-way: no chance to clean up
        proc.wait(timeout=30)
    finally:
        _stop(proc)
    done = len(summaries(store))
    assert 4 <= done < 16
    capsys.readouterr()
    assert main(sweep_args(inputs, out, "--serial")) == 0
    assert counts(capsys.readouterr().out) == (16 - done, done, 0)
    assert (out / "results.csv").read_bytes() == (serial / "results.csv").read_bytes()
    assert main(sweep_args(inputs, out, "--serial")) == 0
    assert counts(capsys.readouterr().out) == (0, 16, 0)


# --------------------------------------------------------------------------- several symbols


def test_several_symbols_each_alone_or_on_one_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eur = pull_csv(tmp_path / "EURUSD.csv", bars=900)
    gbp = tmp_path / "GBPUSD.csv"
    gbp.write_text(eur.read_text(encoding="utf-8"), encoding="utf-8")  # bars of its own name
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"strategy.params.fast" = [5, 10]\n', encoding="utf-8")
    base = ["backtest", "sweep", "--grid", str(grid), "--serial", "--quiet", "--spread", "8"]
    base += ["--data", str(eur), "--symbol", "EURUSD", "--data", str(gbp), "--symbol", "GBPUSD"]
    assert main([*base, "--out", str(tmp_path / "apart")]) == 0
    assert counts(capsys.readouterr().out) == (4, 0, 0)
    rows = (tmp_path / "apart" / "results.csv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split(",")
    symbols = sorted(r.split(",")[header.index("symbol")] for r in rows[1:])
    assert symbols == ["EURUSD", "EURUSD", "GBPUSD", "GBPUSD"]
    assert main([*base, "--portfolio", "--out", str(tmp_path / "together")]) == 0
    assert counts(capsys.readouterr().out) == (2, 0, 0)
    rows = (tmp_path / "together" / "results.csv").read_text(encoding="utf-8").splitlines()
    assert [r.split(",")[header.index("symbol")] for r in rows[1:]] == ["EURUSD+GBPUSD"] * 2
    for s in summaries(tmp_path / "together" / "sweep.sqlite").values():
        assert s["period"]["symbols"] == ["EURUSD", "GBPUSD"]


def test_the_data_reaches_each_worker_once_and_tasks_carry_only_their_configuration(
    inputs: dict[str, Path], cluster: str, tmp_path: Path
) -> None:
    from sidecar.backtest.data import load_series
    from sidecar.backtest.grid import build_grid
    from sidecar.backtest.model import AccountSpec
    from sidecar.backtest.sweep import DaskExecutor, SweepPlan, execute, market_data, specs_for
    from sidecar.backtest.sweep_store import ResultStore
    from sidecar.backtest.symbols import resolve_instrument

    series = load_series(inputs["data"], symbol="EURUSD")
    market = market_data(series, resolve_instrument("EURUSD", None))
    grid = build_grid(
        {"grid": {"strategy.params.fast": [5, 10], "risk.risk_pct": [0.5, 1]}}, env={}
    )
    plan = SweepPlan(grid, [(market,)], AccountSpec(), {})
    specs = specs_for(plan, None, None)
    with DaskExecutor(cluster) as ex, ResultStore(tmp_path / "s.sqlite") as store:
        report = execute(specs, plan.datasets, store, ex)
        assert report.computed == 4 and not report.failed
        data = ex.data(market)  # the one future every task named
        holders = ex.client.who_has([data])[data.key]
        assert len(holders) == 2  # broadcast: a copy on each worker, sent before the tasks
    # What a task itself carries: its configuration and period, not the bars.
    assert len(pickle.dumps(specs[0])) * 10 < len(pickle.dumps(market))
