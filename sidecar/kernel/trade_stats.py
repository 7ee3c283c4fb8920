"""In-memory trade statistics per login for Kelly sizing: loaded once, updated per deal.

A position is one bet whose result is the sum of all its deals (profit + commission + swap): the
entry deal's commission included, and a position closed in parts (a partial close, then the stop)
counted once. An entry deal only starts the sum; the position becomes a result when a closing deal
arrives. Only the newest `keep` closed positions are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from sidecar.engine.account import TRACKED_POSITIONS, net_result, position_key
from sidecar.engine.rounding import round9
from sidecar.engine.state import TradeStats

# (login, closed, opened) -> every deal of the newest `closed` closed positions and the entry
# deals of the newest `opened` open ones, oldest first (Store.position_deals)
Loader = Callable[[int, int, int], list[dict[str, Any]]]

# Entry costs remembered for positions still open: as many as the loss streak remembers, so the
# two never disagree about a position's result.
OPEN_POSITIONS_KEPT = TRACKED_POSITIONS


def deal_result(deal: dict[str, Any]) -> float:
    return net_result(float(deal["profit"]), float(deal["commission"]), float(deal["swap"]))


class TradeJournal:
    def __init__(self, keep: int, load: Loader) -> None:
        self.keep = keep
        self._load = load
        self._books: dict[int, OrderedDict[int, float]] = {}  # closed positions' results
        self._opening: dict[int, OrderedDict[int, float]] = {}  # open positions' entry costs
        self._stats: dict[int, TradeStats] = {}

    def stats(self, login: int) -> TradeStats:
        """The login's statistics; the first call per login reads the store, later ones do not."""
        if login not in self._stats:
            self._books[login] = OrderedDict()
            self._opening[login] = OrderedDict()
            deals = self._load(login, self.keep, OPEN_POSITIONS_KEPT)
            self._fold(login, map(self._item, deals))
        return self._stats[login]

    def forget(self, login: int) -> None:
        self._books.pop(login, None)
        self._opening.pop(login, None)
        self._stats.pop(login, None)

    def add_deal(self, login: int, deal: dict[str, Any]) -> TradeStats:
        self.stats(login)
        self._fold(login, [self._item(deal)])
        return self._stats[login]

    @staticmethod
    def _item(deal: dict[str, Any]) -> tuple[int, bool, float]:
        key = position_key(int(deal["position"]), int(deal["deal"]))
        return key, deal["entry"] == "in", deal_result(deal)

    def _fold(self, login: int, items: Iterable[tuple[int, bool, float]]) -> None:
        book, opening = self._books[login], self._opening[login]
        closed = False
        for key, is_entry, net in items:
            if is_entry and key not in book:
                opening[key] = round9(opening.get(key, 0.0) + net)
                if len(opening) > OPEN_POSITIONS_KEPT:
                    opening.popitem(last=False)
                continue
            # Rounded like the streak's sums: cents add up exactly (a break-even position is 0,
            # not a 1e-17 loss).
            book[key] = round9(book.get(key, opening.pop(key, 0.0)) + net)
            book.move_to_end(key)
            closed = True
        while len(book) > self.keep:
            book.popitem(last=False)
        if closed or login not in self._stats:
            self._stats[login] = TradeStats(tuple(book.values()))
