"""Performance metrics of a backtest run: `summarize(result)` → a JSON-ready dict.

Conventions (also in docs/backtest.md):

- **Equity** is the `EquityPoint` series (UTC, one point per replayed bar or tick). The initial
  equity is the account's starting balance (`result.account.balance`); the final equity is the
  last point's equity. Net profit, total return and CAGR come from these two numbers; CAGR uses
  the run's calendar length `result.end - result.start` in years of 365.25 days.
- **Daily returns**: the equity at the end of each UTC day that has at least one equity point
  (days without bars — weekends, holidays — are skipped, not filled with zeros); simple returns
  `E_d / E_{d-1} - 1`, the first day measured against the initial equity. Sharpe =
  mean / sample standard deviation (ddof = 1) × √252, risk-free rate 0. Sortino = mean / downside
  deviation × √252 with downside deviation = √(Σ min(r, 0)² / N) over *all* N days. Both are
  null with fewer than two daily returns or when the deviation is zero.
- **Max drawdown**: the deepest fall of equity below its running high-water mark (which starts
  at the initial equity), in % of that mark; `money` is the same episode's peak minus trough.
  `peak_time` / `trough_time` / `recovery_time` (first point back at or above the peak; null if
  never) are ISO UTC; `duration_days` runs from the peak to the recovery, or to the end of the
  run if the episode never recovered. Calmar = CAGR % / max drawdown %.
- **Trades** are `TradeRecord`s (one per position; a partial close stays one trade) with *net*
  profit (profit + commission + swap). A win has profit > 0, a loss profit < 0; a trade at
  exactly 0 is break-even and counts in neither (nor in the win rate's numerator). Payoff ratio
  = average win / |average loss|; profit factor = gross profit / |gross loss|; expectancy = net
  profit / trades. Streaks run over trades ordered by exit time; a break-even trade ends both.
- **Exposure** = the union of the trades' [entry, exit] intervals, clipped to the run, over the
  run's length (time with at least one position open, whatever the symbol). Effective leverage
  (notional / equity) is averaged and maximised over the equity points with leverage > 0
  (point-weighted, i.e. per bar).
- **Time in mode** comes from `DecisionStats.mode_seconds` when the runner filled it, otherwise
  from the `modes` spans (the label's first word is the mode; the rest of the run is `active`).
- **Degenerate values** are JSON `null`, never NaN or infinity, and each null that is not
  self-evident gets a line in `notes` (e.g. a profit factor without losing trades).

Rounding: money to 2 decimals, percentages to 3, ratios to 4, leverage to 2.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sidecar.backtest.model import BacktestResult, TradeRecord

DAY = 86_400
YEAR_SECONDS = 365.25 * DAY
TRADING_DAYS = 252
MODES = ("active", "reducing", "halted")
SECRET_WORDS = (
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "webhook",
    "api_key",
    "apikey",
    "private_key",
    "credential",
)
MASK = "***"
_SECRET_QUERY = re.compile(
    r"(?i)((?:access_)?token|secret|password|api_?key|sign|signature|key)=[^&\s\"']+"
)


def iso(ts: float | None) -> str | None:
    """Unix seconds → `2025-01-02T13:00:00Z` (None stays None)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(x: float | None, digits: int) -> float | None:
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    value = round(x, digits)
    return 0.0 if value == 0 else value  # no "-0.0" in the output


def money(x: float | None) -> float | None:
    return _num(x, 2)


def pct(x: float | None) -> float | None:
    return _num(x, 3)


def ratio(x: float | None) -> float | None:
    return _num(x, 4)


def mask_secrets(value: Any) -> Any:
    """A deep copy of `value` with every secret masked: the value of any key whose name contains
    token / secret / password / webhook (and similar) becomes "***", and `token=...`-like query
    parameters inside strings (webhook URLs under other names) are masked too."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            lowered = name.lower()
            if any(word in lowered for word in SECRET_WORDS):
                out[name] = MASK
            else:
                out[name] = mask_secrets(item)
        return out
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str):
        return _SECRET_QUERY.sub(lambda m: m.group(1) + "=" + MASK, value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


# --------------------------------------------------------------------------- equity series


def equity_arrays(result: BacktestResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, equity, balance) of the equity points as numpy arrays."""
    points = result.equity
    n = len(points)
    times = np.fromiter((p.time for p in points), dtype=np.int64, count=n)
    equity = np.fromiter((p.equity for p in points), dtype=np.float64, count=n)
    balance = np.fromiter((p.balance for p in points), dtype=np.float64, count=n)
    return times, equity, balance


def _last_per_group(keys: np.ndarray) -> np.ndarray:
    """Indices of the last element of each run of equal keys (keys sorted)."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(keys[1:] != keys[:-1])
    return np.append(change, keys.size - 1)


def daily_returns(times: np.ndarray, equity: np.ndarray, initial: float) -> np.ndarray:
    """Simple returns of end-of-UTC-day equity, first day against `initial`."""
    if times.size == 0:
        return np.zeros(0)
    idx = _last_per_group(times // DAY)
    closes = np.concatenate(([initial], equity[idx]))
    prev, cur = closes[:-1], closes[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.where(prev > 0, cur / np.where(prev > 0, prev, 1.0) - 1.0, 0.0)
    return rets


def sharpe_sortino(rets: np.ndarray) -> tuple[float | None, float | None]:
    if rets.size < 2:
        return None, None
    mean = float(np.mean(rets))
    std = float(np.std(rets, ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2)))
    scale = math.sqrt(TRADING_DAYS)
    sharpe = mean / std * scale if std > 1e-15 else None
    sortino = mean / downside * scale if downside > 1e-15 else None
    return sharpe, sortino


def drawdown_series(equity: np.ndarray, initial: float) -> tuple[np.ndarray, np.ndarray]:
    """(peak, drawdown %) per point; the high-water mark starts at `initial`."""
    if equity.size == 0:
        return np.zeros(0), np.zeros(0)
    peak = np.maximum.accumulate(np.maximum(equity, initial))
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, (peak - equity) / np.where(peak > 0, peak, 1.0) * 100.0, 0.0)
    return peak, dd


def max_drawdown(
    times: np.ndarray, equity: np.ndarray, initial: float, start: int, end: int
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "max_pct": 0.0,
        "max_money": 0.0,
        "peak_time": None,
        "trough_time": None,
        "recovery_time": None,
        "recovered": True,
        "duration_days": 0.0,
        "longest_days": 0.0,
    }
    if equity.size == 0:
        return out
    peak, dd = drawdown_series(equity, initial)
    trough = int(np.argmax(dd))
    longest = _longest_underwater(times, equity, peak, start, end)
    out["longest_days"] = longest / DAY
    if dd[trough] <= 0:
        return out
    peak_value = peak[trough]
    # The peak: the last point at or before the trough whose equity set the mark, or the start.
    at_peak = np.flatnonzero(equity[: trough + 1] >= peak_value)
    peak_time = int(times[at_peak[-1]]) if at_peak.size else start
    after = np.flatnonzero(equity[trough + 1 :] >= peak_value)
    recovery_time = int(times[trough + 1 + after[0]]) if after.size else None
    out.update(
        max_pct=float(dd[trough]),
        max_money=float(peak_value - equity[trough]),
        peak_time=peak_time,
        trough_time=int(times[trough]),
        recovery_time=recovery_time,
        recovered=recovery_time is not None,
        duration_days=((recovery_time if recovery_time is not None else end) - peak_time) / DAY,
    )
    return out


def _longest_underwater(
    times: np.ndarray, equity: np.ndarray, peak: np.ndarray, start: int, end: int
) -> float:
    """Seconds of the longest stretch below the high-water mark: from the last point at the mark
    (or the start) to the first point back at it (or the end of the run)."""
    at_high = equity >= peak
    if at_high.all():
        return 0.0
    under = ~at_high
    run_starts = np.flatnonzero(under & np.concatenate(([True], at_high[:-1])))
    before = np.where(run_starts > 0, times[np.maximum(run_starts - 1, 0)], start)
    # Time of the first point back at the mark after each run (the end if none).
    high_times = np.append(times[at_high], end)
    after = high_times[np.searchsorted(np.flatnonzero(at_high), run_starts)]
    return float(np.max(after - before))


def monthly_returns(times: np.ndarray, equity: np.ndarray, initial: float) -> dict[str, Any]:
    """{"2024": {"months": [12 × % or None], "year": %}}: end-of-month equity against the
    previous month-end that had data (the first against the initial equity)."""
    if times.size == 0:
        return {}
    dates = times.astype("datetime64[s]")
    months = dates.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    idx = _last_per_group(months)
    out: dict[str, Any] = {}
    prev = initial
    year_base: dict[int, float] = {}
    year_end: dict[int, float] = {}
    for i in idx:
        m = int(months[i])
        year, month = 1970 + m // 12, m % 12
        close = float(equity[i])
        entry = out.setdefault(str(year), {"months": [None] * 12, "year": None})
        entry["months"][month] = pct((close / prev - 1.0) * 100.0) if prev > 0 else None
        year_base.setdefault(year, prev)
        year_end[year] = close
        prev = close
    for year, entry in out.items():
        base = year_base[int(year)]
        entry["year"] = pct((year_end[int(year)] / base - 1.0) * 100.0) if base > 0 else None
    return out


# --------------------------------------------------------------------------- trades


def trade_stats(trades: list[TradeRecord], notes: list[str]) -> dict[str, Any]:
    profits = [t.profit for t in trades]
    wins = [p for p in profits if p > 0]
    losses = [p for p in profits if p < 0]
    n = len(trades)
    gross_profit = sum(wins)
    gross_loss = sum(losses)
    net = sum(profits)
    avg_win = gross_profit / len(wins) if wins else None
    avg_loss = gross_loss / len(losses) if losses else None
    payoff = avg_win / abs(avg_loss) if avg_win is not None and avg_loss is not None else None
    if gross_loss < 0:
        profit_factor: float | None = gross_profit / abs(gross_loss)
    else:
        profit_factor = None
    if n and not losses:
        notes.append("profit_factor and payoff_ratio are null: no losing trades")
    elif n and not wins:
        notes.append("payoff_ratio is null: no winning trades")
    if not n:
        notes.append("no trades: trade statistics are zero or null")

    ordered = sorted(trades, key=lambda t: (t.exit_time, t.entry_time, t.position))
    lose_streak = win_streak = cur_lose = cur_win = 0
    for t in ordered:
        cur_lose = cur_lose + 1 if t.profit < 0 else 0
        cur_win = cur_win + 1 if t.profit > 0 else 0
        lose_streak = max(lose_streak, cur_lose)
        win_streak = max(win_streak, cur_win)

    by_reason = Counter(t.exit_reason for t in trades)
    by_symbol: dict[str, dict[str, Any]] = {}
    for sym in sorted({t.symbol for t in trades}):
        mine = [t.profit for t in trades if t.symbol == sym]
        by_symbol[sym] = {
            "trades": len(mine),
            "net_profit": money(sum(mine)),
            "win_rate_pct": pct(sum(1 for p in mine if p > 0) / len(mine) * 100.0),
        }
    durations = [t.exit_time - t.entry_time for t in trades]
    return {
        "count": n,
        "wins": len(wins),
        "losses": len(losses),
        "breakeven": n - len(wins) - len(losses),
        "long": sum(1 for t in trades if t.side == "buy"),
        "short": sum(1 for t in trades if t.side == "sell"),
        "win_rate_pct": pct(len(wins) / n * 100.0) if n else None,
        "gross_profit": money(gross_profit),
        "gross_loss": money(gross_loss),
        "net_profit": money(net),
        "avg_win": money(avg_win),
        "avg_loss": money(avg_loss),
        "largest_win": money(max(wins)) if wins else None,
        "largest_loss": money(min(losses)) if losses else None,
        "payoff_ratio": ratio(payoff),
        "profit_factor": ratio(profit_factor),
        "expectancy": money(net / n) if n else None,
        "longest_losing_streak": lose_streak,
        "longest_winning_streak": win_streak,
        "avg_duration_hours": _num(sum(durations) / n / 3600.0, 2) if n else None,
        "commission": money(sum(t.commission for t in trades)),
        "swap": money(sum(t.swap for t in trades)),
        "by_exit_reason": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_symbol": by_symbol,
    }


def exposure_seconds(trades: list[TradeRecord], start: int, end: int) -> int:
    """Length of the union of the trades' [entry, exit] intervals clipped to [start, end]."""
    return union_seconds([(t.entry_time, t.exit_time) for t in trades], start, end)


def union_seconds(intervals: list[tuple[int, int]], start: int, end: int) -> int:
    """Seconds covered by the union of `(start, end)` intervals, clipped to [start, end]."""
    clipped = sorted(
        (max(s, start), min(e, end)) for s, e in intervals if min(e, end) > max(s, start)
    )
    total = 0
    cur_s: int | None = None
    cur_e = 0
    for s, e in clipped:
        if cur_s is None or s > cur_e:
            if cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_s is not None:
        total += cur_e - cur_s
    return int(total)


# --------------------------------------------------------------------------- decisions


def _sorted_counts(counts: dict[str, int]) -> dict[str, int]:
    return {k: int(v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def mode_seconds(result: BacktestResult, total: int) -> dict[str, int]:
    given = {k: int(v) for k, v in result.decisions.mode_seconds.items() if v}
    if not given:
        given = {}
        for span in result.modes:
            s, e = max(span.start, result.start), min(span.end, result.end)
            if e > s:
                mode = (span.label.split() or ["other"])[0].lower()
                given[mode] = given.get(mode, 0) + (e - s)
        given["active"] = max(0, total - sum(given.values()))
    order = [m for m in MODES if m in given] + sorted(k for k in given if k not in MODES)
    return {m: given[m] for m in order}


# --------------------------------------------------------------------------- summary


def summarize(result: BacktestResult) -> dict[str, Any]:
    """Every headline number of a run as a JSON-ready dict (see the module docstring for the
    conventions). Same input → same dict, keys in a fixed order, no NaN/inf."""
    notes: list[str] = []
    times, equity, balance = equity_arrays(result)
    initial = float(result.account.balance)
    final = float(equity[-1]) if equity.size else initial
    final_balance = float(balance[-1]) if balance.size else initial
    start = int(result.start)
    end = int(result.end)
    if times.size:
        start = min(start, int(times[0])) if start else int(times[0])
        end = max(end, int(times[-1]))
    length = max(0, end - start)

    net = final - initial
    total_return = net / initial * 100.0 if initial > 0 else None
    years = length / YEAR_SECONDS
    cagr: float | None = None
    if initial > 0 and final > 0 and years > 0:
        growth = math.log(final / initial) / years
        cagr = math.expm1(growth) * 100.0 if growth < 700 else None
        if cagr is not None and abs(cagr) > 1e9:
            cagr = None
    if cagr is None:
        notes.append("cagr_pct is null: run too short, or equity not positive")
    elif years < 1 / 12:
        notes.append("cagr_pct extrapolates a run shorter than a month")

    rets = daily_returns(times, equity, initial)
    sharpe, sortino = sharpe_sortino(rets)
    if rets.size < 2:
        notes.append("sharpe and sortino are null: fewer than two days with bars")
    else:
        if sharpe is None:
            notes.append("sharpe is null: daily returns have zero deviation")
        if sortino is None:
            notes.append("sortino is null: no losing day (zero downside deviation)")
    vol = float(np.std(rets, ddof=1)) * math.sqrt(TRADING_DAYS) * 100 if rets.size > 1 else None

    dd = max_drawdown(times, equity, initial, start, end)
    calmar = cagr / dd["max_pct"] if cagr is not None and dd["max_pct"] > 0 else None
    if dd["max_pct"] <= 0:
        notes.append("calmar is null: no drawdown")

    trades = trade_stats(result.trades, notes)
    exposed = exposure_seconds(result.trades, start, end)
    lev = np.fromiter(
        (p.leverage for p in result.equity), dtype=np.float64, count=len(result.equity)
    )
    lev = lev[np.isfinite(lev) & (lev > 0)]

    d = result.decisions
    refused = _sorted_counts(d.refused)
    guard = _sorted_counts(d.guard_refused)
    modes = mode_seconds(result, length)

    symbols = sorted(result.instruments) or sorted({t.symbol for t in result.trades})
    strategy = result.config.get("strategy", {}) if isinstance(result.config, dict) else {}
    return {
        "version": 1,
        "period": {
            "start": start,
            "end": end,
            "start_iso": iso(start),
            "end_iso": iso(end),
            "days": _num(length / DAY, 3),
            "days_with_bars": int(rets.size),
            "bars": int(result.bars),
            "timeframe": result.timeframe,
            "symbols": symbols,
        },
        "account": {
            "currency": result.account.currency,
            "balance": money(initial),
            "leverage": int(result.account.leverage),
            "mode": result.account.mode,
        },
        "strategy": {
            "name": str(strategy.get("name", "")) if isinstance(strategy, dict) else "",
            "params": mask_secrets(
                strategy.get("params", {}) if isinstance(strategy, dict) else {}
            ),
        },
        "returns": {
            "initial_equity": money(initial),
            "final_equity": money(final),
            "final_balance": money(final_balance),
            "net_profit": money(net),
            "total_return_pct": pct(total_return),
            "cagr_pct": pct(cagr),
            "sharpe": ratio(sharpe),
            "sortino": ratio(sortino),
            "calmar": ratio(calmar),
            "volatility_pct": pct(vol),
            "best_day_pct": pct(float(rets.max()) * 100) if rets.size else None,
            "worst_day_pct": pct(float(rets.min()) * 100) if rets.size else None,
        },
        "drawdown": {
            "max_pct": pct(dd["max_pct"]),
            "max_money": money(dd["max_money"]),
            "peak_time": iso(dd["peak_time"]),
            "trough_time": iso(dd["trough_time"]),
            "recovery_time": iso(dd["recovery_time"]),
            "recovered": dd["recovered"],
            "duration_days": _num(dd["duration_days"], 3),
            "longest_days": _num(dd["longest_days"], 3),
        },
        "trades": trades,
        "exposure": {
            "exposure_pct": pct(exposed / length * 100.0) if length > 0 else None,
            "avg_leverage": _num(float(lev.mean()), 2) if lev.size else None,
            "max_leverage": _num(float(lev.max()), 2) if lev.size else None,
        },
        "costs": {
            "commission": trades["commission"],
            "swap": trades["swap"],
        },
        "decisions": {
            "ticks": int(d.ticks),
            "signals": int(d.signals),
            "opened": int(d.opened),
            "taken_pct": pct(d.opened / d.signals * 100.0) if d.signals else None,
            "refused_total": sum(refused.values()),
            "refused": refused,
            "guard_refused_total": sum(guard.values()),
            "guard_refused": guard,
            "actions": _sorted_counts(d.actions),
        },
        "modes": {
            m: {"seconds": s, "pct": pct(s / length * 100.0) if length > 0 else None}
            for m, s in modes.items()
        },
        "breaker_spans": len(result.modes),
        "blackouts": {
            "count": len(result.blackouts),
            "seconds": union_seconds([(b.start, b.end) for b in result.blackouts], start, end),
        },
        "monthly_returns": monthly_returns(times, equity, initial),
        "config": mask_secrets(result.config),
        "notes": notes,
    }
