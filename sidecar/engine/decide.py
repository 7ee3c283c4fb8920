"""`Engine.decide(tick, snapshot) -> Decision`: the pure decision core.

No I/O and no wall clock: everything comes from the request and the snapshot, so a live run, the
Strategy Tester and the backtester give the same verdicts for the same inputs.
"""

from __future__ import annotations

import hashlib
import math

import msgspec

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


class Engine:
    def __init__(self, config: Config, strategy: Strategy | None = None) -> None:
        self.config = config
        self.strategy = strategy or build_strategy(config.strategy.name, config.strategy.params)
        self._signal_code = f"{R.SIGNAL}_{self.strategy.name.upper()}"
        self._manage_cache: dict[tuple[float, float, int, float], Manage] = {}

    # ------------------------------------------------------------ per new bar

    def analyze(self, bars: Bars, context: StrategyContext | None = None) -> Analysis:
        """Strategy, ATR and its percentile for the newest closed bar. Pure; callers cache it per
        bar, so the volatility rank costs one ATR pass per new bar, not one per tick."""
        n = len(bars)
        if n == 0:
            return Analysis(None, 0, self.strategy.min_bars, None, 0.0)
        signal = self.strategy.evaluate(bars, context)
        period = self.config.manage.atr_period
        atr = 0.0
        if n > period:
            window = bars.tail(min(n, 10 * period))
            value = float(indicators.atr(window.high, window.low, window.close, period)[-1])
            atr = value if math.isfinite(value) else 0.0
        atr_pct = volatility.atr_percentile(bars, period, self.config.sizing.volatility_window)
        return Analysis(int(bars.time[-1]), n, self.strategy.min_bars, signal, atr, atr_pct)

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
        if transitions and any(t.event == "account.clock_backwards" for t in transitions):
            reasons.append(
                R.reason(R.DATA_CLOCK_BACKWARDS, last_gmt=snap.account.last_gmt, gmt=tick.time.gmt)
            )
        if signal is not None:
            votes = ",".join(signal.votes)
            reasons.append(
                R.reason(self._signal_code, side=signal.side, votes=votes, **signal.context)
            )
        elif analysis.bars < analysis.min_bars:
            reasons.append(R.reason(R.DATA_WARMUP, bars=analysis.bars, need=analysis.min_bars))
        else:
            reasons.append(R.SIGNAL_NONE)
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
        elif state.mode == HALTED and cfg.risk.flatten_on_halt:
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
        )


def empty_state(login: int) -> AccountState:
    return AccountState(login=login)


__all__ = ["Decision", "Engine", "empty_state", "signal_id"]
