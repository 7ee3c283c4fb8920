"""The kernel shared by the live service, the Strategy Tester book and the backtester."""

from sidecar.kernel.book import (
    MAX_SYMBOLS,
    FeedGate,
    HelloOutcome,
    Kernel,
    SymbolContext,
    TickOutcome,
    TradeOutcome,
)

__all__ = [
    "MAX_SYMBOLS",
    "FeedGate",
    "HelloOutcome",
    "Kernel",
    "SymbolContext",
    "TickOutcome",
    "TradeOutcome",
]
