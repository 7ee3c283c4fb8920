"""`sidecar backtest`: load the data and the run's settings, replay, write the report.

Everything a run needs comes from the command line or a small TOML run file (`--run FILE`):

```toml
[account]                 # AccountSpec: balance, leverage, mode, server_offset_hours, ...
balance = 10000
leverage = 100
mode = "hedging"          # or "netting"

[ea]                      # the EA's hard-limit inputs (sidecar.guard.GuardLimits)
max_risk_pct = 2.0

[[market]]                # one per symbol, all on one account
data = "data/EURUSD_H1.csv"
symbol = "EURUSD"
spec = "configs/symbols/example.toml"   # optional: presets cover common symbols
```

Command-line flags override the run file. Problems are reported all at once, naming the field.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sidecar.backtest.model import AccountSpec
from sidecar.guard import GuardLimits, limits_errors

ACCOUNT_FIELDS = {f.name: f for f in dataclasses.fields(AccountSpec)}
LIMIT_FIELDS = {f.name: f for f in dataclasses.fields(GuardLimits)}


class RunFileError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_time(text: str | None, what: str) -> int | None:
    """YYYY-MM-DD[THH:MM[:SS]] (UTC unless it carries an offset) or Unix seconds."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise RunFileError(
            [f"{what}: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or Unix seconds, got {text!r}"]
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp())


def _typed(section: str, fields: dict[str, Any], raw: dict[str, Any], problems: list[str]) -> dict:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            problems.append(f"{section}.{key}: unknown key; expected one of {', '.join(fields)}")
            continue
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        ok = True
        if kind == "float":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "str":
            ok = isinstance(value, str)
        if not ok:
            problems.append(f"{section}.{key}: expected {kind}, got {value!r}")
            continue
        out[key] = value
    return out


def account_problems(a: AccountSpec) -> list[str]:
    p = []
    if not a.balance > 0:
        p.append(f"account.balance: expected a number > 0, got {a.balance}")
    if not 1 <= a.leverage <= 10_000:
        p.append(f"account.leverage: expected 1..10000, got {a.leverage}")
    if a.mode not in ("hedging", "netting"):
        p.append(f"account.mode: expected 'hedging' or 'netting', got {a.mode!r}")
    if not -14 <= a.server_offset_hours <= 14:
        p.append(f"account.server_offset_hours: expected -14..14, got {a.server_offset_hours}")
    if not 0 <= a.stop_out_pct <= a.margin_call_pct:
        p.append(
            f"account.stop_out_pct: expected 0..margin_call_pct ({a.margin_call_pct}), "
            f"got {a.stop_out_pct}"
        )
    return p


@dataclasses.dataclass
class RunSettings:
    account: AccountSpec
    limits: dict[str, Any]  # the [ea] inputs given (GuardLimits fields)
    markets: list[dict[str, Any]]  # {data, symbol, spec, timeframe}


def settings(args: argparse.Namespace) -> RunSettings:
    """The run's account, EA limits and markets from `--run` and the flags; every problem at
    once."""
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if args.run:
        try:
            raw = tomllib.loads(Path(args.run).read_text(encoding="utf-8"))
        except OSError as exc:
            raise RunFileError([f"--run: cannot read {args.run}: {exc.strerror}"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise RunFileError([f"{args.run}: not valid TOML: {exc}"]) from None
        for key in raw:
            if key not in ("account", "ea", "market"):
                problems.append(
                    f"{args.run}: unknown section [{key}]; expected account, ea, market"
                )
    acc = _typed("account", ACCOUNT_FIELDS, dict(raw.get("account") or {}), problems)
    for flag, key in (
        ("balance", "balance"),
        ("leverage", "leverage"),
        ("account_mode", "mode"),
        ("server_offset", "server_offset_hours"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            acc[key] = value
    if args.swap_free:
        acc["swap_free"] = True
    limits = _typed("ea", LIMIT_FIELDS, dict(raw.get("ea") or {}), problems)
    markets: list[dict[str, Any]] = []
    for k, m in enumerate(raw.get("market") or []):
        if not isinstance(m, dict) or not isinstance(m.get("data"), str):
            problems.append(f"market[{k}].data: expected a file path")
            continue
        if not isinstance(m.get("symbol"), str):
            problems.append(f"market[{k}].symbol: expected a symbol name")
            continue
        unknown = set(m) - {"data", "symbol", "spec", "timeframe"}
        if unknown:
            problems.append(f"market[{k}]: unknown key(s) {', '.join(sorted(unknown))}")
        markets.append(dict(m))
    datas, symbols, specs = args.data or [], args.symbol or [], args.symbol_spec or []
    if len(datas) != len(symbols):
        problems.append(
            f"--data/--symbol: give them in pairs (one --symbol per --data), got {len(datas)} "
            f"--data and {len(symbols)} --symbol"
        )
    if specs and len(specs) != len(symbols):
        problems.append(
            f"--symbol-spec: one per --symbol (in the same order) or none, got {len(specs)}"
        )
    for k, (d, s) in enumerate(zip(datas, symbols, strict=False)):
        markets.append({"data": d, "symbol": s, "spec": specs[k] if specs else None})
    if not markets and not problems:
        problems.append("--data/--symbol: nothing to replay; give --data FILE --symbol NAME")
    account = None
    try:
        account = AccountSpec(**acc)
        problems.extend(account_problems(account))
    except TypeError as exc:
        problems.append(f"account: {exc}")
    problems.extend(f"ea.{e}" for e in limits_errors(GuardLimits(**limits)))
    if problems:
        raise RunFileError(problems)
    assert account is not None
    return RunSettings(account, limits, markets)


def progress_bar(total: int, enabled: bool) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm bar on stderr, drawn only when the run lasts more than two seconds."""
    if not enabled:
        return (lambda _n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="bar", unit_scale=True, delay=2.0, file=sys.stderr, leave=False)
    return bar.update, bar.close


def run(args: argparse.Namespace, config: Any) -> int:
    from sidecar.backtest.metrics import summarize
    from sidecar.backtest.news import HistoricalNews
    from sidecar.backtest.report import write_json, write_report
    from sidecar.backtest.runner import Backtest, RunOptions

    try:
        s = settings(args)
        start = parse_time(args.start, "--from")
        end = parse_time(args.end, "--to")
    except RunFileError as exc:
        return _fail(exc.problems)
    if start is not None and end is not None and start > end:
        return _fail([f"--from: must not be after --to ({args.end}), got {args.start}"])
    # The EA's InpDayOffsetHours defaults to the sidecar's broker day, as the README asks.
    limits = GuardLimits(**{"day_offset_hours": config.broker.day_offset_hours, **s.limits})
    unwritable = [p for p in (args.report, args.json) if p and not _writable(p)]
    if unwritable:
        return _fail(
            [f"{p}: cannot write there (no such folder, or no permission)" for p in unwritable]
        )
    markets, problems = load_markets(s, args)
    if problems:
        return _fail(problems)
    news = None
    if args.calendar:
        lo = start if start is not None else min(int(m.data.rows[0][0]) for m in markets) - 86400
        hi = end if end is not None else max(int(m.data.rows[-1][0]) for m in markets) + 86400
        try:
            news = HistoricalNews.from_store(config, args.calendar, lo, hi)
        except ValueError as exc:
            return _fail([str(exc)])
    options = RunOptions(
        start=start,
        end=end,
        warmup_bars=args.warmup_bars,
        limits=limits,
        news=news,
        ticks=args.ticks,
    )
    try:
        bt = Backtest(config, s.account, markets, options)
    except ValueError as exc:
        return _fail([str(exc)])
    costless = _without_spread(markets)
    del markets  # the run keeps its own columns; the loaded rows can go
    update, close = progress_bar(bt.total_bars(), not args.quiet)
    bt.progress = update
    t0 = time.perf_counter()
    try:
        result = bt.run()
    except ValueError as exc:  # bars the broker cannot trade on (e.g. a zero price mid-file)
        return _fail([str(exc)])
    finally:
        close()
    elapsed = time.perf_counter() - t0
    summary = summarize(result)
    for name in costless:
        # A pull file or a plain OHLC CSV has no spread column: trading at bid = ask flatters
        # every strategy (backtesting.py's EURUSD H1: +20.7 % at spread 0, -3.7 % at 8 points).
        warning = (
            f"{name}: the bars carry no spread and none was set: the spread costs nothing in "
            f"this run (set --spread POINTS or spread_points in the symbol spec)"
        )
        summary["notes"].append(warning)
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        write_json(summary, args.json)
    if args.report:
        write_report(result, summary, args.report)
    print(_headline(result, summary, elapsed))
    for path in (args.report, args.json):
        if path:
            print(f"  wrote {path}")
    return 0


def load_markets(s: RunSettings, args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """Each market's bars and symbol spec (`runner.Market`), and every problem at once."""
    from sidecar.backtest.data import DataError, load_series
    from sidecar.backtest.runner import Market
    from sidecar.backtest.symbols import resolve_instrument

    problems: list[str] = []
    if args.spread is not None and args.spread < 0:
        problems.append(f"--spread: expected points >= 0, got {args.spread}")
    markets: list[Market] = []
    for m in s.markets:
        try:
            inst = resolve_instrument(m["symbol"], m.get("spec"))
        except (ValueError, OSError) as exc:
            problems.append(str(exc))
            continue
        if args.spread is not None:
            inst = dataclasses.replace(inst, spread_points=args.spread)
        try:
            data = load_series(
                m["data"],
                symbol=m["symbol"],
                timeframe=m.get("timeframe") or args.timeframe,
                server_offset_hours=s.account.server_offset_hours,
                file_clock=args.data_clock,
            )
        except (DataError, ValueError, OSError) as exc:
            problems.append(str(exc))
            continue
        markets.append(Market(data, inst))
    return markets, problems


def _without_spread(markets: list[Any]) -> list[str]:
    """Symbols whose spread is neither set nor in their bars (every bar's spread 0)."""
    return [
        m.instrument.symbol.name
        for m in markets
        if m.instrument.spread_points is None and not any(row[6] for row in m.data.rows)
    ]


def _headline(result: Any, summary: dict[str, Any], elapsed: float) -> str:
    r, t, d = summary["returns"], summary["trades"], summary["drawdown"]
    rate = result.bars / elapsed if elapsed > 0 else 0.0
    return (
        f"backtest {','.join(result.instruments)} {result.timeframe}: {result.bars} bars in "
        f"{elapsed:.1f} s ({rate:,.0f} bars/s); {t['count']} trades, net profit "
        f"{r['net_profit']} ({r['total_return_pct']} %), max drawdown {d['max_pct']} %, "
        f"Sharpe {r['sharpe']}, profit factor {t['profit_factor']}"
    )


def _writable(path: str) -> bool:
    """Whether an output file can be created, checked before a long run (and not left
    behind)."""
    target = Path(path)
    if target.exists():
        return target.is_file() and os.access(target, os.W_OK)
    parent = target.parent if str(target.parent) else Path(".")
    return parent.is_dir() and os.access(parent, os.W_OK)


def _fail(problems: list[str]) -> int:
    print("backtest errors:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    return 2


def add_parser(sub: Any, add_config: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay history through the live decision code on a simulated MT5 broker",
        description="Replay bars through the same kernel the live sidecar runs, the EA's hard "
        "limits and local management, on a simulated MetaTrader 5 broker; write an HTML report "
        "and a JSON summary.",
    )
    add_config(p)
    add_run_arguments(p)
    p.add_argument("--warmup-bars", type=int, help="bars in hello (default: what the engine needs)")
    p.add_argument("--calendar", help="SQLite file with the calendar (sidecar pull-calendar)")
    p.add_argument("--report", help="write the HTML report here")
    p.add_argument("--json", help="write the JSON summary here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.epilog = (
        "Many backtests: `sidecar backtest sweep --help` (a grid of configurations) and "
        "`sidecar backtest walkforward --help`."
    )
    from sidecar.backtest.sweep_command import add_subcommands

    add_subcommands(p, add_config)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The data, symbols, account and period flags `backtest`, `sweep` and `walkforward` share."""
    p.add_argument("--data", action="append", help="bars file (repeat for several symbols)")
    p.add_argument("--symbol", action="append", help="symbol of each --data, in order")
    p.add_argument(
        "--symbol-spec", action="append", help="TOML symbol spec per --symbol (default: preset)"
    )
    p.add_argument("--timeframe", help="M1..MN1: checked against the bars (inferred otherwise)")
    p.add_argument("--run", help="TOML run file: [account], [ea], [[market]]")
    p.add_argument("--from", dest="start", help="first bar traded, UTC (YYYY-MM-DD)")
    p.add_argument("--to", dest="end", help="last bar replayed, UTC (YYYY-MM-DD)")
    p.add_argument("--balance", type=float, help="initial balance (default 10000)")
    p.add_argument("--leverage", type=int, help="the broker's account leverage (default 100)")
    p.add_argument("--account-mode", choices=("hedging", "netting"), help="default hedging")
    p.add_argument("--server-offset", type=float, help="broker server time = UTC + this many hours")
    p.add_argument("--swap-free", action="store_true", help="no swaps (an Islamic account)")
    p.add_argument(
        "--spread",
        type=int,
        help="fixed spread in points for every symbol (default: the spec's, else each bar's; "
        "pull files carry none)",
    )
    p.add_argument(
        "--data-clock",
        choices=("auto", "utc", "server"),
        default="auto",
        help="the files' clock: server time (MT5 exports) or UTC (pull files); auto tells them "
        "apart",
    )
    p.add_argument(
        "--ticks",
        choices=("open", "ohlc"),
        default="open",
        help="ask the sidecar at each bar's open (default) or at its open, high, low and close; "
        "the EA's management runs at all four either way",
    )
