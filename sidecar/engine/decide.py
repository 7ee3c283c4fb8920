"""`Engine.decide(tick, snapshot) -> Decision`: the pure decision core.

No I/O and no wall clock: everything comes from the request and the snapshot, so a live run, the
Strategy Tester and the backtester give the same verdicts for the same inputs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import overload

import msgspec
import numpy as np

from sidecar.config import HARD_LEVERAGE_CEILING, Config
from sidecar.engine import gates, indicators, volatility
from sidecar.engine import reasons as R
from sidecar.engine.account import (
    Transition,
    apply_trade,
    net_result,
    observe,
    position_key,
    remember_signal,
)
from sidecar.engine.bars import Bars
from sidecar.engine.sizing import floor_to_step
from sidecar.engine.state import HALTED, REDUCING, AccountState, Analysis, Snapshot
from sidecar.engine.strategies import Strategy, build_strategy
from sidecar.engine.strategies.base import Signal, StrategyContext
from sidecar.protocol import CloseOrder, Manage, OpenOrder, SymbolSpec, Tick, Trade, Verdict


class Decision(msgspec.Struct, frozen=True, gc=False):
    verdict: Verdict
    state: AccountState
    transitions: list[Transition]
    signal: Signal | None = None


def signal_id(
    login: int, symbol: str, timeframe: str, bar_time: int, side: str, strategy: str
) -> str:
    """Deterministic id of one signal; the EA writes `sc:<id>` into the order comment."""
    key = f"{login}|{symbol}|{timeframe}|{bar_time}|{side}|{strategy}".encode()
    return hashlib.sha1(key).hexdigest()[:16]


def signal_from_comment(comment: str) -> str | None:
    return comment[3:] if comment.startswith("sc:") and len(comment) > 3 else None


_ATR_WINDOW = 10  # Analysis.atr: Wilder's ATR on the newest 10·period bars (seed gone to e^-10)
_REBUILD = 256  # more new bars than this at once: a vectorised pass is cheaper than steps
_MAX_LIVE = 4096  # histories with running state per engine (bounded like the service's symbols)


class _Live:
    """Running state of one `BarHistory` for one engine: the running ATR (for the volatility
    rank) over its newest bars and the strategy's tracker, if it has one."""

    def __init__(self, engine: Engine, bars: Bars, generation: int) -> None:
        self.engine = engine
        self.generation = generation
        self.end = 0
        self.period = engine.config.manage.atr_period
        self.keep = volatility.bars_needed(self.period, engine.config.sizing.volatility_window)
        full = volatility.running_atr(bars, self.period)[-self.keep :]
        self._atr = np.empty(4 * self.keep)
        self._atr[: full.size] = full
        self._stop = full.size
        make = getattr(engine.strategy, "tracker", None)
        self.tracker = make(bars) if make is not None else None
        self._make = make

    def advance(self, bars: Bars, k: int) -> None:
        n, a = len(bars), 1.0 / self.period
        buf = self._atr
        for i in range(n - k, n):
            h, lo, pc = float(bars.high[i]), float(bars.low[i]), float(bars.close[i - 1])
            tr = max(h, pc) - min(lo, pc)
            y = float(buf[self._stop - 1])
            if i == self.period:
                y = float(
                    indicators.true_range(
                        bars.high[: i + 1], bars.low[: i + 1], bars.close[: i + 1]
                    )[1:].mean()
                )
            elif i > self.period:
                y += a * (tr - y)  # `indicators._smooth`'s step: the same bits as a whole pass
            else:
                y = math.nan
            if self._stop == buf.shape[0]:
                buf[: self.keep] = buf[self._stop - self.keep : self._stop]
                self._stop = self.keep
            buf[self._stop] = y
            self._stop += 1
        if self.tracker is not None:
            self.tracker.advance(bars, k)
        elif self._make is not None:
            self.tracker = self._make(bars)  # the history just reached the strategy's minimum

    def running(self) -> np.ndarray:
        return self._atr[max(0, self._stop - self.keep) : self._stop]


class AnalysisSeries(Sequence[Analysis]):
    """Every bar's `Analysis` of a series, kept as columns: an `Analysis` is built when asked
    for (a million of them held at once take ~0.5 GB). Slices are lists."""

    def __init__(
        self,
        times: np.ndarray,
        held: np.ndarray,
        min_bars: int,
        signals: list[Signal | None],
        atr: np.ndarray,
        pct: list[float | None],
        notes: Sequence[str] | None = None,
    ) -> None:
        if not len(times) == len(held) == len(signals) == len(atr) == len(pct):
            raise ValueError("AnalysisSeries: every column must have one value per bar")
        if notes is not None and len(notes) != len(times):
            raise ValueError("AnalysisSeries: every column must have one value per bar")
        self._times, self._held, self._min_bars = times, held, min_bars
        self._signals, self._atr, self._pct = signals, atr, pct
        self._notes = notes  # the strategy's notes, formatted when a bar is read

    def __len__(self) -> int:
        return len(self._times)

    @overload
    def __getitem__(self, i: int) -> Analysis: ...
    @overload
    def __getitem__(self, i: slice) -> list[Analysis]: ...
    def __getitem__(self, i: int | slice) -> Analysis | list[Analysis]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        held, signal = int(self._held[i]), self._signals[i]
        note = ""
        if self._notes is not None and signal is None and held >= self._min_bars:
            note = R.clip_note(self._notes[i])
        return Analysis(
            int(self._times[i]),
            held,
            self._min_bars,
            signal,
            float(self._atr[i]),
            self._pct[i],
            note,
        )

    def index_of(self, bar_time: int) -> int | None:
        """Index of the bar opening at `bar_time`, None when the series has none."""
        k = int(np.searchsorted(self._times, bar_time))
        return k if k < len(self._times) and int(self._times[k]) == bar_time else None


class Engine:
    def __init__(self, config: Config, strategy: Strategy | None = None) -> None:
        self.config = config
        self._live: dict[int, _Live] = {}
        self.strategy = strategy or build_strategy(config.strategy.name, config.strategy.params)
        self._signal_code = f"{R.SIGNAL}_{self.strategy.name.upper()}"
        # With `assess` the strategy also says why a bar has no signal (strategies/base.py).
        self._assess = getattr(self.strategy, "assess", None)
        self._manage_cache: dict[tuple[float, float, int, float], Manage] = {}

    # ------------------------------------------------------------ per new bar

    def analyze(self, bars: Bars, context: StrategyContext | None = None) -> Analysis:
        """Strategy, ATR and its percentile for the newest closed bar. Pure in its result;
        callers cache it per bar.

        A view of a `BarHistory` (it carries a `Lineage`) is analysed incrementally: the running
        ATR and the strategy's tracker continue from the previous bar of that history, so a new
        bar costs O(1) rather than a pass over the history. Any other `Bars` is analysed from
        scratch (the reference). Both give the same `Analysis` bit for bit when the history
        began at the same bar (tests/engine/test_analyze_series.py)."""
        n = len(bars)
        if n == 0:
            return Analysis(None, 0, self.strategy.min_bars, None, 0.0)
        live = self._live_state(bars)
        note = ""
        if live is not None and live.tracker is not None:
            assess = getattr(live.tracker, "assess", None)
            if assess is not None:
                signal, note = assess(bars)
            else:
                signal = live.tracker.signal(bars)
        elif self._assess is not None:
            signal, note = self._assess(bars, context)
        else:
            signal = self.strategy.evaluate(bars, context)
        # The note explains a hold on a bar past the warm-up; a signal or DATA_WARMUP say the rest.
        note = R.clip_note(note) if signal is None and n >= self.strategy.min_bars else ""
        period = self.config.manage.atr_period
        window = self.config.sizing.volatility_window
        atr = 0.0
        if n > period:
            length = min(n, _ATR_WINDOW * period)
            # The one-value form of `window_atr` on the tail: same bits, a quarter of the cost.
            value = indicators.window_atr_last(bars.high, bars.low, bars.close, period, length)
            atr = value if math.isfinite(value) else 0.0
        atr_pct = None
        if n >= volatility.bars_needed(period, window):
            running = live.running() if live is not None else volatility.running_atr(bars, period)
            atr_pct = volatility.percentile_at(bars, running, period, window)
        return Analysis(int(bars.time[-1]), n, self.strategy.min_bars, signal, atr, atr_pct, note)

    def forget(self, history: int) -> None:
        """Drop the running state of a history nobody will extend again (its symbol was
        introduced anew or evicted), so a flood of hellos does not pin up to _MAX_LIVE dead
        states and the buffers their trackers hold."""
        self._live.pop(history, None)

    def _live_state(self, bars: Bars) -> _Live | None:
        lineage = bars.lineage
        if lineage is None:
            return None
        live = self._live.pop(lineage.history, None)
        new = lineage.end - live.end if live is not None else -1
        if live is None or live.generation != lineage.generation or not 0 <= new < _REBUILD:
            # First view of this history, a replaced bar, or a long gap: start from the view.
            live = _Live(self, bars, lineage.generation)
        elif new:
            live.advance(bars, new)
        live.end = lineage.end
        self._live[lineage.history] = live  # re-insert: the dict's order is the eviction order
        while len(self._live) > _MAX_LIVE:
            self._live.pop(next(iter(self._live)))
        return live

    def analyze_series(
        self, bars: Bars, capacity: int, context: StrategyContext | None = None
    ) -> AnalysisSeries:
        """For every bar i, the `Analysis` that `analyze` gives for a `BarHistory(capacity)` that
        has taken in bars[:i+1] one after another (so `Analysis.bars == min(i + 1, capacity)`),
        computed in one vectorised pass: the backtester's per-bar analysis.

        Strategies without a `series` method (custom ones) are evaluated bar by bar on the
        trimmed history instead, with `context`; the built-in ones ignore `context`."""
        n = len(bars)
        period = self.config.manage.atr_period
        window = self.config.sizing.volatility_window
        min_bars = self.strategy.min_bars
        held = np.minimum(np.arange(1, n + 1), capacity)
        assess_series = getattr(self.strategy, "assess_series", None)
        series = getattr(self.strategy, "series", None)
        notes: Sequence[str] | None = None
        if capacity < min_bars:
            signals: list[Signal | None] = [None] * n
        elif assess_series is not None:
            signals, notes = assess_series(bars)
        elif series is not None:
            signals = series(bars)
        elif self._assess is not None:
            pairs = [
                self._assess(bars.span(i + 1 - int(held[i]), i + 1), context) for i in range(n)
            ]
            signals, notes = [s for s, _ in pairs], [t for _, t in pairs]
        else:
            signals = [
                self.strategy.evaluate(bars.span(i + 1 - int(held[i]), i + 1), context)
                for i in range(n)
            ]
        # The ATR of the newest min(held, 10·period) bars: a fixed window once it is full.
        atr = np.zeros(n)
        full = min(capacity, _ATR_WINDOW * period)
        if full > period:
            values = indicators.window_atr(bars.high, bars.low, bars.close, period, full)
            atr[full - 1 :] = values[full - 1 :]
            for i in range(period, min(n, full - 1)):
                head = bars.head(i + 1)
                atr[i] = indicators.window_atr(head.high, head.low, head.close, period, i + 1)[-1]
        atr = np.where(np.isfinite(atr), atr, 0.0)
        pct: list[float | None] = [None] * n
        if capacity >= volatility.bars_needed(period, window):
            running = volatility.running_atr(bars, period)
            pct = volatility.percentile_series(bars, running, period, window)
        signals = signals if isinstance(signals, list) else list(signals)
        return AnalysisSeries(bars.time, held, min_bars, signals, atr, pct, notes)

    # ------------------------------------------------------------ per tick

    def decide(self, tick: Tick, snap: Snapshot) -> Decision:
        cfg = self.config
        state, transitions = observe(
            snap.account,
            server_time=tick.time.server,
            gmt=tick.time.gmt,
            equity=tick.account.equity,
            balance=tick.account.balance,
            risk=cfg.risk,
            broker=cfg.broker,
        )
        analysis = snap.analysis
        signal = analysis.signal
        proposal = None
        if signal is not None:
            entry = tick.ask if signal.side == "buy" else tick.bid
            sid = signal_id(
                tick.login,
                tick.symbol,
                tick.timeframe,
                signal.bar_time,
                signal.side,
                signal.strategy,
            )
            proposal = gates.Proposal(
                signal.side, entry, signal.sl_distance, signal.tp_distance, sid
            )

        ctx = gates.GateContext(tick, snap, state, cfg, HARD_LEVERAGE_CEILING, proposal)
        result = gates.run(ctx)

        reasons = list(result.vetoes)
        if transitions:
            for t in transitions:
                if t.event == "account.clock_backwards":
                    last = snap.account.last_gmt
                    reasons.append(
                        R.reason(R.DATA_CLOCK_BACKWARDS, last_gmt=last, gmt=tick.time.gmt)
                    )
                elif t.event == "account.day_rebuilt":
                    d = t.detail
                    reasons.append(
                        R.reason(
                            R.RISK_DAY_REBUILT,
                            day_start_equity=d["day_start_equity"],
                            equity=d["equity"],
                            balance=d["balance"],
                            closed=d["closed"],
                        )
                    )
        if signal is not None:
            votes = ",".join(signal.votes)
            reasons.append(
                R.reason(self._signal_code, side=signal.side, votes=votes, **signal.context)
            )
        elif analysis.bars < analysis.min_bars:
            reasons.append(R.reason(R.DATA_WARMUP, bars=analysis.bars, need=analysis.min_bars))
        else:
            # The strategy's note on this bar (votes, deciding values), formatted once per bar.
            note = analysis.note
            reasons.append(f"{R.SIGNAL_NONE} {note}" if note else R.SIGNAL_NONE)
        reasons.extend(result.notes)

        action = "hold"
        open_order = None
        close: list[CloseOrder] = []
        digits = snap.symbol.digits
        if result.proposal is not None:
            p = result.proposal
            action = "open"
            open_order = OpenOrder(
                side=p.side,  # type: ignore[arg-type]
                volume=p.volume,
                sl=round(p.sl, digits),
                tp=round(p.tp, digits),
                risk_pct=p.risk_pct,
                signal_id=p.signal_id,
            )
            state = remember_signal(state, p.signal_id, tick.time.gmt, cfg.risk)
        elif state.mode == HALTED and (cfg.risk.flatten_on_halt or state.floor_hit):
            close = [
                CloseOrder(ticket=pos.ticket, volume=pos.volume)
                for pos in tick.positions
                if pos.symbol == tick.symbol
            ]
            if close:
                action = "close"
                reasons.append(R.reason(R.RISK_FLATTEN, positions=len(close)))
        elif snap.feed_close and any(p.symbol == tick.symbol for p in tick.positions):
            close = [
                CloseOrder(ticket=pos.ticket, volume=pos.volume)
                for pos in tick.positions
                if pos.symbol == tick.symbol
            ]
            action = "close"
            reasons.extend(snap.feed_close)
        elif state.mode == REDUCING and cfg.risk.reduce_on_reducing:
            close, state = self._reduce(tick, snap, state)
            if close:
                action = "reduce"
                reasons.append(
                    R.reason(R.RISK_REDUCE, positions=len(close), fraction=cfg.risk.reduce_fraction)
                )

        verdict = Verdict(
            id=tick.id,
            action=action,  # type: ignore[arg-type]
            mode=state.mode,  # type: ignore[arg-type]
            manage=self.manage(analysis, snap, signal),
            leverage_cap=result.leverage_cap,
            valid_until=tick.time.gmt + cfg.verdict.valid_seconds,
            open=open_order,
            close=close,
            reasons=reasons,
        )
        return Decision(verdict, state, transitions, signal)

    def _reduce(
        self, tick: Tick, snap: Snapshot, state: AccountState
    ) -> tuple[list[CloseOrder], AccountState]:
        """Cut each of this symbol's positions once per reducing spell. A ticket is marked done
        when asked (a lost verdict is not repeated: reducing is a convenience, the breakers and
        the EA's guard are the protection); a cut below volume min is skipped, not rounded up."""
        spec = snap.symbol
        done = set(state.reduced_tickets)
        close: list[CloseOrder] = []
        marked: list[int] = []
        for pos in tick.positions:
            if pos.symbol != tick.symbol or pos.ticket in done:
                continue
            marked.append(pos.ticket)
            cut = floor_to_step(pos.volume * self.config.risk.reduce_fraction, spec.volume_step)
            if cut >= spec.volume_min and pos.volume - cut >= spec.volume_min - 1e-12:
                close.append(CloseOrder(ticket=pos.ticket, volume=cut))
        if not marked:
            return close, state
        return close, state.evolve(reduced_tickets=(*state.reduced_tickets, *marked)[-256:])

    def manage(self, analysis: Analysis, snap: Snapshot, signal: Signal | None) -> Manage:
        rr = (
            signal.tp_distance / signal.sl_distance
            if signal is not None
            else float(getattr(self.strategy, "reward_risk", self.config.risk.min_reward_risk))
        )
        spec = snap.symbol
        key = (analysis.atr, rr, spec.digits, spec.point)
        cached = self._manage_cache.get(key)
        if cached is None:
            # The same few values repeat on every tick of a bar: build the struct once.
            if len(self._manage_cache) > 1024:
                self._manage_cache.clear()
            cached = self._manage_cache[key] = self._build_manage(analysis.atr, rr, spec)
        return cached

    def _build_manage(self, atr: float, rr: float, spec: SymbolSpec) -> Manage:
        m = self.config.manage
        return Manage(
            breakeven_r=m.breakeven_r,
            partial_r=round(m.partial_at_tp_fraction * rr, 4),
            partial_fraction=m.partial_fraction,
            trail_atr=m.trail_atr,
            trail_distance=round(m.trail_atr * atr, spec.digits),
            breakeven_buffer=round(m.breakeven_buffer_points * spec.point, spec.digits),
        )

    # ------------------------------------------------------------ per deal

    def on_trade(
        self, state: AccountState, trade: Trade, gmt: int
    ) -> tuple[AccountState, list[Transition]]:
        return apply_trade(
            state,
            entry=trade.entry,
            net_profit=net_result(trade.profit, trade.commission, trade.swap),
            position=position_key(trade.position, trade.deal),
            server_time=trade.time,
            signal_id=signal_from_comment(trade.comment),
            gmt=gmt,
            risk=self.config.risk,
            broker=self.config.broker,
        )


def empty_state(login: int) -> AccountState:
    return AccountState(login=login)


__all__ = ["Decision", "Engine", "empty_state", "signal_id"]
