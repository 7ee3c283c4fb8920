"""Machine instructions per tick, counted by valgrind (callgrind): the handler against the floor.

On a shared VM wall-clock timings drift by 2x within minutes; instruction counts do not, so this
is the benchmark to compare two versions of the verdict path with. Both sides run in the same
invocation:

- floor:   `protocol.decode` of the tick + `encode` of a fixed hold verdict (what the transport
           layer of any Python sidecar pays);
- handler: `Sidecar.handle` + `after_reply`, with the feed service started as `sidecar serve`
           does (default configuration, temporary database, 300 real EURUSD H1 bars, one open
           position per tick, as in bench_handler.py).

Each side runs twice, with N1 and N2 ticks after the same warm-up, so start-up cancels out:
per tick = (Ir(N2) - Ir(N1)) / (N2 - N1). The verdict thread is reported alone and with every
other thread (the journal writer, the feed service). Needs `valgrind` (Debian: apt-get install
valgrind); a run takes a few minutes.

    python bench/bench_instructions.py [--n1 300] [--n2 1300] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_side(side: str, ticks: int, generated: int) -> None:
    """The measured program (run under valgrind): `ticks` ticks through one side. Both runs of a
    side generate the same `generated` payloads, so only the ticks handled differ."""
    sys.path.insert(0, str(HERE))
    import bench_handler as H

    from sidecar.service.runner import start_feeds
    from sidecar.testing import messages as M

    bars = M.eurusd_rows()[: H.WARM_BARS]
    payloads = H.tick_payloads(bars, generated)
    if side == "floor":
        from bench_verdict import floor_reply

        for raw in payloads[200 : 200 + ticks]:
            floor_reply(raw)
        return
    sidecar = H.make_sidecar(Path(tempfile.mkdtemp(prefix="sidecar-bench-")) / "bench.db")
    feeds = start_feeds(sidecar)
    hello = M.hello(bars=bars, server=int(bars[-1][0]) + 3600)
    sidecar.handle(json.dumps(hello).encode())
    for raw in payloads[:200]:  # warm-up: same for N1 and N2
        sidecar.handle(raw)
        sidecar.after_reply()
    for raw in payloads[200 : 200 + ticks]:
        _, err = sidecar.handle(raw)
        if err is not None:
            raise SystemExit(f"handler answered {err}")
        sidecar.after_reply()
    feeds.stop()
    sidecar.close()


def instructions(side: str, ticks: int, generated: int, workdir: Path) -> tuple[int, int]:
    """(verdict thread, all threads) instructions of one run."""
    out = workdir / f"cg.{side}.{ticks}"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(Path(__file__).resolve()),
        "--run",
        side,
        str(ticks),
        str(generated),
    ]
    # Idle BLAS worker threads spin, and under valgrind how long depends on scheduling: one
    # thread keeps the all-threads count reproducible.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} x{ticks} failed: {proc.stderr[-2000:]}")
    per_thread = {}
    for f in workdir.glob(f"{out.name}-*"):
        for line in f.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                per_thread[f.name] = int(line.split()[1])
                break
    main = per_thread.get(f"{out.name}-01")
    if main is None:
        raise RuntimeError(f"no callgrind output for {side} x{ticks}")
    return main, sum(per_thread.values())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n1", type=int, default=300, help="ticks of the shorter run")
    p.add_argument("--n2", type=int, default=1300, help="ticks of the longer run")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--run", nargs=3, metavar=("SIDE", "TICKS", "GEN"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run:
        run_side(args.run[0], int(args.run[1]), int(args.run[2]))
        return 0
    if not 0 < args.n1 < args.n2:
        p.error("need 0 < --n1 < --n2")
    if shutil.which("valgrind") is None:
        print(
            "bench_instructions: error: valgrind not found (apt-get install valgrind)",
            file=sys.stderr,
        )
        return 1
    result: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sidecar-cg-") as tmp:
        for side in ("floor", "handler"):
            generated = args.n2 + 200
            a_main, a_all = instructions(side, args.n1, generated, Path(tmp))
            b_main, b_all = instructions(side, args.n2, generated, Path(tmp))
            n = args.n2 - args.n1
            result[side] = {"thread": (b_main - a_main) / n, "all": (b_all - a_all) / n}
    f, h = result["floor"], result["handler"]
    print(f"instructions per tick ({args.n2 - args.n1} ticks, callgrind)")
    print(f"{'':10}{'verdict thread':>16}{'all threads':>14}")
    for side in ("floor", "handler"):
        print(f"{side:10}{result[side]['thread']:>16,.0f}{result[side]['all']:>14,.0f}")
    print(
        f"handler / floor: verdict thread {h['thread'] / f['thread']:.2f}, "
        f"all threads {h['all'] / f['all']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
