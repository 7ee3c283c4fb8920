"""The kernel: one book of accounts, messages in, replies and effects out, no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.config import load_config
from sidecar.engine.state import AccountState
from sidecar.engine.strategies import strategy_problems
from sidecar.kernel import Kernel
from sidecar.protocol import ProtocolError, decode
from sidecar.testing import messages as M

BARS = M.eurusd_rows()[:400]
T = int(BARS[-1][0]) + 3600


def msg(builder: Any, **kw: Any) -> Any:
    return decode(json.dumps(builder(**kw)).encode())


def kernel(**kw: Any) -> Kernel:
    return Kernel(load_config(None, env={}, extra_checks=strategy_problems), **kw)


def test_a_tick_before_hello_names_the_missing_introduction() -> None:
    with pytest.raises(ProtocolError) as exc:
        kernel().tick(msg(M.tick, server=T, bid=1.1))
    assert exc.value.code == "UNKNOWN_SYMBOL" and "send hello first" in exc.value.message


def test_a_tick_returns_the_verdict_and_what_to_persist() -> None:
    k = kernel()
    k.hello(msg(M.hello, bars=BARS, server=T))
    first = k.tick(msg(M.tick, server=T, bid=1.1, equity=10_000.0))
    assert first.verdict.action == "hold" and first.save == "now"  # the account was anchored
    assert [t.event for t in first.transitions] == ["account.anchored"]
    again = k.tick(msg(M.tick, server=T + 1, bid=1.1, equity=10_000.0, msg_id="t-2"))
    assert again.save is None and again.transitions == []
    risen = k.tick(msg(M.tick, server=T + 2, bid=1.1, equity=10_050.0, msg_id="t-3"))
    assert risen.save == "soon"  # only the high-water mark moved: written behind


def test_a_deal_counts_only_once_committed() -> None:
    """The store decides whether a deal is new (deals are idempotent by ticket); the kernel's
    state moves only when the caller commits."""
    k = kernel()
    login = M.hello()["account"]["login"]
    k.hello(msg(M.hello, bars=BARS, server=T))
    k.tick(msg(M.tick, server=T, bid=1.1))
    loss = k.trade(msg(M.trade, deal=1, entry="out", profit=-50.0, position=1, time=T), T)
    assert loss.state.loss_streak == 1 and k.states[login].loss_streak == 0  # a duplicate: dropped
    for d in (1, 2, 3):
        k.commit_trade(
            k.trade(msg(M.trade, deal=d, entry="out", profit=-50.0, position=d, time=T), T)
        )
    assert k.states[login].loss_streak == 3 and k.states[login].cooldown_until > 0
    assert k.trade_stats.stats(login).results == (-50.0, -50.0, -50.0)


def test_a_tester_book_starts_every_run_afresh() -> None:
    k = kernel(tester=True)
    login = M.hello()["account"]["login"]
    k.hello(msg(M.hello, bars=BARS, server=T, tester=True))
    k.tick(msg(M.tick, server=T, bid=1.1, equity=9_000.0))
    assert k.states[login].hwm == 9_000.0
    out = k.hello(msg(M.hello, bars=BARS, server=T, tester=True))
    assert out.reset and login not in k.states


def test_an_idle_tick_moves_the_state_as_a_full_tick_would() -> None:
    full, quick = kernel(), kernel()
    for k in (full, quick):
        k.hello(msg(M.hello, bars=BARS, server=T))
    for n, (server, equity) in enumerate(
        ((T, 10_000.0), (T + 86_400, 9_600.0), (T + 86_401, 9_600.0))
    ):
        tick = msg(M.tick, server=server, bid=1.1, equity=equity, msg_id=f"t-{n}")
        state = quick.tick_unless_idle(tick)
        assert isinstance(state, AccountState)
        assert state == full.tick(tick).state
    held = msg(M.tick, server=T + 86_402, bid=1.1, positions=[M.position(501)], msg_id="t-9")
    assert not isinstance(quick.tick_unless_idle(held), AccountState)  # a position: a verdict


def test_analyses_can_come_from_outside() -> None:
    k = kernel()
    k.hello(msg(M.hello, bars=BARS, server=T))
    given = k.symbols[(M.hello()["account"]["login"], "EURUSD", "H1")].analysis
    asked: list[int | None] = []

    def source(key: Any, ctx: Any) -> Any:
        asked.append(ctx.history.last_time)
        return given

    k.analysis_source = source
    bar = [*BARS[-1]]
    bar[0] += 3600
    out = k.tick(msg(M.tick, server=T + 3600, bid=1.1, bars=[bar]))
    assert out.new_bar and asked == [bar[0]]
    assert k.symbols[(M.hello()["account"]["login"], "EURUSD", "H1")].analysis is given


def test_a_hello_flood_keeps_running_state_only_for_symbols_still_held() -> None:
    """An EA reconnecting over and over (or a flood of hellos) must not pin the running
    indicator state of every history it replaced: memory stays flat under a long-lived sidecar."""
    from sidecar.kernel import MAX_SYMBOLS

    k = kernel()
    for n in range(50):  # the same chart introduced again and again
        k.hello(msg(M.hello, bars=BARS, server=T + n))
    for n in range(MAX_SYMBOLS + 20):  # more symbols than the book holds
        spec = {**M.EURUSD_SPEC, "name": f"SYM{n}"}
        k.hello(msg(M.hello, bars=BARS[:60], spec=spec, server=T))
    held = {ctx.history.id for ctx in k.symbols.values()}
    assert set(k.engine._live) <= held
