"""Sweep throughput: backtests per second serially and on a Dask LocalCluster, same run.

One grid of `--configs` configurations of `sma_cross` (fast x slow x sl_atr x risk) over the
first `--bars` bars of backtesting.py's EURUSD H1, run twice through `sidecar.backtest.sweep`,
each time into a fresh result store (so every backtest is computed):

- serial: one backtest after the other in this process (`--serial`);
- LocalCluster: `--workers` single-threaded worker processes (default: one per core), the data
  scattered to each worker once, one task per backtest.

The two alternate for `--rounds` rounds (so both see the same load from the machine's other
tenants); each round prints both rates, the share of a core the serial run got (its CPU time over
its wall time) and how many cores the workers used, then the median ratio. The cluster starts once,
timed apart. The results of every run are checked equal to the first serial run's.

    python bench/bench_sweep.py [--configs 24] [--bars 3000] [--workers N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def grid_for(n: int) -> dict:
    """At least `n` configurations (the first `n` of the product are run)."""
    values = {
        "strategy.params.fast": [5, 8, 10, 12],
        "strategy.params.slow": [20, 30, 40],
        "strategy.params.sl_atr": [1.5, 2.0, 2.5],
        "risk.risk_pct": [0.5, 1.0],
    }
    return {"grid": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=24, help="backtests per run (<= 72)")
    parser.add_argument("--bars", type=int, default=3000, help="EURUSD H1 bars per backtest")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3, help="serial/cluster pairs, alternated")
    args = parser.parse_args()

    from backtesting.test import EURUSD

    from sidecar.backtest.data import load_backtesting_frame
    from sidecar.backtest.grid import build_grid
    from sidecar.backtest.model import AccountSpec
    from sidecar.backtest.sweep import (
        DaskExecutor,
        SerialExecutor,
        SweepPlan,
        execute,
        market_data,
        specs_for,
    )
    from sidecar.backtest.sweep_store import ResultStore
    from sidecar.backtest.symbols import resolve_instrument

    grid = build_grid(grid_for(args.configs), env={})
    grid.points, grid.configs = grid.points[: args.configs], grid.configs[: args.configs]
    series = load_backtesting_frame(EURUSD.iloc[: args.bars], "EURUSD", "H1")
    data = market_data(series, resolve_instrument("EURUSD", None))
    plan = SweepPlan(grid, [(data,)], AccountSpec(), {})
    specs = specs_for(plan, None, None)
    n = len(specs)
    print(
        f"{n} backtests of {len(series.rows):,} EURUSD H1 bars; {os.cpu_count()} cores, "
        f"LocalCluster of {args.workers} worker processes; {_load()}"
    )
    serial_t: list[float] = []
    cluster_t: list[float] = []
    serial_cpu: list[float] = []
    cluster_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, DaskExecutor(workers=args.workers) as ex:
        t0 = time.perf_counter()
        ex._start()  # the cluster's start-up, timed apart
        startup = time.perf_counter() - t0
        want = None
        for r in range(args.rounds):  # alternating, so both see the same neighbours' load
            with ResultStore(Path(tmp) / f"serial{r}.sqlite") as store:
                c0, t0 = time.process_time(), time.perf_counter()
                execute(specs, plan.datasets, store, SerialExecutor())
                serial_t.append(time.perf_counter() - t0)
                serial_cpu.append((time.process_time() - c0) / serial_t[-1])
                got = {s.key: store.summary(s.key) for s in specs}
                want = want or got
                assert got == want
            with ResultStore(Path(tmp) / f"cluster{r}.sqlite") as store:
                c0 = sum(ex.client.run(time.process_time).values())
                t0 = time.perf_counter()
                report = execute(specs, plan.datasets, store, ex)
                cluster_t.append(time.perf_counter() - t0)
                used = sum(ex.client.run(time.process_time).values()) - c0
                cluster_cpu.append(used / cluster_t[-1])
                got = {s.key: store.summary(s.key) for s in specs}
                assert report.computed == n and got == want, "the cluster's results differ"
    ratios = sorted(a / b for a, b in zip(serial_t, cluster_t, strict=True))
    for r in range(args.rounds):
        print(
            f"round {r + 1}: serial {n / serial_t[r]:6.2f} backtests/s "
            f"({serial_cpu[r]:.2f} of a core), LocalCluster {n / cluster_t[r]:6.2f} backtests/s "
            f"(workers used {cluster_cpu[r]:.2f} cores): {serial_t[r] / cluster_t[r]:.2f}x"
        )
    mid = ratios[len(ratios) // 2]
    print(
        f"ratio LocalCluster / serial, median of {args.rounds} rounds: {mid:.2f}x "
        f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}); cluster start-up {startup:.1f} s, once; "
        "target >= 1.7x on 2 cores"
    )
    # What the cores we got did: backtests per CPU-second, and what that gives with every
    # worker on a core of its own (an estimate for an idle machine, not a measurement).
    per_cpu_serial = sum(n / (t * c) for t, c in zip(serial_t, serial_cpu, strict=True))
    per_cpu_cluster = sum(n / (t * c) for t, c in zip(cluster_t, cluster_cpu, strict=True))
    per_cpu_serial /= args.rounds
    per_cpu_cluster /= args.rounds
    print(
        f"backtests per CPU-second: serial {per_cpu_serial:.2f}, workers {per_cpu_cluster:.2f}; "
        f"with {args.workers} free cores that would be "
        f"{args.workers * per_cpu_cluster / per_cpu_serial:.2f}x (estimate)"
    )
    print(f"after: {_load()}")


def _load() -> str:
    """The machine's load average (others' work competes for the same cores); POSIX only."""
    if not hasattr(os, "getloadavg"):
        return "load average n/a"
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


if __name__ == "__main__":
    main()
