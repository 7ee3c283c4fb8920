"""The kernel: one book of accounts around the pure engine, shared by every way of running it.

It holds what the decisions need between messages: the symbol contexts introduced by `hello`
(spec, bar history, the newest analysis), the per-account risk states, the money value of a price
move per symbol, and the closed-position statistics behind Kelly sizing. A protocol message goes
in; a reply comes out with the effects the caller must persist (a state to save now or soon,
transitions to record, a trade row). It does no I/O and never reads the clock: the live service
wraps it with SQLite, metrics and logs, the Strategy Tester book and the backtester run the same
object in memory, so the three give the same verdicts for the same messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sidecar.config import Config
from sidecar.engine.account import Transition, observe
from sidecar.engine.account import resume as resume_state
from sidecar.engine.bars import BarHistory, MergeReport
from sidecar.engine.decide import Decision, Engine, empty_state
from sidecar.engine.state import AccountState, Analysis, Snapshot
from sidecar.engine.strategies.base import StrategyContext
from sidecar.kernel.trade_stats import Loader, TradeJournal
from sidecar.protocol import UNKNOWN_SYMBOL, Ack, Hello, ProtocolError, SymbolSpec, Tick, Trade

# Bounds on what untrusted messages can make the book remember.
MAX_SYMBOLS = 512  # account/symbol/timeframe contexts (each holds up to bars_capacity bars)

SymbolKey = tuple[int, str, str]  # (login, symbol, timeframe)


@dataclass
class SymbolContext:
    spec: SymbolSpec
    tester: bool
    history: BarHistory
    analysis: Analysis


# Feeds (news blackouts, sentiment) plug in here: given the tick, its true GMT time and the
# symbol's context, return (entry blocks, defensive-leverage reasons, reasons to close this
# symbol now) as reason strings. Must be a function of its arguments and of data visible at that
# time: it runs on the verdict path (no network) and in backtests (no look-ahead).
FeedGate = Callable[
    [Tick, int, SymbolContext], tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
]
# Where a new bar's analysis comes from when not computed here: the backtester hands in the
# analyses it computed over the whole series at once (None = compute it here).
AnalysisSource = Callable[[SymbolKey, SymbolContext], Analysis | None]


@dataclass(frozen=True)
class HelloOutcome:
    ack: Ack
    context: SymbolContext
    merge: MergeReport
    state: AccountState  # the account's state (unchanged by a hello)
    reset: bool  # a tester run started: the caller forgets the account's persisted records


@dataclass(frozen=True)
class TickOutcome:
    decision: Decision
    previous: AccountState
    # "now": a lock, mode, anchor day, streak or signal id changed (persist before replying);
    # "soon": only the high-water mark rose; None: nothing to persist.
    save: Literal["now", "soon"] | None
    transitions: list[Transition]
    merge: MergeReport | None  # None when the tick carried no bars
    new_bar: bool  # the analysis was recomputed

    @property
    def verdict(self) -> Any:
        return self.decision.verdict

    @property
    def state(self) -> AccountState:
        return self.decision.state


@dataclass(frozen=True)
class TradeOutcome:
    ack: Ack
    row: dict[str, Any]  # the deal as the store records it
    state: AccountState  # the account's state counting this deal
    previous: AccountState
    transitions: list[Transition]
    gmt: int  # when the transitions happened (the newest tick's GMT)


@dataclass
class Kernel:
    config: Config
    engine: Engine = field(default=None)  # type: ignore[assignment]
    tester: bool = False  # a Strategy Tester book: each hello starts the account afresh
    states: dict[int, AccountState] = field(default_factory=dict)
    deals: Loader | None = None  # reads a login's past deals for the trade statistics
    feed_gate: FeedGate | None = None
    # Feeds may give strategies more than bars (macro surprises per currency), per symbol.
    strategy_context: Callable[[SymbolSpec], StrategyContext] | None = None
    analysis_source: AnalysisSource | None = None

    def __post_init__(self) -> None:
        if self.engine is None:
            self.engine = Engine(self.config)
        self.symbols: dict[SymbolKey, SymbolContext] = {}
        self.value_per_price: dict[int, dict[str, float]] = {}
        self.trade_stats = TradeJournal(
            self.config.sizing.kelly_trades, self.deals or (lambda *_: [])
        )
        for login in self.states:
            self.trade_stats.stats(login)

    # ------------------------------------------------------------ messages

    def hello(self, msg: Hello) -> HelloOutcome:
        login = msg.account.login
        reset = False
        if self.tester:
            # A tester run starts from its own initial deposit: forget the previous run's
            # anchors, locks and deals (deal tickets restart too).
            self.states.pop(login, None)
            self.trade_stats.forget(login)
            reset = True
        key = (login, msg.symbol.name, msg.timeframe)
        history = BarHistory(self.config.journal.bars_capacity)
        report = history.merge(msg.bars)
        ctx = SymbolContext(msg.symbol, msg.ea.tester, history, None)  # type: ignore[arg-type]
        ctx.analysis = self._analyze(key, ctx)
        replaced = self.symbols.pop(key, None)  # re-insert: the dict's order is eviction order
        if replaced is not None:
            self.engine.forget(replaced.history.id)
        self.symbols[key] = ctx
        while len(self.symbols) > MAX_SYMBOLS:
            # Bounded memory against a flood of hellos; an evicted live EA gets UNKNOWN_SYMBOL
            # on its next tick and introduces itself again.
            evicted = self.symbols.pop(next(iter(self.symbols)))
            self.engine.forget(evicted.history.id)
        self.value_per_price.setdefault(login, {})[msg.symbol.name] = (
            msg.symbol.tick_value / msg.symbol.tick_size
        )
        state = self.states.get(login) or empty_state(login)
        return HelloOutcome(Ack(id=msg.id), ctx, report, state, reset)

    def tick(self, msg: Tick) -> TickOutcome:
        ctx, report, new_bar = self._merge(msg)
        return self._decide(msg, ctx, report, new_bar)

    def tick_unless_idle(self, msg: Tick) -> TickOutcome | AccountState:
        """For replays: a tick that can only be a hold — no position on the account and no
        signal on the symbol's newest bar — moves the account state as `tick` would (the
        engine's `observe`: anchors, locks, breaker mode) without running the gates or
        building a verdict, and returns that state. Any other tick is a full `tick`.

        Exact by construction: with neither a proposal nor a position, `decide` returns the
        observed state unchanged and a hold (tests/backtest/test_live_parity.py compares it
        with a live sidecar answering every tick)."""
        ctx, report, new_bar = self._merge(msg)
        if msg.positions or ctx.analysis.signal is not None:
            return self._decide(msg, ctx, report, new_bar)
        state = self.states.get(msg.login) or empty_state(msg.login)
        new, _ = observe(
            state,
            server_time=msg.time.server,
            gmt=msg.time.gmt,
            equity=msg.account.equity,
            balance=msg.account.balance,
            risk=self.config.risk,
            broker=self.config.broker,
        )
        self.states[msg.login] = new
        return new

    def _merge(self, msg: Tick) -> tuple[SymbolContext, MergeReport | None, bool]:
        key = (msg.login, msg.symbol, msg.timeframe)
        ctx = self.symbols.get(key)
        if ctx is None:
            raise ProtocolError(
                UNKNOWN_SYMBOL,
                f"symbol: {msg.symbol} {msg.timeframe} for login {msg.login} was not introduced "
                "by hello; send hello first",
                msg.id,
            )
        report = None
        new_bar = False
        if msg.bars:
            report = ctx.history.merge(msg.bars)
            if report.appended or report.replaced:
                # Once per new bar, not per tick.
                ctx.analysis = self._analyze(key, ctx)
                new_bar = True
        return ctx, report, new_bar

    def _decide(
        self, msg: Tick, ctx: SymbolContext, report: MergeReport | None, new_bar: bool
    ) -> TickOutcome:
        state = self.states.get(msg.login) or empty_state(msg.login)
        blocks: tuple[str, ...] = ()
        defensive: tuple[str, ...] = ()
        close: tuple[str, ...] = ()
        if self.feed_gate is not None:
            blocks, defensive, close = self.feed_gate(
                msg, self.true_gmt(msg.time.server, msg.time.gmt, ctx.tester), ctx
            )
        snap = Snapshot(
            account=state,
            symbol=ctx.spec,
            analysis=ctx.analysis,
            feed_blocks=blocks,
            feed_defensive=defensive,
            feed_close=close,
            value_per_price=self.value_per_price.get(msg.login, {}),
            trades=self.trade_stats.stats(msg.login),
        )
        decision = self.engine.decide(msg, snap)
        new = decision.state
        save: Literal["now", "soon"] | None = None
        if not new.same_risk_state(state):
            save = "now"  # locks and anchors must survive a kill -9 right after the reply
        elif new.hwm != state.hwm:
            save = "soon"
        self.states[msg.login] = new
        return TickOutcome(decision, state, save, decision.transitions, report, new_bar)

    def trade(self, msg: Trade, received_gmt: int) -> TradeOutcome:
        """The deal's effect on the account; nothing changes until `commit_trade` (the caller
        commits once the deal is known to be new: deals are idempotent by ticket)."""
        row = {
            "login": msg.login,
            "deal": msg.deal,
            "order_id": msg.order,
            "position": msg.position,
            "symbol": msg.symbol,
            "side": msg.side,
            "entry": msg.entry,
            "volume": msg.volume,
            "price": msg.price,
            "profit": msg.profit,
            "commission": msg.commission,
            "swap": msg.swap,
            "time": msg.time,
            "comment": msg.comment,
            "received_gmt": received_gmt,
        }
        self.trade_stats.stats(msg.login)  # load before this deal is stored: counted once
        state = self.states.get(msg.login) or empty_state(msg.login)
        # Deal times are server time; signal ids and events are stamped in the EA's GMT, so use
        # the newest tick's GMT (the deal just happened), or the deal time before any tick.
        gmt = state.last_gmt or msg.time
        new, transitions = self.engine.on_trade(state, msg, gmt)
        return TradeOutcome(Ack(id=msg.id), row, new, state, transitions, gmt)

    def commit_trade(self, outcome: TradeOutcome) -> None:
        login = outcome.row["login"]
        self.states[login] = outcome.state
        self.trade_stats.add_deal(login, outcome.row)

    def resume(
        self, login: int, reason: str
    ) -> tuple[AccountState, AccountState, list[Transition]]:
        """(previous, new, transitions) of an operator's resume; KeyError for an unknown login."""
        state = self.states[login]
        new, transitions = resume_state(state, gmt=state.last_gmt, reason=reason)
        self.states[login] = new
        return state, new, transitions

    # ------------------------------------------------------------ helpers

    def true_gmt(self, server: int, gmt: int, tester: bool) -> int:
        """In the Strategy Tester TimeGMT() is server time: apply the configured offset."""
        if tester:
            return int(server - self.config.broker.tester_gmt_offset_hours * 3600)
        return gmt

    def _analyze(self, key: SymbolKey, ctx: SymbolContext) -> Analysis:
        if self.analysis_source is not None:
            given = self.analysis_source(key, ctx)
            if given is not None:
                return given
        context = None if self.strategy_context is None else self.strategy_context(ctx.spec)
        return self.engine.analyze(ctx.history.view(), context)
