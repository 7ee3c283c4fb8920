"""kill -9 in the middle of a deal stream: what was acknowledged survives, exactly once.

A real `sidecar serve` process on a temporary SQLite file. Ticks first drive the account into
a daily-loss lock and a drawdown halt (with distinct day-start and high-water anchors); then a
client streams `trade` messages over ZeroMQ while another thread SIGKILLs the process after a
few hundred acknowledgements. A new process on the same file must hold every acknowledged deal
once, answer re-sent deals as duplicates, and still be locked and halted.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from sidecar.engine import reasons as R
from sidecar.protocol import Ack, ErrorReply, Verdict, decode_reply
from sidecar.testing import messages as M
from sidecar.testing.server import SidecarProcess

LOGIN = 4242001
DAY_START = 1734480000  # 2024-12-18 00:00 server time: the start of a broker day (offset 0)
T0 = DAY_START + 36_000  # 10:00 server time
KILL_AFTER = 400  # acknowledged deals before the kill
STREAM = 20_000  # more deals than can be acknowledged before the kill lands


def _raw(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def _state(proc: SidecarProcess) -> dict[str, Any]:
    http = proc.http()
    try:
        status, body = http.get("/v1/state")
    finally:
        http.close()
    assert status == 200, body
    (account,) = [a for a in body["accounts"] if a["login"] == LOGIN]
    return account


def _db_deals(db: Path) -> dict[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT deal, COUNT(*) FROM trades WHERE login = ? GROUP BY deal", (LOGIN,)
        ).fetchall()
    finally:
        conn.close()
    return {deal: n for deal, n in rows}


def _deal(deal: int) -> dict[str, Any]:
    """Entries carry a signal id (it lands in the persisted recent-signal list); exits win."""
    if deal % 2:
        return M.trade(deal, login=LOGIN, entry="in", time=DAY_START + deal, comment=f"sc:s{deal}")
    return M.trade(deal, login=LOGIN, entry="out", profit=5.0, time=DAY_START + deal)


def _tick(server: int, equity: float, msg_id: str) -> dict[str, Any]:
    return M.tick(
        server, 1.09121, 1.09128, login=LOGIN, equity=equity, balance=10000.0, msg_id=msg_id
    )


def _lock_and_halt(proc: SidecarProcess) -> None:
    z = proc.zmq()
    try:
        assert z.send(M.hello(login=LOGIN, server=T0))["type"] == "ack"
        # Day start 10,000; a new high of 10,500; then 8,800: 12% daily loss (limit 3%) and
        # 16.2% below the high-water mark (halt at 15%).
        for i, equity in enumerate((10000.0, 10500.0, 8800.0)):
            reply = decode_reply(z.raw(_raw(_tick(T0 + 60 * i, equity, f"t-{i}"))))
            assert isinstance(reply, Verdict), reply
        assert reply.mode == "halted"
        codes = {r.split(" ", 1)[0] for r in reply.reasons}
        assert {R.MODE_HALTED, R.RISK_DAILY_LOSS} <= codes, reply.reasons
    finally:
        z.close()


def _stream_until_killed(proc: SidecarProcess) -> tuple[list[int], int | None]:
    """Send deals one by one; a second thread kills the server after KILL_AFTER acks."""
    acked: list[int] = []
    enough = threading.Event()
    in_flight: list[int] = []

    def killer() -> None:
        enough.wait(60)
        proc.kill()

    k = threading.Thread(target=killer, name="killer")
    k.start()
    z = proc.zmq(timeout_ms=3000)
    try:
        for deal in range(1, STREAM + 1):
            in_flight[:] = [deal]
            try:
                raw = z.raw(_raw(_deal(deal)))
            except TimeoutError:
                break
            reply = decode_reply(raw)
            assert isinstance(reply, Ack), reply
            assert reply.id == f"d-{deal}" and reply.ok and not reply.duplicate, reply
            acked.append(deal)
            in_flight.clear()
            if len(acked) == KILL_AFTER:
                enough.set()
    finally:
        enough.set()
        k.join(30)
        z.close()
    return acked, (in_flight[0] if in_flight else None)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sidecar.db"


def test_acknowledged_deals_locks_and_anchors_survive_sigkill(db: Path) -> None:
    first = SidecarProcess(db).start()
    try:
        _lock_and_halt(first)
        before = _state(first)
        acked, in_flight = _stream_until_killed(first)
    finally:
        first.kill()
    assert first.proc is not None and first.proc.returncode == -9  # SIGKILL, no clean-up ran
    assert len(acked) >= KILL_AFTER
    assert in_flight is not None, "the stream ended before the kill landed"
    assert acked == list(range(1, len(acked) + 1))

    second = SidecarProcess(db).start()
    try:
        # Every acknowledged deal is on disk exactly once; nothing else but the one in flight.
        on_disk = _db_deals(db)
        assert all(on_disk.get(d) == 1 for d in acked), [d for d in acked if on_disk.get(d) != 1]
        assert set(on_disk) - set(acked) <= {in_flight}
        http = second.http()
        try:
            status, body = http.get(f"/v1/trades?login={LOGIN}&limit=1000")
        finally:
            http.close()
        assert status == 200
        api = [t["deal"] for t in body["trades"]]
        assert len(api) == len(set(api))
        assert api == sorted(on_disk, reverse=True)[:1000]

        # Locks, mode and anchors came back from the file.
        after = _state(second)
        for key in ("mode", "mode_reason", "mode_since_gmt", "anchors", "equity", "loss_streak"):
            assert after[key] == before[key], key
        assert after["mode"] == "halted"
        assert after["anchors"] == {
            "broker_day": DAY_START // 86400,
            "day_start_equity": 10000.0,
            "high_water_mark": 10500.0,
        }
        assert {lock["lock"] for lock in after["locks"]} == {"daily_loss", "halted"}
        # The newest acknowledged entry's signal id was persisted with its ack.
        last_in = max(d for d in acked if d % 2)
        assert f"s{last_in}" in {s["signal_id"] for s in after["recent_signals"]}

        z = second.zmq()
        try:
            # Re-sent acknowledged deals are duplicates and are not stored twice.
            resend = [*acked[:50], *acked[-150:]]
            for deal in resend:
                reply = decode_reply(z.raw(_raw(_deal(deal))))
                assert isinstance(reply, Ack) and reply.ok and reply.duplicate, (deal, reply)
            # The deal that was in flight at the kill is recorded once, whatever happened to it.
            first_try = decode_reply(z.raw(_raw(_deal(in_flight))))
            assert isinstance(first_try, Ack) and first_try.duplicate == (in_flight in on_disk)
            again = decode_reply(z.raw(_raw(_deal(in_flight))))
            assert isinstance(again, Ack) and again.duplicate
            # The stream goes on where it stopped.
            for deal in range(in_flight + 1, in_flight + 51):
                reply = decode_reply(z.raw(_raw(_deal(deal))))
                assert isinstance(reply, Ack) and not reply.duplicate, (deal, reply)
            now = _db_deals(db)
            assert set(now) == set(range(1, in_flight + 51))
            assert set(now.values()) == {1}

            # Symbols are not persisted: the EA re-sends hello after UNKNOWN_SYMBOL.
            tick = _tick(T0 + 600, 8800.0, "t-after")
            reply = decode_reply(z.raw(_raw(tick)))
            assert isinstance(reply, ErrorReply) and reply.error.code == "UNKNOWN_SYMBOL", reply
            assert reply.id == "t-after"
            assert z.send(M.hello(login=LOGIN, server=T0 + 600))["type"] == "ack"
            reply = decode_reply(z.raw(_raw(tick)))
            assert isinstance(reply, Verdict), reply
            assert reply.mode == "halted" and reply.action == "hold" and reply.open is None
            codes = [r.split(" ", 1)[0] for r in reply.reasons]
            assert R.MODE_HALTED in codes and R.RISK_DAILY_LOSS in codes, reply.reasons
            # Equity back above the day's start: the lock holds for the rest of the broker day,
            # and the halt only lifts by an explicit resume.
            tick = _tick(T0 + 660, 10100.0, "t-recovered")
            reply = decode_reply(z.raw(_raw(tick)))
            assert isinstance(reply, Verdict) and reply.mode == "halted", reply
            codes = [r.split(" ", 1)[0] for r in reply.reasons]
            assert R.MODE_HALTED in codes and R.RISK_DAILY_LOSS in codes, reply.reasons
        finally:
            z.close()
        assert _state(second)["anchors"]["high_water_mark"] == 10500.0
    finally:
        second.stop()


def test_sigterm_runs_the_orderly_shutdown(db: Path) -> None:
    """A graceful stop (SIGTERM: systemd, `sidecar` under a supervisor) must run the service's
    own shutdown: stop the ZeroMQ thread, flush the decision journal, close the store (which
    checkpoints the WAL) and log `service.stop`."""
    proc = SidecarProcess(db).start()
    try:
        z = proc.zmq()
        try:
            assert z.send(M.hello(login=LOGIN, server=T0))["type"] == "ack"
            for i in range(20):
                reply = decode_reply(z.raw(_raw(_tick(T0 + i, 10000.0, f"t-{i}"))))
                assert isinstance(reply, Verdict), reply
        finally:
            z.close()
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode is not None
    events = [line for line in proc.log().splitlines() if '"event":"service.' in line]
    assert any('"event":"service.stop"' in line for line in events), events
    assert not Path(f"{db}-wal").exists(), "the store was not closed"
