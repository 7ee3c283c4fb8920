"""In-memory trade statistics per login for Kelly sizing: loaded once, updated per closing deal.

A position closed in parts (a partial close, then the stop) is one bet: its closing deals are
summed into one net result (profit + commission + swap). Only the newest `keep` positions are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from sidecar.engine.account import net_result, position_key
from sidecar.engine.state import TradeStats

Loader = Callable[[int, int], list[dict[str, Any]]]  # (login, limit) -> closing deals, oldest first

# Deals read at load time per kept position: room for a partial close or two per position.
DEALS_PER_POSITION = 4


def deal_result(deal: dict[str, Any]) -> float:
    return net_result(float(deal["profit"]), float(deal["commission"]), float(deal["swap"]))


class TradeJournal:
    def __init__(self, keep: int, load: Loader) -> None:
        self.keep = keep
        self._load = load
        self._books: dict[int, OrderedDict[int, float]] = {}
        self._stats: dict[int, TradeStats] = {}

    def stats(self, login: int) -> TradeStats:
        """The login's statistics; the first call per login reads the store, later ones do not."""
        if login not in self._stats:
            self._books[login] = OrderedDict()
            deals = self._load(login, self.keep * DEALS_PER_POSITION)
            self._fold(login, ((self._key(d), deal_result(d)) for d in deals))
        return self._stats[login]

    def forget(self, login: int) -> None:
        self._books.pop(login, None)
        self._stats.pop(login, None)

    def add_closing_deal(self, login: int, deal: dict[str, Any]) -> TradeStats:
        self.stats(login)
        self._fold(login, [(self._key(deal), deal_result(deal))])
        return self._stats[login]

    @staticmethod
    def _key(deal: dict[str, Any]) -> int:
        return position_key(int(deal["position"]), int(deal["deal"]))

    def _fold(self, login: int, items: Iterable[tuple[int, float]]) -> None:
        book = self._books[login]
        for key, net in items:
            book[key] = book.get(key, 0.0) + net
            book.move_to_end(key)
        while len(book) > self.keep:
            book.popitem(last=False)
        self._stats[login] = TradeStats(tuple(book.values()))
