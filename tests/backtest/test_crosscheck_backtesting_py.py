"""Cross-check: our backtester and backtesting.py trade `sma_cross` the same way.

The same strategy decisions go through two independent engines: ours (the kernel, the EA's guard
and the simulated MT5 broker) and backtesting.py 0.6.6 (a pinned dev dependency). On its bundled
EURUSD H1 and GOOG daily data both must make the same trades (side, entry bar, exit bar, size,
exit price) and end within 0.5% of each other's equity.

How backtesting.py is driven (`_Mirror`): in `next()`, after bar i closed, it asks OUR
`SmaCrossStrategy.evaluate` on the bars so far (the test compares the engines, not two SMA
codes) and, when flat, buys or sells with a market order, which fills at bar i+1's open: the open
our runner ticks at and fills on. Stop and target go at the strategy's distances from that open,
rounded to the digits, as the sidecar's verdict puts them; `_Mirror` reads bar i+1's open from the
frame for that, which is no look-ahead: the EA also decides at the first tick of bar i+1. The size
is computed independently by the same fixed-fractional rule from the same equity (risk_pct of
equity / loss per lot at the stop, floored to the volume step, in units = lots x contract_size),
not fed from our run, so a wrong volume, profit or balance on either side shows.

What MT5 has and backtesting.py does not model, neutralised:
- spread 0 (`InstrumentSpec.spread_points=0`, `spread=0`), no commission, a swap-free account;
- margin never binds: account leverage 500 on both (`margin=1/500`), the sidecar's leverage caps
  and the guard's at 500 (the positions' notional is a few times equity at most);
- the sidecar's breakers out of reach: daily and floating loss at 100% (sidecar and guard), the
  guard's drawdown at 100%, the drawdown modes at 97/98/99%, no loss-streak cooldown; no news;
- plain fixed-fractional sizing: Kelly off, `sizing.volatility_factor = 1` (the high-volatility
  cut multiplies by 1; there is no knob to switch the ATR rank itself off);
- no local management: breakeven, partial close and trailing off (`manage.*` = 0), so a position
  closes only at its SL, its TP or the end of the data;
- one position at a time: `risk.one_per_symbol` refuses a cross while a position is open;
  `_Mirror` skips it too.

Where the engines' rules had to be matched (backtesting.py `_Broker._process_orders` and
`_Broker.new_order`):
- SL and TP both inside one bar: `new_order` puts a trade's SL order at the front of the queue
  ("Ensure SL orders are processed first"), so the SL fills; our broker takes the SL first too.
- a bar opening through a level: `_process_orders` fills a stop (SL) at `min/max(open, stop)` and
  a limit (TP) at `max/min(open, limit)`, i.e. at the open, as our broker fills both.
- the entry bar: `_process_orders` re-runs the new SL/TP orders in the bar their market order
  filled (`reprocess_orders`), as our broker walks the entry bar after the fill.
- a cross on bar i while the position's level is gapped through at bar i+1's open: our broker
  fills the stop at that open before the EA's tick, so the EA is flat and enters on the same
  open; backtesting.py too processes the SL/TP orders before a new market order. `_Mirror` treats
  such a position as closed and sizes from the balance after that close.
- levels checked against the current close: `new_order` refuses SL/TP on the wrong side of bar
  i's close, not of the fill price (bar i+1's open); after a gap wider than the stop, valid MT5
  levels are refused there. `_Mirror` then sets them on the order after creating it
  (`Order._replace`, which the broker itself uses), so they act from the fill on.
- the end of the data: our runner closes what is still open at the last bar's close;
  `finalize_trades` re-runs the last bar and closes at its open. The frame given to backtesting.py
  has one flat bar at the last close appended, on which `_Mirror` never enters: both close at the
  same price, and that exit counts as the last real bar.

Each case names the rules its data exercise (`Case.exercises`), checked on our trades, so a
change of data or parameters cannot quietly stop covering them.

Residual differences, none of which occurs on these data: our deal money is rounded to cents,
backtesting.py's is not (a size floored to the step could then differ by one step: hence the
0.5% equity tolerance, while sizes and prices are compared exactly); backtesting.py takes the SL
of a bar that opens beyond the TP and then trades through the SL (ours fills the TP at the open).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from backtesting import Backtest as BtBacktest
from backtesting import Strategy as BtStrategy
from backtesting.test import EURUSD, GOOG

from sidecar.backtest.data import load_backtesting_frame
from sidecar.backtest.model import AccountSpec, InstrumentSpec, TradeRecord
from sidecar.backtest.runner import Backtest, Market, RunOptions
from sidecar.backtest.symbols import resolve_instrument
from sidecar.config import Config, load_config
from sidecar.engine.bars import Bars
from sidecar.engine.strategies import strategy_problems
from sidecar.engine.strategies.sma_cross import SmaCrossStrategy
from sidecar.guard import GuardLimits
from sidecar.protocol import SymbolSpec

LEVERAGE = 500
RISK_PCT = 1.0
EQUITY_TOLERANCE = 0.005  # final equity, relative
MIN_TRADES = 10

# backtesting.py's own statistics use a pandas API deprecated since; nothing of ours.
pytestmark = pytest.mark.filterwarnings("ignore:DatetimeIndex.dayofweek is deprecated")

EURUSD_SPEC = InstrumentSpec(  # the preset without its costs: no commission, swap or spread
    symbol=resolve_instrument("EURUSD", None).symbol, spread_points=0
)
GOOG_SPEC = InstrumentSpec(
    symbol=SymbolSpec(
        name="GOOG",
        base="GOOG",
        quote="USD",
        digits=2,
        point=0.01,
        tick_size=0.01,
        tick_value=0.01,  # one share moving one cent
        contract_size=1.0,
        volume_min=1.0,
        volume_step=1.0,
        volume_max=1_000_000.0,
    ),
    spread_points=0,
)


@dataclass(frozen=True)
class Case:
    name: str
    symbol: str
    frame: pd.DataFrame
    timeframe: str
    instrument: InstrumentSpec
    balance: float
    params: dict[str, Any]
    exercises: frozenset[str] = field(default_factory=frozenset)


CASES = [
    # The strategy's defaults (10/30, SL 2 ATR, TP 2.5 R): a position is open at the end.
    Case("EURUSD-H1", "EURUSD", EURUSD, "H1", EURUSD_SPEC, 10_000.0, {}, frozenset({"end"})),
    # 100k so that whole shares size the 1% risk finely (~50 shares a trade). Earnings gaps.
    Case("GOOG-D1", "GOOG", GOOG, "D1", GOOG_SPEC, 100_000.0, {}, frozenset({"gap"})),
    # Tight stops: SL and TP inside one bar, exits in the entry bar.
    Case(
        "EURUSD-H1-tight",
        "EURUSD",
        EURUSD,
        "H1",
        EURUSD_SPEC,
        10_000.0,
        {"sl_atr": 0.5, "reward_risk": 1.0},
        frozenset({"sl_and_tp_in_bar", "entry_bar_exit", "levels_after_gap"}),
    ),
    # Fast crosses on gappy daily bars: an entry on the open that gapped through the last stop.
    Case(
        "GOOG-D1-fast",
        "GOOG",
        GOOG,
        "D1",
        GOOG_SPEC,
        100_000.0,
        {"fast": 3, "slow": 10, "sl_atr": 1.0, "reward_risk": 1.0},
        frozenset({"gap", "gap_then_entry", "entry_bar_exit", "levels_after_gap"}),
    ),
]


def neutral_config(params: dict[str, Any]) -> Config:
    overrides: dict[str, Any] = {
        "strategy": {"name": "sma_cross", "params": params},
        "risk": {
            "risk_pct": RISK_PCT,
            "max_risk_pct": 2.0,
            "daily_loss_pct": 100.0,
            "floating_loss_pct": 100.0,
            "drawdown_defensive_pct": 97.0,
            "drawdown_reducing_pct": 98.0,
            "drawdown_halted_pct": 99.0,
            "reducing_resume_pct": 0.0,
            "cooldown_minutes": 0,
            "loss_streak": 1000,
            "min_reward_risk": 0.0,
            "one_per_symbol": True,
        },
        "leverage": {"defensive": LEVERAGE, "normal": LEVERAGE, "profit": LEVERAGE},
        "sizing": {"kelly_enabled": False, "volatility_factor": 1.0},
        "manage": {
            "breakeven_r": 0.0,
            "partial_at_tp_fraction": 0.0,
            "partial_fraction": 0.0,
            "trail_atr": 0.0,
        },
    }
    return load_config(None, env={}, overrides=overrides, extra_checks=strategy_problems)


GUARD = GuardLimits(  # the EA's hard limits, out of the way like the sidecar's
    max_risk_pct=2.0,
    max_leverage=float(LEVERAGE),
    daily_loss_pct=100.0,
    floating_loss_pct=100.0,
    max_drawdown_pct=100.0,
)


@dataclass(frozen=True)
class Trade:
    side: str
    entry: pd.Timestamp  # open time of the entry bar
    exit: pd.Timestamp  # open time of the exit bar
    units: int  # lots x contract size
    exit_price: float


@dataclass
class Run:
    trades: list[Trade]
    equity: float
    exercised: Counter[str]


def run_ours(case: Case, warmup: int) -> Run:
    data = load_backtesting_frame(case.frame, case.symbol, case.timeframe)
    result = Backtest(
        neutral_config(case.params),
        AccountSpec(balance=case.balance, leverage=LEVERAGE, swap_free=True),
        [Market(data, case.instrument)],
        RunOptions(warmup_bars=warmup, limits=GUARD),
    ).run()
    rows = np.asarray(data.rows, dtype=np.float64)
    times = rows[:, 0].astype(np.int64)

    def bar(t: int) -> int:  # the bar a deal time falls in
        return int(np.searchsorted(times, t, side="right")) - 1

    contract = case.instrument.symbol.contract_size
    trades = [
        Trade(
            side=tr.side,
            entry=case.frame.index[bar(tr.entry_time)],
            exit=case.frame.index[bar(tr.exit_time)],
            units=round(tr.volume * contract),
            exit_price=tr.exit_price,
        )
        for tr in result.trades
    ]
    return Run(trades, result.equity[-1].equity, _exercised(result.trades, rows, bar))


def _exercised(trades: list[TradeRecord], rows: np.ndarray, bar: Any) -> Counter[str]:
    """Which of the rules the engines had to agree on these trades went through."""
    seen: Counter[str] = Counter()
    for k, tr in enumerate(trades):
        entry, exit_ = bar(tr.entry_time), bar(tr.exit_time)
        high, low = rows[exit_, 2], rows[exit_, 3]
        if tr.exit_reason == "end":
            seen["end"] += 1
        if tr.exit_reason in ("sl", "tp") and tr.exit_price not in (tr.sl, tr.tp):
            seen["gap"] += 1
        if low <= min(tr.sl, tr.tp) and high >= max(tr.sl, tr.tp):
            seen["sl_and_tp_in_bar"] += 1
        if entry == exit_:
            seen["entry_bar_exit"] += 1
        if k > 0 and bar(trades[k - 1].exit_time) == entry:
            seen["gap_then_entry"] += 1
        prev_close = rows[entry - 1, 4]
        if not min(tr.sl, tr.tp) < prev_close < max(tr.sl, tr.tp):
            seen["levels_after_gap"] += 1
    return seen


class _Mirror(BtStrategy):
    """`sma_cross` as our sidecar decides it, placed through backtesting.py's broker."""

    params: ClassVar[dict[str, Any]] = {}
    spec: ClassVar[SymbolSpec | None] = None
    columns: ClassVar[dict[str, np.ndarray]] = {}
    first = 0  # first bar on which an entry may fill (our run's first traded bar)
    real = 0  # bars of the real data (the one after is the flat end bar)

    def init(self) -> None:
        self.sma = SmaCrossStrategy(self.params)

    def next(self) -> None:
        i = len(self.data) - 1  # bar i just closed; a market order fills at bar i+1's open
        if not self.first <= i + 1 < self.real:
            return
        c = self.columns
        price = float(c["open"][i + 1])
        balance = self.equity
        if self.trades:
            trade = self.trades[0]
            if not _gapped_through(trade, price):
                return  # one position per symbol: the cross is refused
            # Our broker fills the gapped level at this open before the EA's tick.
            balance = balance - trade.pl + trade.size * (price - trade.entry_price)
        bars = Bars(**{k: v[max(0, i + 1 - self.sma.min_bars) : i + 1] for k, v in c.items()})
        signal = self.sma.evaluate(bars)
        if signal is None:
            return
        spec = self.spec
        assert spec is not None
        loss_per_lot = signal.sl_distance / spec.tick_size * spec.tick_value
        steps = math.floor(balance * RISK_PCT / 100.0 / loss_per_lot / spec.volume_step + 1e-9)
        lots = min(steps * spec.volume_step, spec.volume_max)
        if lots < spec.volume_min - 1e-12:
            return  # the sidecar refuses a size below volume min
        units = round(lots * spec.contract_size)
        buy = signal.side == "buy"
        sign = 1.0 if buy else -1.0
        sl = round(price - sign * signal.sl_distance, spec.digits)
        tp = round(price + sign * signal.tp_distance, spec.digits)
        place = self.buy if buy else self.sell
        if min(sl, tp) < c["close"][i] < max(sl, tp):
            place(size=units, sl=sl, tp=tp)
        else:  # valid at the fill price, refused against bar i's close by `new_order`
            place(size=units)._replace(sl_price=sl, tp_price=tp)


def _gapped_through(trade: Any, open_price: float) -> bool:
    """Whether a bar opening at `open_price` is at or beyond the trade's SL or TP."""
    if trade.is_long:
        return open_price <= trade.sl or open_price >= trade.tp
    return open_price >= trade.sl or open_price <= trade.tp


def run_backtesting_py(case: Case, warmup: int) -> Run:
    frame = case.frame[["Open", "High", "Low", "Close", "Volume"]]
    n = len(frame)
    last = float(frame["Close"].iloc[-1])
    flat = pd.DataFrame(
        {"Open": [last], "High": [last], "Low": [last], "Close": [last], "Volume": [0.0]},
        index=[frame.index[-1] + (frame.index[-1] - frame.index[-2])],
    )
    columns = {
        "time": frame.index.as_unit("s").asi8.astype(np.int64),
        "open": frame["Open"].to_numpy(np.float64),
        "high": frame["High"].to_numpy(np.float64),
        "low": frame["Low"].to_numpy(np.float64),
        "close": frame["Close"].to_numpy(np.float64),
        "tick_volume": frame["Volume"].to_numpy(np.float64),
        "spread": np.zeros(n),
    }
    mirror = type(
        "Mirror",
        (_Mirror,),
        {
            "params": case.params,
            "spec": case.instrument.symbol,
            "columns": columns,
            "first": warmup,
            "real": n,
        },
    )
    stats = BtBacktest(
        pd.concat([frame, flat]),
        mirror,
        cash=case.balance,
        spread=0.0,
        commission=0.0,
        margin=1 / LEVERAGE,
        trade_on_close=False,
        hedging=False,
        exclusive_orders=False,
        finalize_trades=True,
    ).run()
    trades = [
        Trade(
            side="buy" if row.Size > 0 else "sell",
            entry=frame.index[int(row.EntryBar)],
            exit=frame.index[min(int(row.ExitBar), n - 1)],
            units=abs(int(row.Size)),
            exit_price=float(row.ExitPrice),
        )
        for row in stats["_trades"].itertuples()
    ]
    return Run(trades, float(stats["Equity Final [$]"]), Counter())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_backtesting_py_makes_the_same_trades_and_equity(case: Case) -> None:
    warmup = SmaCrossStrategy(case.params).min_bars  # bars before the first tradable one
    ours = run_ours(case, warmup)
    theirs = run_backtesting_py(case, warmup)

    assert len(ours.trades) >= MIN_TRADES, "too few trades for the comparison to mean anything"
    missing = sorted(r for r in case.exercises if not ours.exercised[r])
    assert not missing, f"the data no longer exercise {missing}: {dict(ours.exercised)}"
    # Trade by trade first: the first difference says more than the counts.
    for k, (a, b) in enumerate(zip(ours.trades, theirs.trades, strict=False)):
        assert (a.side, a.entry, a.exit, a.units) == (b.side, b.entry, b.exit, b.units), (k, a, b)
        assert a.exit_price == pytest.approx(b.exit_price, rel=1e-12), (k, a, b)
    assert len(ours.trades) == len(theirs.trades), "ours then backtesting.py's trade counts"
    assert ours.equity == pytest.approx(theirs.equity, rel=EQUITY_TOLERANCE)
