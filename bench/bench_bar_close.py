"""A bar close across 32 charts, in process: the new-bar tick's cost against a plain tick's.

Under load every chart's bar closes at the same moment, so the sidecar gets one "new-bar" tick
per chart at once and answers them one after another: the last chart waits for all of them. This
drives a real `Sidecar` (a temporary SQLite database, the default configuration, as
`bench/bench_handler.py` builds it) the way `bench/bench_load.py`'s EA emulator does: 4 logins x
8 charts (`EURUSD.<c>`), each introduced by a hello with `--warmup` real EURUSD H1 bars
time-shifted per chart (`sidecar.testing.ea_emulator.Market`); three open positions per account.
Then, per round: every chart's tick carrying its one newly closed bar (the bar close), then
`--plain` ticks per chart without bars. Each tick is timed as the transports run it:
`Sidecar.handle(raw, "zmq")` plus `after_reply()`.

Prints µs per new-bar tick and per plain tick, their ratio (the machine is shared and noisy:
compare ratios), the whole bar close (32 new-bar ticks back to back), the cyclic GC's pauses
during the measured rounds (this process holds more objects than `sidecar serve`, so its full
collections are longer) and a digest of every reply: with the same options, an unchanged digest
across two versions of the code means the same verdicts, bit for bit.

    python bench/bench_bar_close.py [--rounds 300] [--warmup 2000] [--plain 7] [--feeds]
                                    [--profile] [--json out.json]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.config import load_config
from sidecar.engine.strategies import strategy_problems
from sidecar.service.handler import Sidecar
from sidecar.service.runner import build
from sidecar.testing import messages as M
from sidecar.testing.ea_emulator import GMT_OFFSET, T0_SERVER, Market

TERMINALS, CHARTS, STRIDE = 4, 8, 97
LOGIN_BASE = 8_000_000
TARGET_BAR_CLOSE_US = 5000.0


class Chart:
    def __init__(self, login: int, index: int, market: Market) -> None:
        self.login, self.symbol, self.market = login, f"EURUSD.{index}", market


def build_charts(rows: list[list[float]], warmup: int) -> list[Chart]:
    span = len(rows) - warmup
    charts = []
    for t in range(TERMINALS):
        for c in range(CHARTS):
            g = t * CHARTS + c
            offset = warmup + (g * STRIDE) % max(span, 1)  # as the emulator's terminals do
            charts.append(Chart(LOGIN_BASE + t, c, Market(rows, offset, 7)))
    return charts


HELLO_BARS, FILL_BARS = 300, 100  # the EA's warm-up (InpWarmupBars) and EA_MAX_TICK_BARS


def hello_payload(chart: Chart, warmup: int) -> bytes:
    bars = [chart.market.bar(b) for b in range(-warmup, -warmup + min(warmup, HELLO_BARS))]
    msg = M.hello(
        chart.login,
        {**M.EURUSD_SPEC, "name": chart.symbol},
        bars,
        "H1",
        T0_SERVER,
        T0_SERVER - GMT_OFFSET,
        msg_id=f"h-{chart.symbol}",
    )
    return json.dumps(msg, separators=(",", ":")).encode()


def fill_payloads(chart: Chart, warmup: int) -> list[bytes]:
    """Ticks carrying the rest of the warm-up, 100 bars each (a hello is capped at 64 KiB)."""
    out = []
    for a in range(-warmup + min(warmup, HELLO_BARS), 0, FILL_BARS):
        bars = [chart.market.bar(b) for b in range(a, min(a + FILL_BARS, 0))]
        msg = M.tick(
            T0_SERVER,
            1.1,
            1.1001,
            chart.login,
            chart.symbol,
            "H1",
            10_000.0,
            bars=bars,
            gmt=T0_SERVER - GMT_OFFSET,
            msg_id=f"f-{chart.symbol}-{a}",
        )
        out.append(json.dumps(msg, separators=(",", ":")).encode())
    return out


def tick_payload(chart: Chart, k: int, i: int, per_bar: int, bars: bool, n: int) -> bytes:
    """Tick i of bar k; with `bars`, it carries bar k-1 (just closed)."""
    m = chart.market
    bid = m.price(k, i, per_bar)
    ask = round(bid + m.spread, 5)
    server = T0_SERVER + k * 3600 + i * 3600 // per_bar + 1
    # The account's positions: one on each of its first three charts (the emulator's max).
    positions = []
    for c in range(3):
        open_price = round(m.bar(k)[1] - 0.0005 * (c + 1), 5)
        profit = round((bid - open_price) * 0.1 * 100_000, 2)
        pos = M.position(
            10_000 * (chart.login - LOGIN_BASE) + c + 1,
            f"EURUSD.{c}",
            volume=0.1,
            price_open=open_price,
            profit=profit,
            comment=f"sc:{c:016x}",
        )
        pos |= {"sl": round(open_price - 0.01, 5), "tp": round(open_price + 0.02, 5)}
        positions.append(pos)
    equity = round(10_000.0 + sum(p["profit"] for p in positions), 2)
    msg = M.tick(
        server,
        bid,
        ask,
        chart.login,
        chart.symbol,
        "H1",
        equity,
        10_000.0,
        positions,
        [m.bar(k - 1)] if bars else [],
        server - GMT_OFFSET,
        f"t-{n}",
    )
    msg["time"]["msc"] = server * 1000
    return json.dumps(msg, separators=(",", ":")).encode()


def rounds_of(
    charts: list[Chart], rounds: int, plain: int
) -> list[tuple[list[bytes], list[bytes]]]:
    """Per round (bar k): the 32 new-bar ticks, then `plain` ticks per chart (interleaved)."""
    out, n, per_bar = [], 0, plain + 1
    for k in range(rounds):
        closes = []
        for ch in charts:
            closes.append(tick_payload(ch, k, 0, per_bar, True, n))
            n += 1
        rest = []
        for i in range(1, per_bar):
            for ch in charts:
                rest.append(tick_payload(ch, k, i, per_bar, False, n))
                n += 1
        out.append((closes, rest))
    return out


def make_sidecar(db: Path) -> Sidecar:
    config = load_config(
        None, env={}, overrides={"server": {"db": str(db)}}, extra_checks=strategy_problems
    )
    return build(config)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=300, help="bar closes measured")
    p.add_argument("--skip", type=int, default=20, help="bar closes run first, unmeasured")
    p.add_argument(
        "--warmup",
        type=int,
        default=2000,
        help="bars per chart before the first bar close (a 300-bar hello, then ticks of 100)",
    )
    p.add_argument("--plain", type=int, default=7, help="plain ticks per chart per bar")
    p.add_argument("--feeds", action="store_true", help="start the feed service (as serve does)")
    p.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() after the warm-up (what a service could do once started): full "
        "collections then skip every object alive at that point",
    )
    p.add_argument("--profile", action="store_true", help="cProfile the new-bar ticks afterwards")
    p.add_argument("--profile-rounds", type=int, default=100)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.plain < 1 or args.warmup < 1 or args.skip < 0:
        p.error("--rounds, --plain and --warmup must be >= 1, --skip >= 0")

    rows = M.eurusd_rows()
    total = args.skip + args.rounds + (args.profile_rounds if args.profile else 0)
    charts = build_charts(rows, args.warmup)
    payloads = rounds_of(charts, total, args.plain)
    tmp = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    sidecar = make_sidecar(tmp / "bench.db")
    feeds = None
    digest = hashlib.sha256()
    try:
        if args.feeds:
            from sidecar.service.feeds import FeedService

            feeds = FeedService(sidecar, clock=lambda: float(T0_SERVER - GMT_OFFSET)).start()
        for ch in charts:
            reply, code = sidecar.handle(hello_payload(ch, args.warmup), "zmq")
            sidecar.after_reply()
            if code is not None:
                print(f"bench_bar_close: error: hello refused: {reply!r}", file=sys.stderr)
                return 1
            for raw in fill_payloads(ch, args.warmup):
                reply, code = sidecar.handle(raw, "zmq")
                sidecar.after_reply()
                if code is not None:
                    print(f"bench_bar_close: error: warm-up: {reply!r}", file=sys.stderr)
                    return 1

        clock = time.perf_counter_ns

        def run(raws: list[bytes], out: list[float] | None) -> int:
            t_all = clock()
            for raw in raws:
                t0 = clock()
                reply, code = sidecar.handle(raw, "zmq")
                sidecar.after_reply()  # the bookkeeping the transports run after replying
                if out is not None:
                    out.append((clock() - t0) / 1000.0)
                if code is not None:
                    raise RuntimeError(f"handler answered {code}: {reply[:200]!r}")
                digest.update(reply)
            return clock() - t_all

        new_bar: list[float] = []
        plain: list[float] = []
        closes: list[float] = []
        pauses: dict[int, list[float]] = defaultdict(list)  # GC generation -> pauses (µs)
        started = [0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                started[0] = clock()
            else:
                pauses[info["generation"]].append((clock() - started[0]) / 1000.0)

        for r, (bar_ticks, rest) in enumerate(payloads[: args.skip + args.rounds]):
            measured = r >= args.skip
            if r == args.skip:
                if args.gc_freeze:
                    gc.freeze()
                gc.callbacks.append(on_gc)
            ns = run(bar_ticks, new_bar if measured else None)
            run(rest, plain if measured else None)
            if measured:
                closes.append(ns / 1000.0)
        gc.callbacks.remove(on_gc)
        gc.unfreeze()

        nb, pl, bc = (np.asarray(x) for x in (new_bar, plain, closes))
        ratio = float(np.median(nb) / np.median(pl))
        stats: dict[str, Any] = {
            "new_bar_us": {
                "median": float(np.median(nb)),
                "p90": float(np.percentile(nb, 90)),
                "mean": float(nb.mean()),
            },
            "plain_us": {
                "median": float(np.median(pl)),
                "p90": float(np.percentile(pl, 90)),
                "mean": float(pl.mean()),
            },
            "bar_close_us": {
                "median": float(np.median(bc)),
                "p90": float(np.percentile(bc, 90)),
                "max": float(bc.max()),
            },
            "ratio_median": ratio,
            "ratio_mean": float(nb.mean() / pl.mean()),
            "bar_close_in_plain_ticks": float(np.median(bc) / np.median(pl)),
            "digest": digest.hexdigest()[:16],
        }
        print(
            f"{len(charts)} charts, {args.warmup:,} bars each, {args.rounds} bar closes measured "
            f"({args.skip} skipped), {args.plain} plain ticks per chart per bar"
            + (", feed service on" if args.feeds else "")
            + (", GC frozen after the warm-up" if args.gc_freeze else "")
        )
        for name, key, last in (
            ("new-bar tick", "new_bar_us", "mean"),
            ("plain tick", "plain_us", "mean"),
            (f"bar close ({len(charts)} ticks)", "bar_close_us", "max"),
        ):
            s = stats[key]
            print(
                f"{name:<22} median {s['median']:8.1f}  p90 {s['p90']:8.1f}  "
                f"{last} {s[last]:9.1f} µs"
            )
        print(
            "GC pauses: "
            + (
                ", ".join(
                    f"gen{g} {len(v)} x median {np.median(v):.0f} µs (max {max(v):.0f})"
                    for g, v in sorted(pauses.items())
                )
                or "none"
            )
        )
        print(
            f"new-bar / plain: median {ratio:.2f}x, mean {stats['ratio_mean']:.2f}x | "
            f"bar close = {stats['bar_close_in_plain_ticks']:.0f} plain ticks (target in situ "
            f"{TARGET_BAR_CLOSE_US / 1000:.0f} ms) | replies digest {stats['digest']}"
        )
        if args.json:
            args.json.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")

        if args.profile:
            prof = cProfile.Profile()
            rest_rounds = payloads[args.skip + args.rounds :]
            n = 0
            for bar_ticks, rest in rest_rounds:
                prof.enable()
                run(bar_ticks, None)
                prof.disable()
                n += len(bar_ticks)
                run(rest, None)
            buf = io.StringIO()
            st = pstats.Stats(prof, stream=buf).strip_dirs()
            st.sort_stats("cumulative").print_stats(45)
            st.sort_stats("tottime").print_stats(30)
            print(f"\ncProfile over {n} new-bar ticks (profiler overhead inflates times):")
            print(buf.getvalue())
    finally:
        if feeds is not None:
            feeds.stop()
        sidecar.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
