"""Replay history through the kernel the live sidecar runs, as the EA would, on a simulated broker.

For every bar of every symbol, in time order, the runner does what the EA does on the first tick
of that bar (`OnTick` in SidecarEA.mq5):

1. the market moves to the bar's open (stops a gap jumped through fill there);
2. local management runs on that price (`ManagePositions`: partial close, breakeven, trailing);
3. the EA's guard rolls its broker day and high-water mark (`AccountTick`);
4. a `tick` message with the account, the EA's positions and the bar that just closed goes to the
   decider, which answers a verdict;
5. the verdict's closes are sent (`ApplyCloses`), then its entry passes the EA's hard limits
   (`sidecar.guard.check_entry`, the Python twin of Guard.mqh) and is filled (`ApplyOpen`);
6. the rest of the bar's price path runs on the broker with management at each point.

Every deal the broker makes goes back to the decider as a `trade` message, as OnTradeTransaction
sends it. The decider is the in-process `Kernel` by default; any function taking a message and
returning its reply works, so the same run can be sent to a real `sidecar serve` and compared
(tests/backtest/test_live_parity.py). No I/O and no clock: the same inputs give the same result.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sidecar.backtest.broker import Broker
from sidecar.backtest.data import TIMEFRAME_SECONDS
from sidecar.backtest.management import LocalManager, ea_atr_series
from sidecar.backtest.model import (
    AccountSpec,
    BacktestResult,
    Deal,
    DecisionStats,
    EquityPoint,
    InstrumentSpec,
    SeriesData,
    Span,
    TradeRecord,
)
from sidecar.backtest.news import HistoricalNews
from sidecar.backtest.symbols import tick_value_at
from sidecar.config import Config
from sidecar.engine.bars import Bars
from sidecar.engine.decide import AnalysisSeries, Engine, signal_from_comment
from sidecar.engine.reasons import code_of
from sidecar.engine.state import AccountState, Analysis
from sidecar.engine.volatility import bars_needed
from sidecar.guard import (
    GuardAccount,
    GuardEntry,
    GuardLimits,
    GuardState,
    GuardSymbol,
    SizingSpec,
    check_entry,
    entry_price_to_tick,
    floor_to_step,
    loss_per_lot_from_ticks,
    on_account,
    position_risk,
    remember_signal,
)
from sidecar.kernel import Kernel, SymbolContext
from sidecar.protocol import (
    AccountSnapshot,
    Ack,
    EAInfo,
    Hello,
    HelloAccount,
    ServerTime,
    Tick,
    TickTime,
    Trade,
    Verdict,
)

PROGRESS_EVERY = 2000
MAX_HELLO_BARS = 5000  # the protocol's bound on hello's bars
EA_NAME, EA_VERSION, EA_MAGIC = "SidecarEA", "backtest", 20251218

Message = Hello | Tick | Trade
Decider = Callable[[Message], Any]  # a message in; its Ack or Verdict (or error) out


@dataclass(frozen=True)
class Market:
    """One symbol of a run: its bars and how the broker defines it."""

    data: SeriesData
    instrument: InstrumentSpec


@dataclass
class RunOptions:
    start: int | None = None  # UTC: first bar traded (earlier bars only warm up)
    end: int | None = None  # UTC: bars opening after this are not replayed
    warmup_bars: int | None = None  # bars in hello; None = what the strategy and sizing need
    # The EA's hard-limit inputs; None: the EA's defaults with the sidecar's broker-day offset
    # (InpDayOffsetHours set like [broker] day_offset_hours, as the README asks).
    limits: GuardLimits | None = None
    ea_atr_period: int = 14  # the EA's InpAtrPeriod: its management ATR
    news: HistoricalNews | None = None
    precompute: bool = True  # analyses of the whole series at once (the in-process kernel)
    # Ticks that can only be holds (flat account, no signal) move the account state without
    # building a verdict (Kernel.tick_unless_idle); the in-process kernel only.
    skip_idle: bool = True
    # "open": the sidecar is asked at each bar's open (the EA manages its positions at the
    # open, high, low and close); "ohlc": at all four.
    ticks: str = "open"


def needed_warmup(config: Config, engine: Engine) -> int:
    """Bars the analysis needs to be complete on the first traded bar."""
    vol = bars_needed(config.manage.atr_period, config.sizing.volatility_window)
    return min(MAX_HELLO_BARS, config.journal.bars_capacity, max(engine.strategy.min_bars, vol))


class _Series:
    """Per-symbol replay state."""

    def __init__(self, market: Market) -> None:
        # The bars are copied into columns and the loader's rows are not kept: a caller that
        # drops its SeriesData gets their memory back for the run.
        self.instrument = market.instrument
        self.source = market.data.source
        self.symbol = market.data.symbol
        self.spec = market.instrument.symbol
        # Columns, not the loader's row lists: a million bars stay a few dozen MB.
        self.arr = np.array(market.data.rows, dtype=np.float64).reshape(-1, 7)
        # Prices on the symbol's digits, as the terminal quotes them (NormalizeDouble): data
        # with more decimals would otherwise give an ask below the bid at spread 0.
        p = 10.0 ** max(0, min(8, self.spec.digits))
        prices = self.arr[:, 1:5] * p
        self.arr[:, 1:5] = np.copysign(np.floor(np.abs(prices) + 0.5), prices) / p
        self.times = self.arr[:, 0].astype(np.int64)
        self.n = len(self.times)
        self.first = 0  # index of the first traded bar
        self.hello_from = 0  # index of the first bar sent in hello
        self.tf_seconds = TIMEFRAME_SECONDS[market.data.timeframe]
        self.analyses: AnalysisSeries | None = None  # every bar's, from hello's first bar on
        self.ea_atr: np.ndarray = np.zeros(0)

    def row(self, i: int) -> tuple[Any, ...]:
        """Bar i as the protocol carries it: integer time, then floats (what a live sidecar
        decodes from the EA's JSON)."""
        r = self.arr[i].tolist()
        return (int(r[0]), *r[1:])


class Backtest:
    """One run over one account: `run()` replays and returns the result. `on_reply` sees every
    message with its reply (an idle tick's reply is the account state it left)."""

    def __init__(
        self,
        config: Config,
        account: AccountSpec,
        markets: Sequence[Market],
        options: RunOptions | None = None,
        decider: Decider | None = None,
        on_reply: Callable[[Message, Any], None] | None = None,
    ) -> None:
        if not markets:
            raise ValueError("markets: at least one symbol is needed")
        names = [m.data.symbol for m in markets]
        if len(set(names)) != len(names):
            raise ValueError(f"markets: each symbol once, got {', '.join(names)}")
        timeframes = {m.data.timeframe for m in markets}
        if len(timeframes) != 1:
            raise ValueError(f"timeframe: every symbol on one timeframe, got {sorted(timeframes)}")
        self.config = config
        self.account = account
        self.options = options or RunOptions()
        self.timeframe = timeframes.pop()
        self.kernel = Kernel(config)
        if self.options.news is not None:
            self.kernel.feed_gate = self.options.news.gate
        self.decide_message = decider or self._in_process
        self.on_reply = on_reply
        self.broker = Broker(account, {m.data.symbol: m.instrument for m in markets})
        self.manager = LocalManager(self.broker)
        self.limits = self.options.limits or GuardLimits(
            day_offset_hours=config.broker.day_offset_hours
        )
        # One guard state per chart, as the EA keeps its own per symbol (StateKey).
        self.guards = {m.data.symbol: GuardState() for m in markets}
        self.offset = round(account.server_offset_hours * 3600)
        self.series = [self._prepare(m) for m in markets]
        if self.options.precompute and decider is None:
            self.kernel.analysis_source = self._precomputed
        self.stats = DecisionStats()
        self.equity: list[EquityPoint] = []
        self.open_reasons: dict[str, tuple[str, ...]] = {}  # signal id -> opening verdict reasons
        self.open_levels: dict[str, tuple[float, float]] = {}  # signal id -> (sl, tp) asked
        self.sent_deals = 0
        self._ids = 0
        self.mode = "active"
        self.mode_since: int | None = None
        self.modes: list[Span] = []
        self.progress: Callable[[int], None] | None = None  # told every PROGRESS_EVERY bars
        self._reported = 0

    # ------------------------------------------------------------ setup

    def _prepare(self, market: Market) -> _Series:
        if not market.data.rows:
            raise ValueError(f"{market.data.symbol}: no bars")
        warm = self.options.warmup_bars
        if warm is None:
            warm = needed_warmup(self.config, self.kernel.engine)
        warm = max(0, min(warm, MAX_HELLO_BARS))
        s = _Series(market)
        first = warm
        if self.options.start is not None:
            first = max(first, int(np.searchsorted(s.times, self.options.start + self.offset)))
        if first >= s.n:
            last = datetime.fromtimestamp(int(s.times[-1]), UTC).strftime("%Y-%m-%d %H:%M")
            why = (
                f"the data ends at {last} (server time), before --from"
                if self.options.start is not None and first > warm
                else f"{s.n} bars, not more than the {warm}-bar warm-up the strategy and the "
                "volatility rank need (--warmup-bars N trades sooner, with a cold analysis)"
            )
            raise ValueError(
                f"{market.data.symbol}: no bar to trade in {market.data.source or 'the data'}: "
                f"{why}"
            )
        s.first, s.hello_from = first, max(0, first - warm)
        # The EA's management ATR: MT5's iATR(14) of the newest closed bar (SidecarEA CurrentAtr).
        arr = s.arr
        s.ea_atr = ea_atr_series(arr[:, 2], arr[:, 3], arr[:, 4], self.options.ea_atr_period)
        if self.options.precompute:
            self._precompute(s, arr)
        return s

    def _precompute(self, s: _Series, arr: np.ndarray) -> None:
        """Every bar's analysis at once, from the bars the kernel will hold (hello's first bar
        on): the kernel asks `_precomputed` instead of analysing bar by bar."""
        sub = arr[s.hello_from :]
        bars = Bars(
            time=sub[:, 0].astype(np.int64),
            open=sub[:, 1].copy(),
            high=sub[:, 2].copy(),
            low=sub[:, 3].copy(),
            close=sub[:, 4].copy(),
            tick_volume=sub[:, 5].copy(),
            spread=sub[:, 6].copy(),
        )
        s.analyses = self.kernel.engine.analyze_series(bars, self.config.journal.bars_capacity)

    def _precomputed(self, key: tuple[int, str, str], ctx: SymbolContext) -> Analysis | None:
        for s in self.series:
            if s.symbol == key[1] and s.analyses is not None:
                k = s.analyses.index_of(ctx.history.last_time or -1)
                a = None if k is None else s.analyses[k]
                # Only when the kernel holds exactly the bars the analysis was computed on.
                if a is not None and a.bars == len(ctx.history):
                    return a
        return None

    # ------------------------------------------------------------ decider

    def _in_process(self, msg: Message) -> Any:
        if isinstance(msg, Tick):
            if self.options.skip_idle:
                out = self.kernel.tick_unless_idle(msg)
                return out if isinstance(out, AccountState) else out.verdict
            return self.kernel.tick(msg).verdict
        if isinstance(msg, Trade):
            out = self.kernel.trade(msg, msg.time - self.offset)
            self.kernel.commit_trade(out)
            return out.ack
        return self.kernel.hello(msg).ack

    def _ask(self, msg: Message) -> Any:
        reply = self.decide_message(msg)
        if self.on_reply is not None:  # an idle tick's reply is the account state it left
            self.on_reply(msg, reply)
        return reply

    def _next_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids}"

    # ------------------------------------------------------------ the replay

    def _steps(self) -> Iterator[tuple[int, list[tuple[_Series, int]]]]:
        """(server time, [(series, bar index)]) for each bar opening time, in order."""
        end = None if self.options.end is None else self.options.end + self.offset
        if len(self.series) == 1:
            s = self.series[0]
            for i in range(s.first, s.n):
                t = int(s.times[i])
                if end is not None and t > end:
                    return
                yield t, [(s, i)]
            return

        def bars_of(k: int, s: _Series) -> Iterator[tuple[int, int, int]]:
            return ((int(s.times[i]), k, i) for i in range(s.first, s.n))

        # Merged lazily: a million bars per symbol never become one sorted list.
        pending = heapq.merge(*(bars_of(k, s) for k, s in enumerate(self.series)))
        group: list[tuple[_Series, int]] = []
        current = None
        for t, k, i in pending:
            if end is not None and t > end:
                break
            if current is not None and t != current:
                yield current, group
                group = []
            current = t
            group.append((self.series[k], i))
        if group and current is not None:
            yield current, group

    def run(self) -> BacktestResult:
        for s in self.series:
            self._hello(s)
        bars = 0
        last_t = 0
        for t, group in self._steps():
            for s, i in group:
                self._open_phase(s, i, t)
            self._path_phase(group, t)
            bars += len(group)
            self._mark(t + group[0][0].tf_seconds - 1)  # the equity as the bars close
            last_t = t
            if self.progress is not None and bars % PROGRESS_EVERY < len(group):
                self.progress(bars - self._reported)
                self._reported = bars
        end_t = last_t + self.series[0].tf_seconds - 1 if last_t else 0
        if self.broker.positions():
            self.broker.close_all(end_t, "end")
            self._send_deals()
            self._mark(end_t)
        self._close_mode(end_t)
        return self._result(bars)

    def total_bars(self) -> int:
        """Bars `run` will replay (before `--to` cuts it short)."""
        return sum(s.n - s.first for s in self.series)

    def _hello(self, s: _Series) -> None:
        t = int(s.times[s.first])
        acc = self.broker.account()
        msg = Hello(
            v=1,
            id=self._next_id("h"),
            ea=EAInfo(
                name=EA_NAME,
                version=EA_VERSION,
                magic=EA_MAGIC,
                day_offset_hours=self.limits.day_offset_hours,
            ),
            account=HelloAccount(
                login=self.account.login,
                server=self.account.server,
                currency=self.account.currency,
                leverage=self.account.leverage,
                balance=acc.balance,
                equity=acc.equity,
                margin=acc.margin,
                free_margin=acc.free_margin,
            ),
            time=ServerTime(server=t, gmt=t - self.offset),
            symbol=s.spec,
            timeframe=self.timeframe,
            bars=[s.row(k) for k in range(s.hello_from, s.first)],
        )
        reply = self._ask(msg)
        if not isinstance(reply, Ack):
            raise RuntimeError(f"hello for {s.symbol} refused: {reply!r}")

    def _open_phase(self, s: _Series, i: int, t: int) -> None:
        row = s.arr[i]
        bid = float(row[1])
        ask = self.broker.ask_for(s.symbol, bid, float(row[6]))
        self.broker.set_quote(s.symbol, bid, ask, t)
        self._send_deals()
        # The EA's management ATR moves once per bar: iATR of the bar that just closed.
        self.manager.set_atr(s.symbol, float(s.ea_atr[i - 1]) if i > 0 else 0.0)
        self._ea_tick(s, t, bid, ask, [s.row(i - 1)] if i > s.hello_from else [], first=True)

    def _ea_tick(
        self, s: _Series, t: int, bid: float, ask: float, bars: list[Any], first: bool = False
    ) -> None:
        """SidecarEA OnTick at a price: AccountTick (the guard), ManagePositions, SendTick and
        the verdict's closes and entry. `first`: the bar's first tick, where a bar's signal and
        its refusals are counted (once per bar, with `ticks="ohlc"` too)."""
        self._ea_local(s.symbol, bid, ask, t)
        verdict = self._tick(s, t, bid, ask, bars, first)
        if verdict is None:
            return
        self.manager.set_manage(s.symbol, verdict.manage)
        self._apply_closes(s, verdict, t)
        self._apply_open(s, verdict, t, bid, ask)

    def _ea_local(self, symbol: str, bid: float, ask: float, t: int) -> None:
        """What the EA does on every tick without the sidecar: AccountTick, then
        ManagePositions."""
        on_account(self.guards[symbol], self.limits, t, self.broker.account().equity)
        self.manager.on_point(symbol, bid, ask, t)
        self._send_deals()

    def _path_phase(self, group: list[tuple[_Series, int]], t: int) -> None:
        """The rest of the bars opening at `t`: high, low and close. The EA manages its
        positions at each (and asks the sidecar there with `ticks="ohlc"`); the points of
        several symbols interleave so that time never goes back."""
        ohlc = self.options.ticks == "ohlc"
        if not ohlc and not self.broker.has_positions():
            for s, i in group:  # a flat account: only the closing quotes move
                self.broker.process_bar(
                    s.symbol, s.row(i), bar_close_time=t + s.tf_seconds, include_open=False
                )
            return
        paths = []
        for s, i in group:
            path = self.broker.bar_path(
                s.symbol, s.row(i), bar_close_time=t + s.tf_seconds, include_open=False
            )
            self._send_deals()
            paths.append((s, path))
        for k in range(3):
            for s, path in paths:
                bid, ask, when = path[k]
                self.broker.move_to(s.symbol, bid, ask, when)
                self._send_deals()
                if ohlc:
                    self._ea_tick(s, when, bid, ask, [])
                else:
                    self._ea_local(s.symbol, bid, ask, when)

    def _tick(
        self, s: _Series, t: int, bid: float, ask: float, bars: list[Any], first: bool
    ) -> Verdict | None:
        acc = self.broker.account()
        msg = Tick(
            v=1,
            id=self._next_id("t"),
            login=self.account.login,
            symbol=s.symbol,
            timeframe=self.timeframe,
            time=TickTime(server=t, gmt=t - self.offset, msc=t * 1000),
            bid=bid,
            ask=ask,
            account=AccountSnapshot(
                balance=acc.balance,
                equity=max(acc.equity, 0.0),
                margin=acc.margin,
                free_margin=acc.free_margin,
            ),
            # SendTick: the EA's positions of every symbol, newest first
            positions=[p.to_protocol() for p in reversed(self.broker.positions())],
            bars=bars,
        )
        reply = self._ask(msg)
        self.stats.ticks += 1
        if isinstance(reply, AccountState):  # an idle tick: a hold, nothing to act on
            self.stats.actions["hold"] = self.stats.actions.get("hold", 0) + 1
            self._track_mode(reply.mode, t)
            return None
        if not isinstance(reply, Verdict):
            return None
        self._count(reply, t, first)
        return reply

    def _count(self, v: Verdict, t: int, first: bool) -> None:
        st = self.stats
        st.actions[v.action] = st.actions.get(v.action, 0) + 1
        signal_at = next((k for k, r in enumerate(v.reasons) if r.startswith("SIGNAL_")), -1)
        if first and signal_at >= 0 and code_of(v.reasons[signal_at]) != "SIGNAL_NONE":
            st.signals += 1
            if v.action != "open":
                for r in v.reasons[:signal_at]:
                    code = code_of(r)
                    if code != "DATA_CLOCK_BACKWARDS":
                        st.refused[code] = st.refused.get(code, 0) + 1
        self._track_mode(v.mode, t)

    def _track_mode(self, mode: str, t: int) -> None:
        if mode != self.mode:
            self._close_mode(t)
            self.mode = mode
            self.mode_since = t
        elif self.mode_since is None:
            self.mode_since = t

    def _close_mode(self, t: int) -> None:
        if self.mode_since is None:
            return
        start, end = self.mode_since - self.offset, t - self.offset
        self.stats.mode_seconds[self.mode] = self.stats.mode_seconds.get(self.mode, 0) + max(
            0, end - start
        )
        if self.mode != "active" and end > start:
            self.modes.append(Span(start, end, self.mode))
        self.mode_since = t

    def _apply_closes(self, s: _Series, v: Verdict, t: int) -> None:
        """SidecarEA ApplyCloses: only this symbol's positions of ours; a part below volume
        min is skipped, a remainder below it is closed with the rest."""
        step, vmin = s.spec.volume_step, s.spec.volume_min
        for c in v.close:
            pos = self.broker.position(c.ticket)
            if pos is None or pos.symbol != s.symbol:
                continue
            vol = c.volume
            if vol < pos.volume - 1e-7:
                vol = floor_to_step(vol, step)
                if vol < vmin:
                    continue
                if pos.volume - vol < vmin - 1e-7:
                    vol = pos.volume
            self.broker.close_position(
                c.ticket, 0.0 if vol >= pos.volume else vol, t, f"verdict {v.action}"
            )
            self._send_deals()

    def _apply_open(self, s: _Series, v: Verdict, t: int, bid: float, ask: float) -> None:
        o = v.open
        if o is None or v.action != "open" or v.mode == "halted":
            return
        buy = o.side == "buy"
        price = ask if buy else bid
        inst = s.instrument.symbol
        # SymbolInfoDouble(SYMBOL_TRADE_TICK_VALUE) now: it moves with the price for USDJPY.
        tick_value = tick_value_at(inst, price, self.account.currency)
        sizing = SizingSpec(
            inst.tick_size, tick_value, inst.volume_min, inst.volume_step, inst.volume_max
        )
        loss = (
            loss_per_lot_from_ticks(price, o.sl, sizing)
            if (o.sl < bid if buy else o.sl > ask)
            else 0.0
        )
        if (buy and o.tp <= ask) or (not buy and o.tp >= bid):
            self._guard_refused("BAD_TP")
            return
        gmt = t - self.offset
        decision = check_entry(
            self.limits,
            self.guards[s.symbol],
            self._guard_account(s),
            GuardSymbol(
                inst.tick_size, tick_value, inst.volume_min, inst.volume_step, inst.volume_max
            ),
            GuardEntry(
                volume=o.volume,
                price=price,
                loss_per_lot=loss,
                signal_id=o.signal_id,
                now_gmt=gmt,
                valid_until=v.valid_until,
                now_server=t,
                leverage_cap=float(v.leverage_cap),
                spread_points=(ask - bid) / inst.point,
            ),
        )
        if not decision.allowed:
            self._guard_refused(decision.code)
            return
        # Executor.Open: the levels on the tick grid toward the entry, the stops checked
        # locally (a refusal there sends nothing, so the signal is not remembered).
        sl = entry_price_to_tick(o.sl, inst.tick_size, inst.digits, buy)
        tp = entry_price_to_tick(o.tp, inst.tick_size, inst.digits, not buy) if o.tp > 0 else 0.0
        ref = bid if buy else ask
        gap = inst.stops_level * inst.point
        stops_ok = (
            (ref - sl >= gap and (tp == 0.0 or tp - ref >= gap) and sl < ref)
            if buy
            else (sl - ref >= gap and (tp == 0.0 or ref - tp >= gap) and sl > ref)
        )
        if not stops_ok:
            self._guard_refused("BAD_STOPS")
            return
        result = self.broker.market_order(
            s.symbol, o.side, decision.volume, sl, tp, f"sc:{o.signal_id}", t
        )
        # ApplyOpen: a request that reached the server is remembered (never sent twice).
        remember_signal(self.guards[s.symbol], self.limits, o.signal_id, t)
        if not result.ok:
            self._guard_refused(f"RETCODE_{result.retcode}")
            return
        self.stats.opened += 1
        self.open_reasons[o.signal_id] = tuple(v.reasons)
        self.open_levels[o.signal_id] = (sl, tp)
        self._send_deals()

    def _guard_account(self, s: _Series) -> GuardAccount:
        """SidecarEA FillGuardAccount; every position of a backtest account is the EA's."""
        acc = self.broker.account()
        positions = self.broker.positions()
        # GuardPositionRisk over every position: what each loses further if its stop is hit,
        # valued at its closing price with the tick value there (as the EA reads them).
        open_risk, no_stop = 0.0, 0
        for p in positions:
            inst = self.broker.instruments[p.symbol]
            tv = tick_value_at(inst, p.price_current, self.account.currency)
            risk = position_risk(
                p.side == "buy", p.volume, p.price_current, p.sl, inst.symbol.tick_size, tv
            )
            if risk < 0.0:
                no_stop += 1
            else:
                open_risk += risk
        return GuardAccount(
            balance=acc.balance,
            equity=acc.equity,
            floating_pl=acc.floating,
            positions=len(positions),
            open_notional=acc.notional,
            symbol_positions=sum(1 for p in positions if p.symbol == s.symbol),
            open_risk=open_risk,
            no_stop=no_stop,
        )

    def _guard_refused(self, code: str) -> None:
        g = self.stats.guard_refused
        g[code] = g.get(code, 0) + 1

    def _send_deals(self) -> None:
        """Every deal the broker made since the last call, in order, as a `trade` message (what
        OnTradeTransaction queues)."""
        deals = self.broker.deals
        while self.sent_deals < len(deals):
            d = deals[self.sent_deals]
            self.sent_deals += 1
            msg = Trade(
                v=1,
                id=self._next_id("d"),
                login=self.account.login,
                deal=d.deal,
                symbol=d.symbol,
                side=d.side,
                entry=d.entry,
                volume=d.volume,
                price=d.price,
                time=d.time,
                order=d.order,
                position=d.position,
                profit=d.profit,
                commission=d.commission,
                swap=d.swap,
                comment=d.comment,
            )
            self._ask(msg)

    def _mark(self, t: int) -> None:
        acc = self.broker.account()
        lev = acc.notional / acc.equity if acc.equity > 0 else 0.0
        self.equity.append(
            EquityPoint(t - self.offset, acc.balance, acc.equity, acc.margin, self.mode, lev)
        )

    # ------------------------------------------------------------ result

    def _result(self, bars: int) -> BacktestResult:
        deals = list(self.broker.deals)
        trades = trade_records(deals, self.offset, self.open_reasons, self.open_levels)
        news = self.options.news
        start = self.equity[0].time if self.equity else 0
        end = self.equity[-1].time if self.equity else 0
        blackouts = (
            news.blackout_spans(
                {c for s in self.series for c in news.currencies_of(s.spec)}, start, end
            )
            if news is not None
            else []
        )
        return BacktestResult(
            account=self.account,
            instruments={s.symbol: s.instrument for s in self.series},
            timeframe=self.timeframe,
            start=start,
            end=end,
            bars=bars,
            config=self.config.model_dump(mode="json"),
            equity=self.equity,
            trades=trades,
            deals=deals,
            modes=self.modes,
            blackouts=blackouts,
            decisions=self.stats,
        )


def trade_records(
    deals: Sequence[Deal],
    offset: int,
    reasons: dict[str, tuple[str, ...]],
    levels: dict[str, tuple[float, float]],
) -> list[TradeRecord]:
    """Deals grouped into positions, in the order they opened (UTC times)."""
    by_pos: dict[int, list[Deal]] = {}
    for d in deals:
        by_pos.setdefault(d.position, []).append(d)
    out = []
    for pos, ds in by_pos.items():
        entry = ds[0]
        outs = [d for d in ds[1:] if d.entry in ("out", "inout")]
        if not outs:
            continue
        vol_out = sum(d.volume for d in outs)
        exit_price = sum(d.price * d.volume for d in outs) / vol_out if vol_out else entry.price
        net = sum(d.profit + d.commission + d.swap for d in ds)
        sid = signal_from_comment(entry.comment) or ""
        out.append(
            TradeRecord(
                position=pos,
                symbol=entry.symbol,
                side=entry.side,
                volume=entry.volume,
                entry_time=entry.time - offset,
                entry_price=entry.price,
                exit_time=outs[-1].time - offset,
                exit_price=round(exit_price, 10),
                sl=levels.get(sid, (0.0, 0.0))[0],
                tp=levels.get(sid, (0.0, 0.0))[1],
                profit=round(net, 2),
                commission=round(sum(d.commission for d in ds), 2),
                swap=round(sum(d.swap for d in ds), 2),
                exit_reason=outs[-1].reason,
                signal_id=sid,
                reasons=reasons.get(sid, ()),
            )
        )
    return out


__all__ = ["Backtest", "Market", "RunOptions", "needed_warmup", "trade_records"]
