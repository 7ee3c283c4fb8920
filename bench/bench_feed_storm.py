"""Verdict round trips while the EODHD feed storms, as a ratio against a calm feed, same run.

Two real `sidecar serve` processes on loopback, each polling its own stand-in EODHD server:

- calm:  the stand-in answers normally; the pollers refresh at their default intervals;
- storm: every request to the stand-in gets 429 (Retry-After 1 s) or a reply slower than the
         read timeout, alternating; the pollers refresh every second with retries, and the
         budget is generous, so the feed threads stay as busy as the budget allows.

Both sidecars are warmed with the same hello (300 real EURUSD H1 bars); ticks then alternate in
blocks between them over one ZeroMQ REQ socket each, so machine noise hits both sides alike.
Timing never fails the run; a missing or wrong reply does.

    python bench/bench_feed_storm.py [--ticks 5000] [--block 250] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.testing import messages as M
from sidecar.testing.fake_eodhd import FakeEodhd
from sidecar.testing.server import SidecarProcess

WARM_BARS = 300


def _storm(fake: FakeEodhd, rounds: int = 100_000) -> None:
    for _ in range(rounds):
        fake.fail("/api", 429, times=1, retry_after=1)
        fake.slow("/api", 2.0, times=1)


def _sidecar(tmp: Path, name: str, fake: FakeEodhd, feeds: str) -> SidecarProcess:
    cfg = tmp / f"{name}.toml"
    cfg.write_text("[feeds]\n" + feeds)
    env = {"EODHD_API_TOKEN": fake.token, "EODHD_BASE_URL": fake.base_url}
    return SidecarProcess(tmp / f"{name}.sqlite", config=cfg, env=env).start()


def _summary(samples: list[float]) -> dict[str, float]:
    a = np.array(samples) * 1e6
    return {
        "n": len(samples),
        "median_us": float(np.median(a)),
        "p90_us": float(np.percentile(a, 90)),
        "p99_us": float(np.percentile(a, 99)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=5000, help="measured ticks per side")
    ap.add_argument("--warmup", type=int, default=300, help="unmeasured ticks per side")
    ap.add_argument("--block", type=int, default=250, help="ticks per alternation block")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    rows = M.eurusd_rows()[: WARM_BARS + 1]
    start = rows[WARM_BARS - 1][0] + 3600
    now = datetime.now(UTC).replace(microsecond=0)
    storm_feeds = (
        "calendar_interval_seconds = 1.0\nnews_interval_seconds = 1.0\n"
        "sentiments_interval_seconds = 1.0\nrequest_timeout_seconds = 0.5\nmax_retries = 3\n"
        "budget_per_minute = 100000\nbudget_daily_calls = 10000000\n"
    )
    with (
        tempfile.TemporaryDirectory() as d,
        FakeEodhd(now=now, per_minute_limit=10**6) as calm_fake,
        FakeEodhd(now=now, per_minute_limit=10**6) as storm_fake,
    ):
        tmp = Path(d)
        _storm(storm_fake)
        calm = _sidecar(tmp, "calm", calm_fake, "")
        storm = _sidecar(tmp, "storm", storm_fake, storm_feeds)
        try:
            clients = {"calm": calm.zmq(10_000), "storm": storm.zmq(10_000)}
            for c in clients.values():
                ack = c.send(M.hello(bars=rows[:WARM_BARS], server=start))
                if not ack.get("ok"):
                    raise SystemExit(f"hello failed: {ack}")
            samples: dict[str, list[float]] = {"calm": [], "storm": []}
            seq = {"calm": 0, "storm": 0}

            def run(side: str, n: int, keep: bool) -> None:
                c = clients[side]
                for _ in range(n):
                    seq[side] += 1
                    i = seq[side]
                    msg = M.tick(
                        server=start + i,
                        bid=1.1,
                        ask=1.10007,
                        positions=[M.position(501, price_open=1.099)],
                        msg_id=f"t-{i}",
                    )
                    t0 = time.perf_counter()
                    reply = c.send(msg)
                    dt = time.perf_counter() - t0
                    if reply.get("type") != "verdict" or reply.get("id") != f"t-{i}":
                        raise SystemExit(f"{side}: bad reply to t-{i}: {reply}")
                    if keep:
                        samples[side].append(dt)

            run("calm", args.warmup, False)
            run("storm", args.warmup, False)
            done = 0
            while done < args.ticks:
                n = min(args.block, args.ticks - done)
                run("calm", n, True)
                run("storm", n, True)
                done += n
            storm_calls = storm_fake.count()
            calm_calls = calm_fake.count()
            for c in clients.values():
                c.close()
        finally:
            calm.stop()
            storm.stop()

    result: dict[str, Any] = {
        "calm": _summary(samples["calm"]),
        "storm": _summary(samples["storm"]),
        "eodhd_requests": {"calm": calm_calls, "storm": storm_calls},
    }
    result["median_ratio"] = result["storm"]["median_us"] / result["calm"]["median_us"]
    result["p99_ratio"] = result["storm"]["p99_us"] / result["calm"]["p99_us"]
    print(f"{'side':6} {'n':>6} {'median µs':>10} {'p90 µs':>9} {'p99 µs':>9}")
    for side in ("calm", "storm"):
        s = result[side]
        print(
            f"{side:6} {s['n']:>6} {s['median_us']:>10.1f} {s['p90_us']:>9.1f} {s['p99_us']:>9.1f}"
        )
    print(
        f"storm/calm: median x{result['median_ratio']:.3f}, p99 x{result['p99_ratio']:.3f} "
        f"(EODHD requests during the run: calm {calm_calls}, storm {storm_calls})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
