"""Backtest throughput: bars per second of `sidecar backtest` against backtesting.py, same run.

One synthetic H1 series (EURUSD H1's own bar shapes, resampled with a fixed seed into a long,
mean-reverting walk over Monday-Friday hours) feeds:

- backtesting.py 0.6.6: the SMA 10/20 cross of its documentation (the baseline);
- ours, `sma_cross` with fast 10 / slow 20, and `resonance`: the whole kernel per bar (every
  gate on, including the news gate over a weekly high-impact event per currency; the drawdown
  breakers' thresholds out of reach so that the account trades for the whole run), the EA's
  guard and local management at four price points a bar, and the MT5 broker simulator.

Each measurement runs in its own process, so each peak RSS is its own (POSIX `ru_maxrss`;
"n/a" on Windows). Data generation is not timed; setup (loading, precomputed analyses) is.

    python bench/bench_backtest.py [--bars 1000000] [--only sma_cross,resonance,backtesting.py]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

HOUR = 3600
CASES = ("backtesting.py", "sma_cross", "resonance")


def synthetic_h1(n: int, seed: int = 11) -> pd.DataFrame:
    """`n` H1 bars shaped like EURUSD H1's, Monday to Friday, price kept near 1.1."""
    from backtesting.test import EURUSD

    o, h, lo, c = (EURUSD[k].to_numpy() for k in ("Open", "High", "Low", "Close"))
    gap = np.log(o[1:] / c[:-1])
    body = np.log(c[1:] / o[1:])
    up = np.log(h[1:] / np.maximum(o[1:], c[1:]))
    down = np.log(np.minimum(o[1:], c[1:]) / lo[1:])
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, body.size, n)
    body_s = body[pick] - body.mean()
    level = np.empty(n)
    x = np.log(1.1)
    for i in range(n):  # a mild pull to 1.1 keeps a million hours in a sane range
        x += gap[pick[i]] + body_s[i] - 0.001 * (x - np.log(1.1))
        level[i] = x
    close = np.exp(level)
    open_ = close / np.exp(body_s)
    high = np.maximum(open_, close) * np.exp(up[pick])
    low = np.minimum(open_, close) / np.exp(down[pick])
    hours = np.arange(n * 2, dtype=np.int64) * HOUR + 1_262_563_200  # Mon 2010-01-04 00:00
    weekday = (hours // 86400 + 3) % 7
    times = hours[weekday < 5][:n]
    frame = pd.DataFrame(
        {
            "Open": open_.round(5),
            "High": high.round(5),
            "Low": low.round(5),
            "Close": close.round(5),
            "Volume": rng.integers(100, 5000, n),
        },
        index=pd.to_datetime(times, unit="s"),
    )
    frame["High"] = frame[["Open", "High", "Close"]].max(axis=1)
    frame["Low"] = frame[["Open", "Low", "Close"]].min(axis=1)
    return frame


def weekly_events(start: int, end: int) -> list[dict[str, Any]]:
    """A high-impact event per currency each week (Friday 12:30 UTC USD, Thursday 12:15 EUR)."""
    out = []
    week = 7 * 86400
    first_friday = start - (start - 1_262_908_800) % week  # a Friday 00:00 UTC
    for t in range(first_friday, end + week, week):
        for cur, at, name in (("USD", t + 45_000, "Non Farm Payrolls"), ("EUR", t - 42_300, "ECB")):
            out.append(
                {
                    "id": f"{cur}{at}",
                    "time": at,
                    "currency": cur,
                    "importance": "high",
                    "name": name,
                }
            )
    return out


def peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_backtesting_py(frame: pd.DataFrame) -> dict[str, Any]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):
        n1, n2 = 10, 20

        def init(self) -> None:
            self.sma1 = self.I(SMA, self.data.Close, self.n1)
            self.sma2 = self.I(SMA, self.data.Close, self.n2)

        def next(self) -> None:
            if crossover(self.sma1, self.sma2):
                self.position.close()
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()
                self.sell()

    t0 = time.perf_counter()
    stats = Backtest(frame, SmaCross, cash=100_000, commission=0.0, finalize_trades=True).run()
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "trades": int(stats["# Trades"]), "setup_seconds": 0.0}


def run_ours(frame: list[pd.DataFrame], strategy: str) -> dict[str, Any]:
    from sidecar.backtest.data import load_backtesting_frame
    from sidecar.backtest.model import AccountSpec
    from sidecar.backtest.news import HistoricalNews
    from sidecar.backtest.runner import Backtest, Market, RunOptions
    from sidecar.backtest.symbols import resolve_instrument
    from sidecar.config import load_config
    from sidecar.engine.strategies import strategy_problems
    from sidecar.guard import GuardLimits

    params = {"fast": 10, "slow": 20} if strategy == "sma_cross" else {}
    # The drawdown breakers out of reach: at their defaults a century-long random walk halts the
    # account early, and the rest of the run would only time refusals on a flat account.
    risk = {
        "drawdown_defensive_pct": 97,
        "drawdown_reducing_pct": 98,
        "drawdown_halted_pct": 99,
        "reducing_resume_pct": 90,
    }
    config = load_config(
        None,
        env={},
        overrides={"strategy": {"name": strategy, "params": params}, "risk": risk},
        extra_checks=strategy_problems,
    )
    start, end = int(frame[0].index[0].timestamp()), int(frame[0].index[-1].timestamp())
    news = HistoricalNews(config, weekly_events(start, end))
    t0 = time.perf_counter()
    data = load_backtesting_frame(frame[0], "EURUSD", "H1")
    del frame[:]  # as `sidecar backtest` does: the run keeps its own columns
    bt = Backtest(
        config,
        AccountSpec(balance=100_000.0, leverage=500),
        [Market(data, resolve_instrument("EURUSD", None))],
        RunOptions(news=news, limits=GuardLimits(max_drawdown_pct=100.0)),
    )
    del data
    t1 = time.perf_counter()
    result = bt.run()
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "setup_seconds": t1 - t0, "trades": len(result.trades)}


def one(case: str, bars: int) -> None:
    frame = [synthetic_h1(bars)]  # a list the run may empty, so the frame's memory can go
    out = run_backtesting_py(frame[0]) if case == "backtesting.py" else run_ours(frame, case)
    out |= {"case": case, "bars": bars, "peak_rss_mb": peak_rss_mb()}
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bars", type=int, default=1_000_000)
    p.add_argument("--only", default=",".join(CASES))
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        one(args.one, args.bars)
        return
    rows = []
    for case in args.only.split(","):
        cmd = [sys.executable, __file__, "--one", case, "--bars", str(args.bars)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = next((r for r in rows if r["case"] == "backtesting.py"), None)
    print(f"{args.bars:,} H1 bars, one process each")
    print(
        f"{'case':<16}{'bars/s':>12}{'vs bt.py':>10}{'setup s':>9}{'total s':>9}"
        f"{'trades':>8}{'peak RSS':>10}"
    )
    for r in rows:
        rate = r["bars"] / r["seconds"]
        ratio = rate / (base["bars"] / base["seconds"]) if base else float("nan")
        rss = "n/a" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.0f} MB"
        print(
            f"{r['case']:<16}{rate:>12,.0f}{ratio:>10.2f}{r['setup_seconds']:>9.1f}"
            f"{r['seconds']:>9.1f}{r['trades']:>8}{rss:>10}"
        )


if __name__ == "__main__":
    main()
