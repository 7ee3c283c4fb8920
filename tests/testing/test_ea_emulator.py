"""The EA emulator (sidecar/testing/ea_emulator.py) against a real `sidecar serve` process and,
for the transport rules, a small REP server of our own that misbehaves on purpose.

What a trader relies on and the emulator must reproduce, since the crash, fault and load suites
build on it: every chart gets verdicts; a chart opens a position only on an `open` verdict it
actually received; each deal is acknowledged once and lands in the sidecar's database once; a
reply carrying another request's id is dropped (even an `open`); and when the sidecar dies and
comes back, the charts reconnect by themselves and open nothing while it is away.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import zmq

from sidecar.protocol import Ack, Manage, OpenOrder, Verdict, encode
from sidecar.testing.ea_emulator import EAEmulator, EmulatorConfig, EmulatorResult
from sidecar.testing.server import SidecarProcess, free_port

MANAGE = Manage(
    breakeven_r=1.0,
    partial_r=1.0,
    partial_fraction=0.5,
    trail_atr=2.0,
    trail_distance=0.0,
    breakeven_buffer=0.0001,
)


def _rows(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _deal_counts(db: Path, logins: list[int]) -> dict[tuple[int, int], int]:
    marks = ",".join("?" * len(logins))
    rows = _rows(
        db,
        f"SELECT login, deal, COUNT(*) FROM trades WHERE login IN ({marks}) GROUP BY login, deal",
        *logins,
    )
    return {(login, deal): n for login, deal, n in rows}


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _assert_deals_acked_once(db: Path, result: EmulatorResult, logins: list[int]) -> None:
    counts = _deal_counts(db, logins)
    acked = result.acked_deal_keys()
    assert acked, "the run produced acknowledged deals"
    missing = acked - counts.keys()
    assert not missing, f"acknowledged but not in the database: {sorted(missing)[:5]}"
    assert all(n == 1 for n in counts.values())
    # an acknowledgement is recorded once per deal, the first one not as a duplicate
    firsts = [(d.login, d.deal) for d in result.acked_deals if not d.duplicate]
    assert len(firsts) == len(set(firsts))


def test_charts_get_verdicts_open_only_on_open_verdicts_and_deals_land_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "sidecar.db"
    login = 7_100_000
    cfg = EmulatorConfig(
        "", terminals=2, charts=3, rate=240.0, ticks_per_bar=2, login_base=login, timeout_ms=2000
    )
    with SidecarProcess(db) as proc:
        cfg.endpoint = proc.zmq_endpoint
        result = EAEmulator(cfg).run(duration=6.0)
    logins = [login, login + 1]

    # every chart of every terminal was answered
    charts = {f"{lg}/EURUSD.{c}" for lg in logins for c in range(3)}
    assert set(result.chart_verdicts) == charts
    assert all(n > 20 for n in result.chart_verdicts.values()), result.chart_verdicts
    assert result.counts["hellos"] == 6
    assert result.counts["heartbeats"] >= 6 and result.counts["calendars"] >= 6
    assert not {"ID_MISMATCH", "BAD_REPLY"} & result.error_counts.keys(), result.error_counts

    # each position comes from an open verdict the sidecar journalled for that chart's tick
    assert result.opened, "the replayed bars produced entries"
    opens = {
        (lg, sym, rid): json.loads(v)
        for lg, sym, rid, v in _rows(
            db, "SELECT login, symbol, request_id, verdict FROM decisions WHERE action = 'open'"
        )
    }
    for o in result.opened:
        verdict = opens.get((o.login, o.symbol, o.verdict_id))
        assert verdict is not None, f"{o} has no open verdict in the journal"
        assert verdict["open"]["signal_id"] == o.signal_id
        assert verdict["open"]["side"] == o.side
    assert len(result.opened) <= result.actions.get("open", 0)

    # every deal the sidecar acknowledged is in its database, once; with no lost reply, exactly
    # the acknowledged ones
    _assert_deals_acked_once(db, result, logins)
    if not result.error_counts:
        assert _deal_counts(db, logins).keys() == result.acked_deal_keys()
    entries = {(d.login, d.position) for d in result.acked_deals if d.entry == "in"}
    assert entries <= {(o.login, o.ticket) for o in result.opened}


class MisbehavingSidecar:
    """A REP server on loopback that answers like the sidecar, except that the first tick gets
    an `open` verdict carrying another id, the third tick a genuine `open`, and the first send
    of each trade message an ack with another id."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.seen: list[dict[str, Any]] = []
        self.ticks = 0
        self.trade_sends: dict[int, int] = {}
        self.good_open_id = ""
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> MisbehavingSidecar:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _verdict(self, msg: dict[str, Any], reply_id: str, signal: str | None) -> bytes:
        bid = msg["bid"]
        order = None
        if signal is not None:
            # stops far away: the position stays open through the short run
            order = OpenOrder("buy", 0.1, round(bid - 0.05, 5), round(bid + 0.1, 5), 1.0, signal)
        return encode(
            Verdict(
                id=reply_id,
                action="open" if order else "hold",
                mode="active",
                manage=MANAGE,
                leverage_cap=300,
                valid_until=msg["time"]["gmt"] + 5,
                open=order,
            )
        )

    def _answer(self, msg: dict[str, Any]) -> bytes:
        if msg["type"] == "tick":
            self.ticks += 1
            if self.ticks == 1:
                return self._verdict(msg, "t-stale", "sig-from-a-stale-reply")
            if self.ticks == 3:
                self.good_open_id = msg["id"]
                return self._verdict(msg, msg["id"], "sig-genuine")
            return self._verdict(msg, msg["id"], None)
        if msg["type"] == "trade":
            n = self.trade_sends[msg["deal"]] = self.trade_sends.get(msg["deal"], 0) + 1
            return encode(Ack(id=msg["id"] if n > 1 else "d-other"))
        return encode(Ack(id=msg["id"]))

    def _serve(self) -> None:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(50):
                    continue
                msg = msgspec.json.decode(sock.recv())
                self.seen.append(msg)
                sock.send(self._answer(msg))
        finally:
            sock.close(0)
            ctx.term()


def test_replies_with_another_id_are_dropped_even_an_open(tmp_path: Path) -> None:
    with MisbehavingSidecar() as fake:
        cfg = EmulatorConfig(
            fake.endpoint, rate=10.0, ticks_per_bar=4, processes=False, timeout_ms=2000
        )
        result = EAEmulator(cfg).run(ticks=12)

    # the stale open was dropped; the genuine one opened the only position
    assert [o.verdict_id for o in result.opened] == [fake.good_open_id]
    assert [o.signal_id for o in result.opened] == ["sig-genuine"]
    assert result.error_counts["ID_MISMATCH"] == 2  # the stale verdict and the stale trade ack
    # the entry's deal was sent again after the mismatched ack and acknowledged once
    (deal,) = result.acked_deals
    assert deal.entry == "in" and deal.position == result.opened[0].ticket
    assert fake.trade_sends == {deal.deal: 2}
    # every tick after the stale reply still got its verdict
    assert result.counts["verdicts"] == 11


def test_charts_reconnect_by_themselves_after_the_sidecar_is_killed(tmp_path: Path) -> None:
    db = tmp_path / "sidecar.db"
    login = 7_200_000
    proc = SidecarProcess(db).start()
    em = EAEmulator(
        EmulatorConfig(
            proc.zmq_endpoint, terminals=2, charts=2, rate=80.0, ticks_per_bar=2, login_base=login
        )
    )
    try:
        em.start()
        _wait(lambda: em.progress()["verdicts"] >= 100, 60, "verdicts before the kill")
        killed = time.time()
        proc.kill()  # SIGKILL: nothing flushed, the sockets just vanish
        _wait(lambda: em.progress()["failures"] >= 4, 30, "the charts to notice")
        restarting = time.time()
        proc.start()  # the same ports and database file
        before = em.progress()["verdicts"]
        _wait(lambda: em.progress()["verdicts"] >= before + 100, 60, "verdicts after the restart")
    finally:
        result = em.stop()
        proc.stop()

    charts = {(lg, f"EURUSD.{c}") for lg in (login, login + 1) for c in range(2)}
    back = {(r.login, r.symbol) for r in result.reconnects if r.back >= restarting}
    assert back == charts, result.reconnects
    assert all(r.down_since >= killed for r in result.reconnects if r.back >= restarting)
    assert result.error_counts.get("TIMEOUT", 0) + result.error_counts.get("SEND_FAILED", 0) >= 4
    # nothing was opened while the sidecar was away
    assert not [o for o in result.opened if killed <= o.verdict_wall <= restarting]
    _assert_deals_acked_once(db, result, [login, login + 1])
