"""`sidecar` command line: serve, init, config show, check-config, verdict, schema, bias-check,
pull, pull-calendar, backtest (and `backtest sweep` / `backtest walkforward`), backup, alert-relay.

Exit codes: 0 success; 2 a usage or input error (bad arguments, an invalid configuration, a file
that cannot be read); 1 the command ran and failed (`bias-check`: decisions differ; `serve`: a
part could not start; `init`: the file already exists; `backup`: the copy failed its integrity
check).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sidecar.config import ConfigError, load_config
from sidecar.engine.strategies import strategy_problems

EXIT_USAGE = 2
NO_EODHD_TOKEN = (
    "error: no EODHD API token: set the environment variable EODHD_API_TOKEN, or "
    "feeds.eodhd_token in the file given with --config"
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    from sidecar.protocol import PROTOCOL_VERSION

    try:
        number = dist_version("mt5-sidecar")
    except PackageNotFoundError:
        number = "unknown"
    python = ".".join(str(n) for n in sys.version_info[:3])
    return f"sidecar {number} (protocol v{PROTOCOL_VERSION}, Python {python})"


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    server: dict[str, Any] = {}
    for name in ("zmq", "http", "db"):
        value = getattr(args, name, None)
        if value is not None:
            server[name] = value
    return {"server": server} if server else {}


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return load_config(args.config, overrides=_overrides(args), extra_checks=strategy_problems)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run until stopped. Every start-up failure, an invalid configuration included, is one
    `service.start_failed` JSON log line and a non-zero exit code."""
    from sidecar.service.logs import setup_logging, stop_logging
    from sidecar.service.runner import EXIT_CONFIG, serve, start_failed

    try:
        config = _load(args)
    except ConfigError as exc:
        setup_logging("INFO")
        try:
            return start_failed(
                "config",
                args.config or "",
                "; ".join(exc.problems),
                EXIT_CONFIG,
                problems=exc.problems,
            )
        finally:
            stop_logging()
    return serve(config)


def cmd_init(args: argparse.Namespace) -> int:
    """Write DIR/sidecar.toml, the documented defaults commented out; never overwrite."""
    from sidecar.config_text import write_config

    try:
        path = write_config(args.dir)
    except FileExistsError as exc:
        print(
            f"error: {exc.filename} already exists; not overwritten (edit it, or move it away "
            "and run `sidecar init` again)",
            file=sys.stderr,
        )
        return 1
    shown = str(path)
    print(f"wrote {shown}: every setting commented out with its default; edit what you need, then")
    print(f"  sidecar check-config {shown}")
    print(f"  sidecar serve --config {shown}")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    """The configuration `serve` would use: file, then environment; secrets masked."""
    from sidecar.config import env_sources
    from sidecar.config_text import mask_secrets, render_toml

    config = load_config(args.config, extra_checks=strategy_problems)
    values = mask_secrets(config.model_dump(mode="json"))
    if args.format == "json":
        print(json.dumps(values, indent=2, ensure_ascii=False))
        return 0
    sources = env_sources()
    print(f"# effective configuration: {args.config or 'defaults (no --config file)'}")
    print(f"# environment overrides: {', '.join(sources) if sources else 'none'}")
    print('# secrets are shown as "***" when set')
    print()
    sys.stdout.write(render_toml(values))
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
    """Print the JSON Schemas (one object keyed by message type); `--out DIR` writes files."""
    from sidecar.schema import all_schemas, write_schemas

    if args.out is None:
        print(json.dumps(all_schemas(), indent=2, sort_keys=True))
        return 0
    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def cmd_bias_check(args: argparse.Namespace) -> int:
    """Re-run the strategy on truncated histories and warm-ups.

    Exit 0: every decision the same; 1: some differ; 2: usage or input error.
    """
    from sidecar.engine.bars import Bars
    from sidecar.engine.bias import check, summary
    from sidecar.engine.decide import Engine

    if args.bars < 1:
        print(f"error: --bars: expected a positive number, got {args.bars}", file=sys.stderr)
        return EXIT_USAGE
    overrides = {"strategy": {"name": args.strategy}} if args.strategy else {}
    config = load_config(args.config, overrides=overrides, extra_checks=strategy_problems)
    if args.csv:
        from sidecar.backtest.bars_csv import read_bars_csv

        try:
            rows = read_bars_csv(args.csv)
        except (OSError, ValueError) as exc:
            print(f"error: --csv: {exc}", file=sys.stderr)
            return EXIT_USAGE
        source = args.csv
    else:
        rows, source = _default_bias_bars()
    engine = Engine(config)
    need = engine.strategy.min_bars
    if len(rows) < need + 1:
        print(
            f"error: --csv: {len(rows)} bars; strategy {engine.strategy.name} needs more than "
            f"{need}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(f"data: {source} ({len(rows)} bars)")
    report = check(engine, Bars.from_rows(rows), last=args.bars)
    print(summary(report))
    return 0 if report.ok else 1


def _default_bias_bars() -> tuple[list[list[float]], str]:
    """backtesting.py's real EURUSD H1 when installed (`bash scripts/test.sh`), else generated
    bars, so the check works after the runtime-only install too."""
    try:
        from sidecar.testing.messages import eurusd_rows

        return eurusd_rows(), "backtesting.py's EURUSD H1"
    except ImportError:
        from sidecar.sample_bars import sample_rows

        return (
            sample_rows(),
            "generated H1 bars (backtesting.py is not installed; --csv FILE checks your own)",
        )


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
    if not config.feeds.eodhd_token.strip():
        print(NO_EODHD_TOKEN, file=sys.stderr)
        return EXIT_USAGE
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
    if not f.eodhd_token.strip():
        print(NO_EODHD_TOKEN, file=sys.stderr)
        return EXIT_USAGE
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


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of the live database (server.db or --db) at PATH, while serve runs."""
    from sidecar.backup import BackupError, backup_database, summary

    db = str(_load(args).server.db)
    if db == ":memory:" or db.startswith("file:"):
        print(
            f"error: server.db is {db!r}: not a file to back up (give --db FILE)", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        result = backup_database(db, args.path, force=args.force)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(summary(result))
    return 0


def cmd_alert_relay(args: argparse.Namespace) -> int:
    """The alert relay alone (Alertmanager -> DingTalk/Slack) on alerts.http, until stopped."""
    from sidecar.service.alerts import run
    from sidecar.service.logs import setup_logging, stop_logging
    from sidecar.service.runner import EXIT_CONFIG, start_failed

    overrides: dict[str, dict[str, Any]] = {"alerts": {}}
    if args.http is not None:
        overrides["alerts"]["http"] = args.http
    if args.db is not None:
        overrides["alerts"]["db"] = args.db
    try:
        config = load_config(args.config, overrides=overrides, extra_checks=strategy_problems)
    except ConfigError as exc:
        setup_logging("INFO")
        try:
            return start_failed(
                "config", args.config or "", "; ".join(exc.problems), EXIT_CONFIG,
                problems=exc.problems,
            )  # fmt: skip
        finally:
            stop_logging()
    return run(config)


def cmd_backtest(args: argparse.Namespace) -> int:
    from sidecar.backtest.command import run

    return run(args, _load(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sidecar", description="MT5 Sidecar: risk-managed verdicts for an MQL5 EA"
    )
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", required=True)

    def add_common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML configuration file (defaults apply without one)")
        p.add_argument("--db", help="SQLite file (overrides server.db)")

    p = sub.add_parser("serve", help="run the ZeroMQ and HTTP transports")
    add_common(p)
    p.add_argument("--zmq", help="ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555 ('' disables)")
    p.add_argument("--http", help="HOST:PORT for the REST API, e.g. 127.0.0.1:8765 ('' disables)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "init", help="write a commented sidecar.toml (every default) into DIR; never overwrites"
    )
    p.add_argument("dir", nargs="?", default=".", help="folder (default: the current one)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("config", help="configuration: `config show` prints the effective one")
    config_sub = p.add_subparsers(dest="config_command", required=True)
    p = config_sub.add_parser(
        "show",
        help="print the configuration serve would use (file, then environment), secrets masked",
    )
    p.add_argument("--config", help="TOML configuration file (defaults apply without one)")
    p.add_argument("--format", choices=("toml", "json"), default="toml", help="default: toml")
    p.set_defaults(func=cmd_config_show)

    p = sub.add_parser(
        "check-config", help="validate a configuration file, reporting every problem"
    )
    p.add_argument("config", nargs="?", help="TOML configuration file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("verdict", help="answer JSON requests read from stdin (one per line)")
    add_common(p)
    p.set_defaults(func=cmd_verdict)

    p = sub.add_parser(
        "schema", help="print the JSON Schemas of every message (--out DIR writes files)"
    )
    p.add_argument("--out", help="write one <type>.schema.json per message into this folder")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser(
        "bias-check",
        help="re-run a strategy on truncated histories and warm-ups; exit 0 if every decision "
        "is the same, 1 if any differs, 2 on a usage or input error",
    )
    p.add_argument("--config", help="TOML configuration file (strategy parameters)")
    p.add_argument("--strategy", help="strategy name (default: the configured one)")
    p.add_argument(
        "--csv",
        help="bars as time,open,high,low,close,volume (default: backtesting.py's EURUSD H1 "
        "when installed, else generated H1 bars)",
    )
    p.add_argument("--bars", type=int, default=500, help="check the newest N bars (default 500)")
    p.set_defaults(func=cmd_bias_check)

    p = sub.add_parser("pull", help="download EODHD bars into CSV files (resumable)")
    p.add_argument(
        "--config",
        help="TOML configuration file ([feeds] eodhd_token or EODHD_API_TOKEN, base URL, budget)",
    )
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

    p = sub.add_parser(
        "backup",
        help="copy the live database (server.db or --db) to PATH while the sidecar runs",
    )
    add_common(p)
    p.add_argument("path", help="the backup file to write (never overwritten without --force)")
    p.add_argument("--force", action="store_true", help="replace PATH if it exists")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "alert-relay",
        help="relay Alertmanager webhooks to DingTalk/Slack alone ([alerts] targets; `serve` "
        "also relays at POST /alerts/alertmanager)",
    )
    p.add_argument("--config", help="TOML configuration file with [[alerts.dingtalk]] tables")
    p.add_argument("--http", help="HOST:PORT to listen on (overrides alerts.http)")
    p.add_argument("--db", help="the relay's SQLite file (overrides alerts.db)")
    p.set_defaults(func=cmd_alert_relay)

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
