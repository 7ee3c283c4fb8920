"""`sidecar backtest sweep` and `sidecar backtest walkforward`: the command line of sweep.py.

Both take the data, symbol, account and period flags of `sidecar backtest` (or its `--run`
file), a grid file (`--grid`, see grid.py) and an output folder (`--out`). Every problem (the
run settings, the grid's keys and values, the data files, the metric, the walk-forward periods)
is reported at once, before anything runs; exit 2 then. Exit 1 when some backtest failed after
its retries (the others are stored and written), 0 otherwise.

Dask is imported only here, when a sweep runs without `--serial`: `sidecar serve` and the plain
`sidecar backtest` never need it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

WALKFORWARD_KEYS = ("in_sample", "out_of_sample", "step", "anchored", "metric")


def add_subcommands(
    parent: argparse.ArgumentParser, add_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    from sidecar.backtest.command import add_run_arguments

    sub = parent.add_subparsers(dest="backtest_command", metavar="{sweep,walkforward}")
    for name in ("sweep", "walkforward"):
        if name == "sweep":
            p = sub.add_parser(
                "sweep",
                help="run every configuration of a grid; rank them",
                description="Backtest every configuration of a grid file's [grid] on every "
                "dataset, serially, on every core (a Dask LocalCluster) or on a Dask cluster; "
                "write DIR/results.csv (ranked), DIR/report.html and DIR/best.sidecar.toml. "
                "Results are stored as they arrive (DIR/sweep.sqlite): a re-run computes only "
                "what is missing.",
            )
        else:
            p = sub.add_parser(
                "walkforward",
                help="walk-forward: choose in sample, evaluate out of sample, stitch",
                description="Rolling or anchored in-sample/out-of-sample windows: in each, the "
                "best configuration of the grid by --metric on the in-sample period is run on the "
                "out-of-sample one; the out-of-sample equity is stitched into one curve, with "
                "the IS/OOS ratio and the deflated Sharpe ratio. Defaults come from the grid "
                "file's [walkforward] table; flags win.",
            )
        add_config(p)
        add_run_arguments(p)
        p.add_argument("--grid", required=True, help="TOML grid file: [grid] dotted key = values")
        p.add_argument("--out", required=True, help="output folder (created)")
        p.add_argument(
            "--metric",
            help="rank by this summary field or expression, e.g. sharpe, calmar, profit_factor, "
            '"sharpe * (1 - max_drawdown_pct / 100)" (default: sharpe)',
        )
        p.add_argument(
            "--portfolio",
            action="store_true",
            help="all --data/--symbol on one account in each backtest (default: each symbol "
            "its own backtest)",
        )
        p.add_argument(
            "--scheduler", help="an existing Dask cluster, e.g. tcp://HOST:8786 (default: local)"
        )
        p.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
        p.add_argument(
            "--serial", action="store_true", help="no Dask: one backtest after the other here"
        )
        p.add_argument(
            "--retries", type=int, default=2, help="retries of a failed backtest (default 2)"
        )
        p.add_argument("--store", help="results database (default: DIR/sweep.sqlite)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        if name == "walkforward":
            p.add_argument("--in-sample", help="in-sample length, e.g. 365d, 26w")
            p.add_argument("--out-of-sample", help="out-of-sample length, e.g. 90d")
            p.add_argument("--step", help="window step (default: the out-of-sample length)")
            p.add_argument(
                "--anchored",
                action="store_true",
                default=None,
                help="every in-sample period starts at the data's start (default: rolling)",
            )
        p.set_defaults(func=run_walkforward if name == "walkforward" else run_sweep)


def _fail(problems: list[str], what: str) -> int:
    print(f"{what} errors:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    return 2


def _prepare(args: argparse.Namespace, walkforward: bool) -> tuple[Any, dict[str, Any], list[str]]:
    """The sweep's plan and options, or every problem."""
    from sidecar.backtest import walkforward as wf
    from sidecar.backtest.command import (
        RunFileError,
        load_markets,
        parse_time,
        settings,
    )
    from sidecar.backtest.grid import GridError, load_grid
    from sidecar.backtest.sweep import SweepPlan, market_data

    problems: list[str] = []
    s = grid = None
    try:
        s = settings(args)
    except RunFileError as exc:
        problems.extend(exc.problems)
    start = end = None
    for flag, text in (("--from", args.start), ("--to", args.end)):
        try:
            value = parse_time(text, flag)
        except RunFileError as exc:
            problems.extend(exc.problems)
            continue
        if flag == "--from":
            start = value
        else:
            end = value
    if start is not None and end is not None and start > end:
        problems.append(f"--from: must not be after --to ({args.end}), got {args.start}")
    try:
        grid = load_grid(args.grid, args.config)
    except GridError as exc:
        problems.extend(exc.problems)
    options: dict[str, Any] = {}
    table = dict(grid.walkforward) if grid is not None else {}
    if walkforward:
        unknown = set(table) - set(WALKFORWARD_KEYS)
        if unknown:
            problems.append(
                f"{args.grid} [walkforward]: unknown key(s) {', '.join(sorted(unknown))}; "
                f"expected {', '.join(WALKFORWARD_KEYS)}"
            )
        for key in ("in_sample", "out_of_sample", "step"):
            text = getattr(args, key) or table.get(key)
            flag = "--" + key.replace("_", "-")
            if text is None:
                if key != "step":
                    problems.append(f"{flag}: required (or {key} in the grid's [walkforward])")
                continue
            try:
                options[key] = wf.parse_duration(text, flag)
            except ValueError as exc:
                problems.append(str(exc))
        anchored = args.anchored if args.anchored is not None else table.get("anchored", False)
        if not isinstance(anchored, bool):
            problems.append(f"[walkforward] anchored: expected true or false, got {anchored!r}")
        options["anchored"] = bool(anchored)
    metric = args.metric or (table.get("metric") if walkforward else None) or "sharpe"
    try:
        wf.compile_metric(metric)
    except ValueError as exc:
        problems.append(f"--metric: {exc}")
    options["metric"] = metric
    if args.workers is not None and args.workers < 1:
        problems.append(f"--workers: expected 1 or more, got {args.workers}")
    if args.retries < 0:
        problems.append(f"--retries: expected 0 or more, got {args.retries}")
    if args.serial and (args.scheduler or args.workers):
        problems.append("--serial: runs here; it takes neither --scheduler nor --workers")
    elif args.scheduler and args.workers:
        problems.append("--workers: the size of the local cluster; --scheduler's has its own")
    if args.scheduler and "://" not in args.scheduler:
        problems.append(f"--scheduler: expected tcp://HOST:PORT, got {args.scheduler!r}")
    datasets = []
    if s is not None:
        markets, why = load_markets(s, args)
        problems.extend(why)
        data = [market_data(m.data, m.instrument) for m in markets]
        if args.portfolio:
            names = [m.symbol for m in data]
            if len(set(names)) != len(names):
                problems.append(f"--portfolio: each symbol once, got {', '.join(names)}")
            timeframes = {m.timeframe for m in data}
            if len(timeframes) > 1:
                problems.append(f"--portfolio: one timeframe, got {', '.join(sorted(timeframes))}")
            datasets = [tuple(data)] if data else []
        else:
            datasets = [(m,) for m in data]
    if problems or s is None or grid is None:
        return None, options, problems
    plan = SweepPlan(grid, datasets, s.account, s.limits, start, end, args.ticks)
    return plan, options, problems


def _facts(args: argparse.Namespace, plan: Any) -> dict[str, str]:
    from sidecar.backtest.sweep import dataset_name

    facts = {
        "Data": ", ".join(m.source or m.symbol for d in plan.datasets for m in d),
        "Symbols": ", ".join(dataset_name(d) for d in plan.datasets),
        "Timeframe": plan.datasets[0][0].timeframe if plan.datasets else "",
        "Grid": f"{Path(args.grid).name}: {len(plan.grid.points)} configurations",
    }
    if args.start or args.end:
        facts["Period"] = f"{args.start or 'start'} to {args.end or 'end'}"
    return facts


def _skipped(plan: Any) -> None:
    grid = plan.grid
    if grid.skipped:
        reasons = list(dict.fromkeys(p for _, ps in grid.skipped for p in ps))
        more = f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        print(
            f"grid: {len(grid.skipped)} of {grid.combinations} combinations skipped as invalid: "
            + "; ".join(reasons[:3])
            + more
        )


def _execution(report: Any, executor: Any) -> str:
    return (
        f"{report.computed} computed, {report.reused} from the store, {len(report.failed)} "
        f"failed, {report.seconds:.1f} s on {executor.name}"
    )


def _interrupted() -> int:
    print(
        "interrupted: the results so far are stored; run the same command again to resume",
        file=sys.stderr,
    )
    return 130


def _failures(report: Any) -> int:
    if not report.failed:
        return 0
    print(f"{len(report.failed)} backtest(s) failed after their retries:", file=sys.stderr)
    for spec, error in report.failed:
        print(f"  - {spec.point} {spec.label} (run {spec.key[:12]}): {error}", file=sys.stderr)
    return 1


def run_sweep(args: argparse.Namespace) -> int:
    from sidecar.backtest.sweep import SweepError, executor_for
    from sidecar.backtest.sweep import run_sweep as sweep

    plan, options, problems = _prepare(args, walkforward=False)
    if problems:
        return _fail(problems, "sweep")
    _skipped(plan)
    try:
        executor = executor_for(args.serial, args.scheduler, args.workers, args.retries)
        with executor:
            outcome = sweep(
                plan,
                args.out,
                executor,
                options["metric"],
                args.store,
                progress=not args.quiet,
                facts=_facts(args, plan),
            )
    except SweepError as exc:
        return _fail(exc.problems, "sweep")
    except KeyboardInterrupt:
        return _interrupted()
    n = len(plan.grid.points) * len(plan.datasets)
    print(
        f"sweep: {len(plan.grid.points)} configurations x {len(plan.datasets)} dataset(s) = "
        f"{n} backtests: {_execution(outcome.report, executor)}"
    )
    best = next(p for p in plan.grid.points if p.id == outcome.best)
    shown = ", ".join(f"{k}={v}" for k, v in best.values.items())
    if outcome.best_score is None:
        print(f"best: none (no configuration has a {options['metric']} value on every dataset)")
    else:
        print(f"best {best.id} ({options['metric']} {outcome.best_score:.6g}): {shown}")
    for f in outcome.files:
        print(f"  wrote {f}")
    return _failures(outcome.report)


def run_walkforward(args: argparse.Namespace) -> int:
    from sidecar.backtest import walkforward as wf
    from sidecar.backtest.sweep import SweepError, data_span, executor_for, walk_forward_sweep

    plan, options, problems = _prepare(args, walkforward=True)
    if problems:
        return _fail(problems, "walkforward")
    _skipped(plan)
    try:
        first, last = data_span(plan)
        wf.windows(
            first,
            last,
            options["in_sample"],
            options["out_of_sample"],
            anchored=options["anchored"],
            step=options.get("step"),
        )
    except (SweepError, ValueError) as exc:  # before a cluster starts for nothing
        return _fail(getattr(exc, "problems", [str(exc)]), "walkforward")
    try:
        executor = executor_for(args.serial, args.scheduler, args.workers, args.retries)
        with executor:
            outcome = walk_forward_sweep(
                plan,
                args.out,
                executor,
                options["in_sample"],
                options["out_of_sample"],
                anchored=options["anchored"],
                step=options.get("step"),
                metric=options["metric"],
                store_path=args.store,
                progress=not args.quiet,
                facts=_facts(args, plan),
            )
    except (SweepError, ValueError) as exc:
        return _fail(getattr(exc, "problems", [str(exc)]), "walkforward")
    except KeyboardInterrupt:
        return _interrupted()
    print(
        f"walkforward: {len(outcome.windows)} windows x {len(plan.grid.points)} configurations: "
        f"{_execution(outcome.report, executor)}"
    )
    if outcome.result is not None:
        r = outcome.result
        dsr = "none" if r.dsr is None else f"{r.dsr:.3f}"
        ratio = "none" if r.is_oos_ratio is None else f"{r.is_oos_ratio:.3f}"
        print(
            f"out of sample: return {r.total_return_pct:.2f} %, max drawdown "
            f"{r.max_drawdown_pct:.2f} %, IS/OOS {options['metric']} ratio {ratio}, deflated "
            f"Sharpe {dsr} over {r.n_configurations} configurations: {r.verdict}"
        )
        for f in outcome.files:
            print(f"  wrote {f}")
    return _failures(outcome.report)
