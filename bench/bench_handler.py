"""In-process cost of `Sidecar.handle` per tick against `protocol.decode` + `encode` alone.

No sockets, no second process: this isolates the handler (validation, the engine's gates and
sizing, state, metrics, the journal queue) from transport noise. The sidecar is real: a
temporary SQLite database, the default configuration, a hello with 300 real EURUSD H1 bars;
every tick carries one open position. Baseline and handler are timed in alternating blocks.

    python bench/bench_handler.py [--ticks 20000] [--block 1000] [--cold-kib 4096]
                                  [--calendar 3000] [--profile]

`--calendar N` starts the feed service (as `sidecar serve` does) over N high-impact EUR and USD
calendar events on file, none of them near the ticks: the news gate's cost on a long calendar.
`--profile` then runs cProfile over the handler loop and prints where the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.config import load_config
from sidecar.engine.strategies import strategy_problems
from sidecar.protocol import Verdict, decode, decode_reply, encode
from sidecar.service.feeds import FeedService
from sidecar.service.handler import Sidecar
from sidecar.service.runner import build
from sidecar.testing import messages as M

WARM_BARS = 300


def make_sidecar(db: Path) -> Sidecar:
    config = load_config(
        None, env={}, overrides={"server": {"db": str(db)}}, extra_checks=strategy_problems
    )
    return build(config)


def tick_payloads(bars: list[list[float]], n: int) -> list[bytes]:
    last = bars[-1]
    t0_msc = (int(last[0]) + 3601) * 1000
    rng = np.random.default_rng(7)
    mid = float(last[4])
    open_price = round(mid - 0.0012, 5)
    out = []
    for i in range(n):
        msc = t0_msc + 100 * i
        mid = round(mid + float(rng.normal(0.0, 0.00002)), 5)
        profit = round((mid - open_price) * 0.1 * 100_000, 2)
        pos = M.position(501, price_open=open_price, profit=profit, comment="sc:9f2c1a7b")
        pos |= {"sl": round(open_price - 0.003, 5), "tp": round(open_price + 0.006, 5)}
        msg = M.tick(
            msc // 1000,
            mid,
            round(mid + 0.00007, 5),
            equity=round(10_000.0 + profit, 2),
            balance=10_000.0,
            positions=[pos],
            msg_id=f"t-{i}",
        )
        msg["time"]["msc"] = msc
        out.append(json.dumps(msg, separators=(",", ":")).encode())
    return out


def load_calendar(sidecar: Sidecar, n: int, first_tick: int) -> FeedService:
    """N high-impact EUR/USD events over ten days around the ticks, none within six hours of
    them (the verdicts stay the same; only the gate's search grows), and the feed service."""
    rng = np.random.default_rng(3)
    times = first_tick + rng.integers(-5 * 86400, 5 * 86400, size=4 * n)
    times = [int(t) // 60 * 60 for t in times if not -6 * 3600 < t - first_tick < 6 * 3600][:n]
    events = [
        {
            "id": f"bench-{i}",
            "time_gmt": t,
            "currency": "USD" if i % 2 else "EUR",
            "importance": "high",
            "name": f"Event {i}",
        }
        for i, t in enumerate(times)
    ]
    sidecar.store.upsert_calendar("mt5", events, first_tick)
    return FeedService(sidecar, clock=lambda: float(first_tick)).start()


def timed(
    fn: Callable[[bytes], Any], payloads: list[bytes], between: Callable[[], None] | None = None
) -> list[float]:
    clock = time.perf_counter_ns
    out = []
    for raw in payloads:
        if between is not None:
            between()  # untimed: what else runs between two ticks
        t0 = clock()
        fn(raw)
        out.append((clock() - t0) / 1000.0)
    return out


def summary(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples)
    return {
        "n": len(a),
        "median_us": float(np.median(a)),
        "p99_us": float(np.percentile(a, 99)),
        "mean_us": float(a.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ticks", type=int, default=20000, help="measured ticks per side")
    p.add_argument("--block", type=int, default=1000, help="ticks per alternating block")
    p.add_argument("--profile", action="store_true", help="cProfile the handler loop afterwards")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument(
        "--cold-kib",
        type=int,
        default=0,
        help="touch this many KiB between ticks (untimed) so caches are cold, as they are live "
        "when the terminal and other programs run between two ticks; 0 = hot loop",
    )
    p.add_argument(
        "--calendar",
        type=int,
        default=0,
        metavar="N",
        help="start the feed service with N high-impact calendar events on file",
    )
    args = p.parse_args(argv)
    if args.ticks < 1 or args.block < 1 or args.calendar < 0:
        p.error("--ticks and --block must be >= 1, --calendar >= 0")

    bars = M.eurusd_rows()[:WARM_BARS]
    tmp = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    sidecar = make_sidecar(tmp / "bench.db")
    feeds = None
    try:
        if args.calendar:
            feeds = load_calendar(sidecar, args.calendar, int(bars[-1][0]) + 3601)
        hello = M.hello(bars=bars, server=int(bars[-1][0]) + 3600)
        reply, code = sidecar.handle(json.dumps(hello).encode())
        if code is not None:
            print(f"bench_handler: error: hello refused: {reply!r}", file=sys.stderr)
            return 1
        payloads = tick_payloads(bars, 3 * args.ticks + 2001)
        first, code = sidecar.handle(payloads[0])
        verdict = decode_reply(first)
        if code is not None or not isinstance(verdict, Verdict):
            print(f"bench_handler: error: no verdict: {first!r}", file=sys.stderr)
            return 1

        def baseline(raw: bytes) -> bytes:
            decode(raw)
            return encode(verdict)

        def handler(raw: bytes) -> bytes:
            out, err = sidecar.handle(raw)
            if err is not None:
                raise RuntimeError(f"handler answered {err}: {out[:200]!r}")
            sidecar.after_reply()  # the bookkeeping the transports run after replying counts too
            return out

        junk = bytearray(max(args.cold_kib, 0) * 1024)

        def evict() -> None:
            for i in range(0, len(junk), 64):  # one write per cache line
                junk[i] = (junk[i] + 1) & 0xFF

        between = evict if args.cold_kib > 0 else None
        feed = iter(payloads[1:])
        for fn in (baseline, handler):  # warm-up
            timed(fn, [next(feed) for _ in range(1000)])
        samples: dict[str, list[float]] = {"decode+encode": [], "Sidecar.handle": []}
        sides = (("decode+encode", baseline), ("Sidecar.handle", handler))
        rounds = 0
        while len(samples["Sidecar.handle"]) < args.ticks:
            n = min(args.block, args.ticks - len(samples["Sidecar.handle"]))
            for name, fn in sides if rounds % 2 == 0 else sides[::-1]:
                samples[name].extend(timed(fn, [next(feed) for _ in range(n)], between))
            rounds += 1

        stats = {k: summary(v) for k, v in samples.items()}
        base, full = stats["decode+encode"], stats["Sidecar.handle"]
        ratio = {
            "median": full["median_us"] / base["median_us"],
            "p99": full["p99_us"] / base["p99_us"],
        }
        print(
            f"{args.ticks} ticks per side, blocks of {args.block}, one open position per tick"
            + (f", {args.cold_kib} KiB touched between ticks" if args.cold_kib else ", hot loop")
            + (f", {args.calendar} calendar events on file" if args.calendar else "")
        )
        print(f"{'':<16}{'median':>10}{'p99':>10}{'mean':>10}   (µs)")
        for name, s in stats.items():
            print(f"{name:<16}{s['median_us']:>10.1f}{s['p99_us']:>10.1f}{s['mean_us']:>10.1f}")
        print(
            f"handler: median {full['median_us']:.1f}us p99 {full['p99_us']:.1f}us | "
            f"decode+encode median {base['median_us']:.1f}us p99 {base['p99_us']:.1f}us | "
            f"ratio median {ratio['median']:.2f} p99 {ratio['p99']:.2f}"
        )
        if args.json:
            out = {"ticks": args.ticks, "block": args.block, "stats": stats, "ratio": ratio}
            args.json.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")

        if args.profile:
            rest = list(feed)[: args.ticks]
            prof = cProfile.Profile()
            prof.enable()
            for raw in rest:
                handler(raw)
            prof.disable()
            buf = io.StringIO()
            st = pstats.Stats(prof, stream=buf).strip_dirs()
            st.sort_stats("cumulative").print_stats(40)
            st.sort_stats("tottime").print_stats(25)
            print(f"\ncProfile over {len(rest)} handler calls (profiler overhead inflates times):")
            print(buf.getvalue())
    finally:
        if feeds is not None:
            feeds.stop()
        sidecar.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
