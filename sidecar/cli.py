"""`sidecar` command line: serve, check-config, verdict, schema, bias-check, pull, backtest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sidecar.config import ConfigError, load_config
from sidecar.engine.strategies import strategy_problems


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    server: dict[str, Any] = {}
    for name in ("zmq", "zmq_engine", "http", "db"):
        value = getattr(args, name, None)
        if value is not None:
            server[name] = value
    return {"server": server} if server else {}


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return load_config(args.config, overrides=_overrides(args), extra_checks=strategy_problems)


def cmd_serve(args: argparse.Namespace) -> int:
    from sidecar.service.runner import serve

    config = _load(args)
    serve(config)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args)
    print(
        f"{args.config or '(defaults)'}: OK "
        f"(strategy {config.strategy.name}, db {config.server.db})"
    )
    return 0


def cmd_verdict(args: argparse.Namespace) -> int:
    """Answer JSON requests from stdin, one per line (e.g. a hello, then ticks)."""
    from sidecar.service.runner import build

    overrides = _overrides(args)
    overrides.setdefault("server", {}).setdefault("db", ":memory:")
    config = load_config(args.config, overrides=overrides, extra_checks=strategy_problems)
    sidecar = build(config)
    failed = False
    try:
        text = sys.stdin.buffer.read()
        lines = [ln for ln in text.splitlines() if ln.strip()] or [text]
        for line in lines:
            reply, code = sidecar.handle(line, "cli", bearer=config.server.token or None)
            sys.stdout.write(reply.decode() + "\n")
            sidecar.after_reply()
            failed |= code is not None
    finally:
        sidecar.close()
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from sidecar.schema import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def cmd_bias_check(args: argparse.Namespace) -> int:
    """Re-run the strategy on truncated histories and warm-ups; exit 1 on any difference."""
    from sidecar.engine.bars import Bars
    from sidecar.engine.bias import check, summary
    from sidecar.engine.decide import Engine

    overrides = {"strategy": {"name": args.strategy}} if args.strategy else {}
    config = load_config(args.config, overrides=overrides, extra_checks=strategy_problems)
    if args.csv:
        from sidecar.backtest.bars_csv import read_bars_csv

        try:
            rows = read_bars_csv(args.csv)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        try:
            from sidecar.testing.messages import eurusd_rows

            rows = eurusd_rows()
        except ImportError:
            print("error: backtesting.py is not installed; pass --csv FILE", file=sys.stderr)
            return 2
    report = check(Engine(config), Bars.from_rows(rows), last=args.bars)
    print(summary(report))
    return 0 if report.ok else 1


def _eodhd_client(config: Any) -> Any:
    from sidecar.feeds.budget import CallBudget
    from sidecar.feeds.eodhd import EodhdClient

    f = config.feeds
    return EodhdClient(
        f.eodhd_token or None,
        f.eodhd_base_url,
        timeout=(min(5.0, f.request_timeout_seconds), f.request_timeout_seconds),
        max_retries=f.max_retries,
        budget=CallBudget(f.budget_daily_calls, f.budget_per_minute),
    )


def cmd_pull(args: argparse.Namespace) -> int:
    """Bars from EODHD into one CSV per symbol and interval (resumable)."""
    from sidecar.feeds.eodhd import EodhdError
    from sidecar.feeds.pull import pull_bars

    config = load_config(args.config)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not symbols:
        print("error: --symbols: expected e.g. EURUSD.FOREX,AAPL.US", file=sys.stderr)
        return 2
    try:
        with _eodhd_client(config) as client:
            results = pull_bars(
                client, symbols, args.interval, args.start, args.end, args.out,
                progress=not args.quiet,
            )  # fmt: skip
    except (EodhdError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    for r in results.values():
        resumed = f" (resumed after {r.resumed_after})" if r.resumed_after is not None else ""
        print(f"{r.symbol} {r.interval}: +{r.bars_written} bars -> {r.path}{resumed}")
    return 0


def cmd_pull_calendar(args: argparse.Namespace) -> int:
    """Historical economic events into the SQLite calendar table (backtests replay them)."""
    import time

    from sidecar.feeds.eodhd import EodhdError
    from sidecar.feeds.pull import pull_calendar
    from sidecar.service.feeds import calendar_row, impact_rules
    from sidecar.store import Store

    config = _load(args)
    f = config.feeds
    countries = [c.strip().upper() for c in (args.country or "").split(",") if c.strip()]
    try:
        with _eodhd_client(config) as client:
            events = pull_calendar(
                client, args.start, args.end, countries=countries or None,
                rules=impact_rules(f.high_impact, f.medium_impact),
            )  # fmt: skip
    except (EodhdError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ValueError) else 1
    rows = [calendar_row(ev) for ev in events if ev.get("currency")]
    store = Store(config.server.db, config.journal.retention_rows)
    try:
        n = store.upsert_calendar("eodhd", rows, int(time.time()))
    finally:
        store.close()
    high = sum(1 for r in rows if r["importance"] == "high")
    print(f"{n} events ({high} high impact) {args.start}..{args.end} -> {config.server.db}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from sidecar.backtest.command import run

    return run(args, _load(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sidecar", description="MT5 Sidecar: risk-managed verdicts for an MQL5 EA"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML configuration file (defaults apply without one)")
        p.add_argument("--db", help="SQLite file (overrides server.db)")

    p = sub.add_parser("serve", help="run the ZeroMQ and HTTP transports")
    add_common(p)
    p.add_argument("--zmq", help="ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555 ('' disables)")
    p.add_argument(
        "--zmq-engine",
        choices=("builtin", "libzmq"),
        help="builtin (default): the sidecar speaks ZeroMQ's wire protocol itself over tcp://; "
        "libzmq: a libzmq REP socket (also ipc://)",
    )
    p.add_argument("--http", help="HOST:PORT for the REST API, e.g. 127.0.0.1:8765 ('' disables)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "check-config", help="validate a configuration file, reporting every problem"
    )
    p.add_argument("config", nargs="?", help="TOML configuration file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("verdict", help="answer JSON requests read from stdin (one per line)")
    add_common(p)
    p.set_defaults(func=cmd_verdict)

    p = sub.add_parser("schema", help="write the JSON Schemas of every message")
    p.add_argument("--out", default="shared_schema", help="output folder")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser(
        "bias-check",
        help="re-run a strategy on truncated histories and warm-ups; exit 1 if decisions differ",
    )
    p.add_argument("--config", help="TOML configuration file (strategy parameters)")
    p.add_argument("--strategy", help="strategy name (default: the configured one)")
    p.add_argument(
        "--csv",
        help="bars as time,open,high,low,close,volume (default: backtesting.py's EURUSD H1)",
    )
    p.add_argument("--bars", type=int, default=500, help="check the newest N bars (default 500)")
    p.set_defaults(func=cmd_bias_check)

    p = sub.add_parser("pull", help="download EODHD bars into CSV files (resumable)")
    p.add_argument("--config", help="TOML configuration file ([feeds] token, base URL, budget)")
    p.add_argument("--symbols", required=True, help="EODHD tickers, e.g. EURUSD.FOREX,AAPL.US")
    p.add_argument("--interval", required=True, choices=["1m", "5m", "1h", "d"])
    p.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD (UTC)")
    p.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD (UTC, whole day)")
    p.add_argument("--out", default="data", help="output folder (default: data)")
    p.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser(
        "pull-calendar", help="store EODHD economic events in the SQLite calendar table"
    )
    add_common(p)
    p.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD (UTC)")
    p.add_argument("--to", dest="end", required=True, help="YYYY-MM-DD (UTC)")
    p.add_argument("--country", help="ISO-2 countries, e.g. US,EU,GB (default: all)")
    p.set_defaults(func=cmd_pull_calendar)

    from sidecar.backtest.command import add_parser as add_backtest

    add_backtest(sub, lambda p: p.add_argument("--config", help="TOML configuration file"))
    sub.choices["backtest"].set_defaults(func=cmd_backtest)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print("configuration errors:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
