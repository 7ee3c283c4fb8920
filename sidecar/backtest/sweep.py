"""Parameter sweeps and walk-forward: many backtests, on one core, every core, or a Dask cluster.

The unit of work is one whole backtest (`run_backtest`): one configuration of the grid on one
dataset (one symbol, or several on one account with `--portfolio`) over one period. It is a pure
function of its inputs, so where it runs does not matter: serially in this process, on a
`distributed.LocalCluster` (one worker process per core) or on an existing cluster
(`--scheduler tcp://HOST:8786`) the results are the same bytes.

- **Data** is loaded and checked once, here, then sent to each worker once (`Client.scatter` with
  `broadcast=True`); a task carries only its configuration and period, and names the data by the
  scattered future.
- **Results** are stored as they arrive (`sweep_store.ResultStore`, SQLite) under `run_key`: the
  hash of the data, the configuration, the account, the EA limits, the period and the sidecar's
  code version (a hash of its source files; a remote worker running other code is refused). An
  interrupted sweep resumes, a repeated one costs nothing.
- **Failures**: a task that raises is retried (`retries`, 2 by default), then reported (stderr,
  the store's `failures` table, a non-zero exit), never silently dropped.
- **Periods**: a run sees the bars of its period and, before it, only the warm-up its
  configuration needs (`runner.needed_warmup`: the strategy's and the volatility rank's bars,
  as the EA's `hello` would carry live). Nothing else of the file reaches the run.

Walk-forward (`walk_forward_sweep`): the in-sample runs of every window and configuration go out
at once; the best configuration of each window is chosen by `walkforward.select` on its
in-sample summaries alone; then the chosen configurations run out of sample and
`walkforward.walk_forward` stitches and scores them. The pure parts (windows, selection,
stitching, deflated Sharpe) are `sidecar.backtest.walkforward`; the pages and the CSV are
`sidecar.backtest.sweep_report`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from sidecar.backtest.grid import Grid
from sidecar.backtest.model import AccountSpec, InstrumentSpec, SeriesData
from sidecar.backtest.sweep_store import ResultStore
from sidecar.config import Config
from sidecar.guard import GuardLimits

DAY = 86_400
DEFAULT_RETRIES = 2


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class MarketData:
    """One symbol's bars as the workers receive them (once): a float64 array of protocol rows
    `[time_server, open, high, low, close, tick_volume, spread]` and the broker's spec."""

    symbol: str
    timeframe: str
    source: str
    rows: np.ndarray
    instrument: InstrumentSpec
    digest: str  # SHA-256 of the rows, the symbol, the timeframe and the instrument


def market_data(series: SeriesData, instrument: InstrumentSpec) -> MarketData:
    rows = np.asarray(series.rows, dtype=np.float64).reshape(-1, 7)
    h = hashlib.sha256()
    h.update(f"{series.symbol}\0{series.timeframe}\0".encode())
    h.update(msgspec.json.encode(instrument))
    h.update(np.ascontiguousarray(rows).tobytes())
    return MarketData(
        series.symbol, series.timeframe, series.source, rows, instrument, h.hexdigest()
    )


Dataset = tuple[MarketData, ...]  # the symbols of one account


def dataset_name(dataset: Dataset) -> str:
    return "+".join(m.symbol for m in dataset)


@functools.cache
def code_version() -> str:
    """A hash of the sidecar package's Python sources (line ends normalised, so a Windows
    checkout and a Linux one of the same code agree)."""
    import sidecar

    root = Path(sidecar.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class RunSpec:
    """One backtest to run: what a task carries (the data travels separately, once)."""

    key: str
    point: str  # the grid point's id ("c0007")
    dataset: int  # index into the sweep's datasets
    config: Config
    account: AccountSpec
    limits: GuardLimits
    start: int | None  # UTC, first bar traded (None: after the warm-up)
    end: int | None  # UTC, last bar opening at or before this (inclusive; None: the end)
    ticks: str = "open"
    label: str = ""  # "is 3", "oos 3": what it is for, in messages


def limits_for(config: Config, limits: dict[str, Any]) -> GuardLimits:
    """The EA's inputs, as `sidecar backtest` sets them: the broker day from the config."""
    return GuardLimits(**{"day_offset_hours": config.broker.day_offset_hours, **limits})


def run_key(
    config: Config,
    account: AccountSpec,
    limits: GuardLimits,
    dataset: Dataset,
    start: int | None,
    end: int | None,
    ticks: str,
) -> str:
    """The hash a run's result is stored under: everything that decides it."""
    doc = {
        "code": code_version(),
        "data": [m.digest for m in dataset],
        "config": config.model_dump(mode="json"),
        "account": dataclasses.asdict(account),
        "limits": dataclasses.asdict(limits),
        "period": [start, end],
        "ticks": ticks,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- the task


def period_rows(m: MarketData, start: int | None, end: int | None, warm: int, offset: int):
    """The rows a run over [start, end] (UTC) reads: its bars and the `warm` bars before."""
    times = m.rows[:, 0]
    first = warm if start is None else int(np.searchsorted(times, start + offset, "left"))
    lo = max(0, first - warm)
    hi = len(times) if end is None else int(np.searchsorted(times, end + offset, "right"))
    return m.rows[lo:hi]


def daily_curve(result: Any) -> list[list[float]]:
    """[[utc, equity]] at the last equity point of each UTC day."""
    pts = result.equity
    if not pts:
        return []
    out: list[list[float]] = []
    for p in pts:
        if out and int(out[-1][0]) // DAY == p.time // DAY:
            out[-1] = [p.time, p.equity]
        else:
            out.append([p.time, p.equity])
    return out


def run_backtest(spec: RunSpec, *markets: MarketData) -> dict[str, Any]:
    """One whole backtest (the Dask task): its summary and its daily equity curve."""
    from sidecar.backtest.metrics import summarize
    from sidecar.backtest.runner import Backtest, Market, RunOptions, needed_warmup
    from sidecar.engine.decide import Engine

    t0 = time.perf_counter()
    warm = needed_warmup(spec.config, Engine(spec.config))
    offset = round(spec.account.server_offset_hours * 3600)
    runs = []
    for m in markets:
        rows = period_rows(m, spec.start, spec.end, warm, offset)
        series = SeriesData(m.symbol, m.timeframe, rows.tolist(), m.source)
        runs.append(Market(series, m.instrument))
    options = RunOptions(start=spec.start, end=spec.end, limits=spec.limits, ticks=spec.ticks)
    result = Backtest(spec.config, spec.account, runs, options).run()
    return {
        "summary": summarize(result),
        "initial": float(spec.account.balance),
        "curve": daily_curve(result),
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------- execution


@dataclass
class ExecReport:
    computed: int = 0  # backtests run now
    reused: int = 0  # found in the store
    failed: list[tuple[RunSpec, str]] = field(default_factory=list)
    seconds: float = 0.0


class Progress:
    """A tqdm bar on stderr: done / running / failed (drawn after two seconds)."""

    def __init__(self, total: int, enabled: bool, label: str) -> None:
        self.bar = None
        self.done = self.failed = 0
        self.total = total
        if enabled and total:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="run", desc=label, delay=2.0, file=sys.stderr, leave=False
            )

    def update(self, left: int, slots: int, ok: bool) -> None:
        """One more result; `left` not finished yet, at most `slots` of them running."""
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if self.bar is not None:
            running = min(left, slots)
            self.bar.set_postfix_str(
                f"done {self.done}, running {running}, queued {left - running}, "
                f"failed {self.failed}",
                refresh=False,
            )
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class SerialExecutor:
    """Every backtest in this process, one after the other (`--serial`; no Dask needed)."""

    name = "serial"

    def __init__(self, retries: int = DEFAULT_RETRIES) -> None:
        self.retries = retries

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def slots(self) -> int:
        return 1

    def run(
        self,
        specs: Sequence[RunSpec],
        datasets: Sequence[Dataset],
        on_result: Callable[[RunSpec, dict[str, Any] | None, str | None], None],
    ) -> None:
        for spec in specs:
            error = None
            for _attempt in range(self.retries + 1):
                try:
                    result = run_backtest(spec, *datasets[spec.dataset])
                except Exception as exc:  # a task's failure is reported, not raised
                    error = f"{type(exc).__name__}: {exc}"
                    continue
                on_result(spec, result, None)
                break
            else:
                on_result(spec, None, error)


class DaskExecutor:
    """Backtests as Dask tasks: a `LocalCluster` with one single-threaded worker process per
    core (or `workers`), or the cluster at `scheduler`."""

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int | None = None,
        retries: int = DEFAULT_RETRIES,
        timeout: float = 60.0,
    ) -> None:
        self.scheduler = scheduler
        self.workers = workers
        self.retries = retries
        self.timeout = timeout
        self.client: Any = None
        self.cluster: Any = None
        self._scattered: dict[str, Any] = {}
        self._threads: int | None = None
        self._seen = 0.0
        self.name = scheduler or f"LocalCluster({workers or os.cpu_count() or 1} workers)"

    def __enter__(self) -> DaskExecutor:
        return self  # the cluster starts with the first backtest not in the store

    def _start(self) -> None:
        import logging

        from distributed import Client, LocalCluster

        if self.scheduler:
            self.client = Client(self.scheduler, timeout=self.timeout)
        else:
            import dask

            # Our own scheduler keeps the scattered bars on every worker for the whole sweep
            # (the active memory manager would drop the extra copies between a walk-forward's
            # stages, and workers would fetch them again).
            with dask.config.set({"distributed.scheduler.active-memory-manager.start": False}):
                self.cluster = LocalCluster(
                    n_workers=self.workers or os.cpu_count() or 1,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,  # a task's error is reported by us
                )
            self.client = Client(self.cluster)
        try:
            self.client.wait_for_workers(1, timeout=self.timeout)
            self._check_code()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def _check_code(self) -> None:
        mine = code_version()
        theirs = self.client.run(code_version)
        other = {w: v for w, v in theirs.items() if v != mine}
        if other and self.scheduler:
            raise SweepError(
                [
                    "--scheduler: workers run other sidecar code than this machine (install the "
                    f"same version there, or restart them after an upgrade): "
                    f"{', '.join(sorted(other))} (code {mine} here)"
                ]
            )
        if other:  # our own workers, started from the same files a moment ago
            raise SweepError(
                [
                    "the sidecar's source files changed while the sweep started (an upgrade or "
                    "an edit): run the command again"
                ]
            )

    def slots(self) -> int:
        """Backtests that can run at once: the cluster's threads (as last seen)."""
        if self.client is None:
            return 1
        if self._threads is None or self._seen + 5.0 < time.monotonic():
            info = self.client.scheduler_info().get("workers", {})
            self._threads = max(1, sum(int(w.get("nthreads", 1)) for w in info.values()))
            self._seen = time.monotonic()
        return self._threads

    def data(self, m: MarketData) -> Any:
        """The data's future on the cluster: scattered to every worker once per sweep."""
        if m.digest not in self._scattered:
            self._scattered[m.digest] = self.client.scatter(m, broadcast=True, hash=False)
        return self._scattered[m.digest]

    def run(
        self,
        specs: Sequence[RunSpec],
        datasets: Sequence[Dataset],
        on_result: Callable[[RunSpec, dict[str, Any] | None, str | None], None],
    ) -> None:
        from distributed import as_completed

        if not specs:
            return
        if self.client is None:
            self._start()
        futures = {}
        for spec in specs:
            args = [self.data(m) for m in datasets[spec.dataset]]
            fut = self.client.submit(
                run_backtest,
                spec,
                *args,
                key=f"sidecar-backtest-{spec.key}",
                retries=self.retries,
                pure=False,
            )
            futures[fut.key] = (fut, spec)
        for fut in as_completed([f for f, _ in futures.values()]):
            spec = futures[fut.key][1]
            if fut.status == "finished":
                on_result(spec, fut.result(), None)
            else:
                exc = fut.exception()
                on_result(spec, None, f"{type(exc).__name__}: {exc}")
            fut.release()


def executor_for(
    serial: bool, scheduler: str | None, workers: int | None, retries: int = DEFAULT_RETRIES
) -> SerialExecutor | DaskExecutor:
    if serial:
        return SerialExecutor(retries)
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise SweepError(
            [
                "Dask is not installed: bash scripts/bootstrap.sh dev, or .venv/bin/pip install "
                "-c constraints.txt -e '.[scale]' (Windows: .venv\\Scripts\\pip ...); or run with "
                "--serial, one backtest after the other in this process"
            ]
        ) from None
    return DaskExecutor(scheduler, workers, retries)


class SweepError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def execute(
    specs: Sequence[RunSpec],
    datasets: Sequence[Dataset],
    store: ResultStore,
    executor: SerialExecutor | DaskExecutor,
    progress: bool = False,
    label: str = "backtests",
) -> ExecReport:
    """Run the specs whose results are not stored yet; store each result as it arrives."""
    t0 = time.perf_counter()
    report = ExecReport()
    unique: dict[str, RunSpec] = {}
    for s in specs:
        unique.setdefault(s.key, s)
    have = store.have(unique)
    report.reused = len(have)
    todo = [s for k, s in unique.items() if k not in have]
    bar = Progress(len(todo), progress, label)
    pending = len(todo)

    def on_result(spec: RunSpec, result: dict[str, Any] | None, error: str | None) -> None:
        nonlocal pending
        pending -= 1
        if result is not None:
            store.put(spec.key, result)
            report.computed += 1
        else:
            store.fail(spec.key, error or "failed")
            report.failed.append((spec, error or "failed"))
        bar.update(pending, executor.slots(), result is not None)

    try:
        executor.run(todo, datasets, on_result)
    finally:
        bar.close()
    report.seconds = time.perf_counter() - t0
    return report


# --------------------------------------------------------------------------- sweeps


@dataclass
class SweepPlan:
    grid: Grid
    datasets: list[Dataset]
    account: AccountSpec
    limits: dict[str, Any]  # the [ea] inputs given
    start: int | None = None
    end: int | None = None
    ticks: str = "open"


def specs_for(
    plan: SweepPlan, start: int | None, end: int | None, label: str = ""
) -> list[RunSpec]:
    out = []
    for point, cfg in zip(plan.grid.points, plan.grid.configs, strict=True):
        limits = limits_for(cfg, plan.limits)
        for d, dataset in enumerate(plan.datasets):
            key = run_key(cfg, plan.account, limits, dataset, start, end, plan.ticks)
            out.append(
                RunSpec(key, point.id, d, cfg, plan.account, limits, start, end, plan.ticks, label)
            )
    return out


def short_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's headline numbers under their short names (`walkforward.FIELDS`)."""
    from sidecar.backtest.walkforward import flat_fields

    return {k: v for k, v in flat_fields(summary).items() if "." not in k}


def rows_of(plan: SweepPlan, specs: Iterable[RunSpec], store: ResultStore) -> list[dict[str, Any]]:
    """One flat row per stored run: the swept values, the dataset, the metrics."""
    points = {p.id: p for p in plan.grid.points}
    rows = []
    for s in specs:
        summary = store.summary(s.key)
        if summary is None:
            continue
        row: dict[str, Any] = dict(points[s.point].values)
        row["symbol"] = dataset_name(plan.datasets[s.dataset])
        row["config"] = s.point
        row.update(short_fields(summary))
        rows.append(row)
    return rows


def best_point(
    plan: SweepPlan, specs: Sequence[RunSpec], store: ResultStore, metric: str
) -> tuple[str, float | None]:
    """The configuration with the highest metric, averaged over the datasets (a configuration
    missing a value on any dataset never wins; ties go to the grid's order)."""
    from sidecar.backtest.walkforward import metric_value

    scores: dict[str, list[float | None]] = {}
    for s in specs:
        summary = store.summary(s.key)
        value = None if summary is None else metric_value(summary, metric)
        scores.setdefault(s.point, []).append(value)
    best, best_score = plan.grid.points[0].id, None
    for point in plan.grid.points:
        vals = scores.get(point.id, [])
        if not vals or any(v is None for v in vals):
            continue
        score = sum(v for v in vals if v is not None) / len(vals)
        if best_score is None or score > best_score:
            best, best_score = point.id, score
    return best, best_score


@dataclass
class SweepOutcome:
    report: ExecReport
    rows: list[dict[str, Any]]
    best: str
    best_score: float | None
    files: list[Path]


def run_sweep(
    plan: SweepPlan,
    out: str | Path,
    executor: SerialExecutor | DaskExecutor,
    metric: str = "sharpe",
    store_path: str | Path | None = None,
    progress: bool = False,
    facts: dict[str, str] | None = None,
) -> SweepOutcome:
    """Every grid point on every dataset over [start, end]; DIR/results.csv, DIR/report.html,
    DIR/best.sidecar.toml."""
    from sidecar.backtest import sweep_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = specs_for(plan, plan.start, plan.end)
    with ResultStore(store_path or out / "sweep.sqlite") as store:
        report = execute(specs, plan.datasets, store, executor, progress)
        rows = rows_of(plan, specs, store)
        best, score = best_point(plan, specs, store, metric)
    keys = [*plan.grid.keys, "symbol"]
    files = [out / "results.csv", out / "best.sidecar.toml", out / "report.html"]
    _write_text(files[0], sweep_report.ranked_csv(rows, keys, metric))
    point = next(p for p in plan.grid.points if p.id == best)
    if score is not None:
        _write_text(files[1], best_toml(point.values, metric, score, len(plan.grid.points)))
    else:  # nothing to recommend: no stale recommendation either
        files[1].unlink(missing_ok=True)
        files.remove(files[1])
    sweep_report.write_sweep_report(
        files[2], rows, keys, metric, title="Parameter sweep", facts=facts
    )
    return SweepOutcome(report, rows, best, score, files)


def best_toml(values: dict[str, Any], metric: str, score: float | None, tried: int) -> str:
    from sidecar.backtest.sweep_report import toml_fragment

    shown = "none" if score is None else f"{score:.6g}"
    return (
        f"# The best of {tried} configurations by {metric} ({shown}); merge into sidecar.toml\n"
        + toml_fragment(values, header=False)
    )


def _write_text(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(text)


# --------------------------------------------------------------------------- walk-forward


@dataclass
class WalkForwardOutcome:
    report: ExecReport
    result: Any  # walkforward.WalkForwardResult (None when a backtest failed)
    windows: list[Any]
    chosen: list[int]
    files: list[Path]
    is_specs: list[list[RunSpec]] = field(default_factory=list)  # [window][configuration]
    oos_specs: list[RunSpec] = field(default_factory=list)  # [window]


def data_span(plan: SweepPlan) -> tuple[int, int]:
    """[first, last) UTC a walk-forward may use: from the first bar every symbol has after the
    largest warm-up of the grid, to the end of the last bar every symbol has."""
    from sidecar.backtest.data import TIMEFRAME_SECONDS
    from sidecar.backtest.runner import needed_warmup
    from sidecar.engine.decide import Engine

    warm = max(needed_warmup(c, Engine(c)) for c in plan.grid.configs)
    offset = round(plan.account.server_offset_hours * 3600)
    (dataset,) = plan.datasets
    firsts, lasts = [], []
    for m in dataset:
        times = m.rows[:, 0].astype(np.int64)
        if len(times) <= warm:
            raise SweepError(
                [f"{m.symbol}: {len(times)} bars, not more than the {warm}-bar warm-up"]
            )
        firsts.append(int(times[warm]) - offset)
        lasts.append(int(times[-1]) - offset + TIMEFRAME_SECONDS[m.timeframe])
    first, last = max(firsts), min(lasts)
    if plan.start is not None:
        first = max(first, plan.start)
    if plan.end is not None:
        last = min(last, plan.end + 1)
    return first, last


def walk_forward_sweep(
    plan: SweepPlan,
    out: str | Path,
    executor: SerialExecutor | DaskExecutor,
    in_sample: int,
    out_of_sample: int,
    anchored: bool = False,
    step: int | None = None,
    metric: str = "sharpe",
    store_path: str | Path | None = None,
    progress: bool = False,
    facts: dict[str, str] | None = None,
) -> WalkForwardOutcome:
    """In-sample runs of every window at once; the best per window by `metric` on in-sample
    summaries only; the chosen ones out of sample; stitched and scored by walkforward.py."""
    from sidecar.backtest import sweep_report
    from sidecar.backtest import walkforward as wf

    if len(plan.datasets) != 1:
        raise SweepError(
            [
                "walk-forward: one dataset (one --data/--symbol, or several on one account with "
                f"--portfolio), got {len(plan.datasets)}"
            ]
        )
    first, last = data_span(plan)
    windows = wf.windows(first, last, in_sample, out_of_sample, anchored=anchored, step=step)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    total = ExecReport()
    with ResultStore(store_path or out / "sweep.sqlite") as store:
        is_specs = [
            specs_for(plan, w.is_start, w.is_end - 1, f"is {k + 1}") for k, w in enumerate(windows)
        ]
        rep = execute(
            [s for ss in is_specs for s in ss],
            plan.datasets,
            store,
            executor,
            progress,
            "in-sample",
        )
        _add(total, rep)
        if rep.failed:
            return WalkForwardOutcome(total, None, windows, [], [], is_specs)
        is_summaries = [[store.summary(s.key) for s in ss] for ss in is_specs]
        chosen = [wf.select(sums, metric) for sums in is_summaries]
        oos_specs = []
        for k, (w, j) in enumerate(zip(windows, chosen, strict=True)):
            cfg = plan.grid.configs[j]
            limits = limits_for(cfg, plan.limits)
            start, end = w.oos_start, w.oos_end - 1
            key = run_key(cfg, plan.account, limits, plan.datasets[0], start, end, plan.ticks)
            oos_specs.append(
                RunSpec(
                    key,
                    plan.grid.points[j].id,
                    0,
                    cfg,
                    plan.account,
                    limits,
                    start,
                    end,
                    plan.ticks,
                    f"oos {k + 1}",
                )
            )
        rep = execute(oos_specs, plan.datasets, store, executor, progress, "out-of-sample")
        _add(total, rep)
        if rep.failed:
            return WalkForwardOutcome(total, None, windows, chosen, [], is_specs, oos_specs)
        oos_summaries = [store.summary(s.key) for s in oos_specs]
        oos_curves = []
        for s, w in zip(oos_specs, windows, strict=True):
            initial, pts = store.curve(s.key) or (plan.account.balance, [])
            # A bar opening before the window's end closes by then on a timeframe the window's
            # lengths are a multiple of; a longer bar's close is shown at the window's end.
            oos_curves.append((initial, [(min(t, w.oos_end - 1), e) for t, e in pts]))
    points = [p.values for p in plan.grid.points]
    result = wf.walk_forward(
        windows,
        is_summaries,
        oos_summaries,
        oos_curves,
        points,
        metric,
        plan.account.balance,
        chosen=chosen,
    )
    files = [out / "walkforward.json", out / "results.csv", out / "best.sidecar.toml"]
    _write_text(
        files[0], json.dumps(result.to_dict(), indent=2, allow_nan=False, sort_keys=False) + "\n"
    )
    # The ranked table: every configuration in sample, window by window.
    rows = []
    for k, sums in enumerate(is_summaries):
        for j, summary in enumerate(sums):
            row: dict[str, Any] = dict(plan.grid.points[j].values)
            row["window"] = k + 1
            row["config"] = plan.grid.points[j].id
            row.update(short_fields(summary))
            rows.append(row)
    keys = [*plan.grid.keys, "window"]
    _write_text(files[1], sweep_report.ranked_csv(rows, keys, metric))
    # The configuration to trade next: the one chosen in the last window.
    last_choice = chosen[-1]
    score = wf.metric_value(is_summaries[-1][last_choice], metric)
    _write_text(
        files[2], best_toml(plan.grid.points[last_choice].values, metric, score, len(points))
    )
    html = out / "report.html"
    sweep_report.write_sweep_report(
        html, rows, keys, metric, walkforward=result, title="Walk-forward", facts=facts
    )
    files.append(html)
    return WalkForwardOutcome(total, result, windows, chosen, files, is_specs, oos_specs)


def _add(total: ExecReport, rep: ExecReport) -> None:
    total.computed += rep.computed
    total.reused += rep.reused
    total.failed.extend(rep.failed)
    total.seconds += rep.seconds


__all__ = [
    "DaskExecutor",
    "ExecReport",
    "MarketData",
    "RunSpec",
    "SerialExecutor",
    "SweepError",
    "SweepPlan",
    "code_version",
    "execute",
    "executor_for",
    "market_data",
    "run_backtest",
    "run_key",
    "run_sweep",
    "walk_forward_sweep",
]
