"""The EA's wire code against a real `sidecar serve` process over real ZeroMQ on loopback.

Every request is built by the MQL5 encoders (Protocol.mqh, compiled with g++ into the protocol
driver) and every reply is read by the MQL5 parser; a pyzmq REQ socket with the EA's Lazy Pirate
behaviour (sidecar.testing.client.ZmqClient) stands in for Transport.mqh, which needs the terminal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mql5_views import expected_view

from sidecar import protocol
from sidecar.testing import messages
from sidecar.testing.client import ZmqClient
from sidecar.testing.server import SidecarProcess

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CXX = shutil.which("g++")

pytestmark = pytest.mark.skipif(CXX is None, reason="g++ is required for the MQL5 module tests")

LOGIN = 5550001


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mql5-e2e") / "protocol_driver"
    # the driver reads whole wire messages (300 warm-up bars) with the flat parser: raise its cap
    cmd = [CXX, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-DJSON_MAX_ENTRIES=16384"]
    cmd += ["-I", str(HERE / "shim")]
    cmd += [
        "-I",
        str(ROOT / "mql5" / "Include"),
        "-o",
        str(out),
        str(HERE / "src" / "protocol_driver.cpp"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    db = tmp_path_factory.mktemp("sidecar-e2e") / "sidecar.sqlite"
    with SidecarProcess(db) as proc:
        yield proc


def run(driver: Path, mode: str, items: list[str]) -> list[str]:
    proc = subprocess.run(
        [str(driver), mode],
        input=("\n".join(items) + "\n").encode(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    lines = proc.stdout.decode("utf-8").split("\n")
    return lines[: len(items)]


def ea_encode(driver: Path, msg: dict[str, Any]) -> bytes:
    """The bytes the EA would send: the MQL5 encoder's JSON (no trailing NUL over ZeroMQ)."""
    return run(driver, "encode", [json.dumps({**msg, "digits": 5})])[0].encode("utf-8")


def ea_parse(driver: Path, replies: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in run(driver, "parse", [r.decode("utf-8") for r in replies])]


def test_hello_ticks_trade_heartbeat_through_the_real_sidecar(
    driver: Path, server: SidecarProcess
) -> None:
    rows = messages.eurusd_rows()[:420]
    client = ZmqClient(server.zmq_endpoint, timeout_ms=5000)
    try:
        hello = messages.hello(login=LOGIN, bars=rows[:300], server=int(rows[299][0]) + 3600)
        ack = ea_parse(driver, [client.raw(ea_encode(driver, hello))])[0]
        assert ack == {"kind": "ack", "id": "h-1"}

        raw_replies: list[bytes] = []
        ids = []
        for i in range(300, len(rows)):
            bar = rows[i]
            t = int(bar[0]) + 3600
            price = round(float(bar[4]), 5)
            tick = messages.tick(
                server=t,
                bid=price,
                ask=round(price + 0.00007, 5),
                login=LOGIN,
                bars=[bar],
                msg_id=f"t-{i}",
            )
            raw_replies.append(client.raw(ea_encode(driver, tick)))
            ids.append(f"t-{i}")
        parsed = ea_parse(driver, raw_replies)
        for rid, raw, got in zip(ids, raw_replies, parsed, strict=True):
            reply = protocol.decode_reply(raw)
            assert isinstance(reply, protocol.Verdict), raw
            assert got["kind"] == "verdict" and got["id"] == rid
            want = expected_view(reply)
            assert {k: v for k, v in got.items() if k != "problem"} == want
        # the real engine opens on these 120 bars of real EURUSD data; the EA reads those orders
        opens = [p["open"] for p in parsed if p["action"] == "open"]
        assert opens and all(o["signal_id"] and o["sl"] > 0 and o["volume"] > 0 for o in opens)

        trade = messages.trade(deal=90017, login=LOGIN, comment="sc:9f2c")
        trade_ack = ea_parse(driver, [client.raw(ea_encode(driver, trade))])[0]
        assert trade_ack["kind"] == "ack" and trade_ack["id"] == "d-90017"
        # idempotent by deal ticket: the EA may resend after a lost ack
        again = ea_parse(driver, [client.raw(ea_encode(driver, trade))])[0]
        assert again == trade_ack

        t_last = int(rows[-1][0]) + 3600
        calendar = {
            "v": 1,
            "type": "calendar",
            "id": "c-1",
            "login": LOGIN,
            "source": "mt5",
            "events": [
                {
                    "id": "840030016",
                    "time_gmt": t_last + 86400,
                    "currency": "USD",
                    "importance": "high",
                    "name": "Nonfarm Payrolls",
                    "actual": None,
                    "forecast": 200.0,
                    "previous": 227.0,
                }
            ],
        }
        cal_ack = ea_parse(driver, [client.raw(ea_encode(driver, calendar))])[0]
        assert cal_ack == {"kind": "ack", "id": "c-1"}

        beat = {
            "v": 1,
            "type": "heartbeat",
            "id": "b-1",
            "login": LOGIN,
            "symbol": "EURUSD",
            "time": {"server": t_last, "gmt": t_last},
        }
        beat_ack = ea_parse(driver, [client.raw(ea_encode(driver, beat))])[0]
        assert beat_ack == {"kind": "ack", "id": "b-1"}
    finally:
        client.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/health", timeout=5) as resp:
        health = json.loads(resp.read())
    # GET /health lists the EA's heartbeat (docs/mt5.md, "Checking the connection")
    assert any(ea["login"] == LOGIN and ea["symbol"] == "EURUSD" for ea in health["eas"]), health


def test_unknown_symbol_error_is_read_as_such(driver: Path, server: SidecarProcess) -> None:
    client = ZmqClient(server.zmq_endpoint, timeout_ms=5000)
    try:
        tick = messages.tick(
            server=1734486000, bid=1.09121, ask=1.09128, login=LOGIN + 1, msg_id="t-9"
        )
        got = ea_parse(driver, [client.raw(ea_encode(driver, tick))])[0]
    finally:
        client.close()
    assert got["kind"] == "error" and got["id"] == "t-9" and got["code"] == "UNKNOWN_SYMBOL"


def _http_json(server: SidecarProcess, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def _of_login(report: dict[str, Any], login: int) -> tuple[list[Any], list[Any]]:
    accounts = [a for a in report["accounts"] if a["login"] == login]
    symbols = [s for s in report["symbols"] if s["login"] == login]
    return accounts, symbols


def test_a_tester_run_on_the_live_login_leaves_the_live_account_alone(
    driver: Path, server: SidecarProcess
) -> None:
    """The tester reports the real login: the EA's "tester":true keeps its hello, ticks, deals and
    heartbeats out of the live account (GET /v1/state vs GET /v1/state?tester=true)."""
    login = LOGIN + 2
    rows = messages.eurusd_rows()[:310]
    t0 = int(rows[299][0]) + 3600
    client = ZmqClient(server.zmq_endpoint, timeout_ms=5000)
    try:

        def send(msg: dict[str, Any]) -> dict[str, Any]:
            return ea_parse(driver, [client.raw(ea_encode(driver, msg))])[0]

        def as_tester(msg: dict[str, Any]) -> dict[str, Any]:
            wire = ea_encode(driver, {**msg, "tester": True})
            assert json.loads(wire)["tester"] is True  # what the EA sends from the tester
            return {**msg, "tester": True}

        # the live EA: 500 on the account, 300 warm-up bars
        live_hello = messages.hello(login=login, bars=rows[:300], server=t0, balance=500.0)
        assert send(live_hello) == {"kind": "ack", "id": "h-1"}
        live_tick = messages.tick(server=t0 + 1, bid=1.1, login=login, equity=500.0, msg_id="t-1")
        assert send(live_tick)["mode"] == "active"
        live_before = _of_login(_http_json(server, "/v1/state"), login)
        assert live_before[0] and live_before[0][0]["anchors"]["high_water_mark"] == 500.0

        # a tester run on the same login: a 10,000 deposit, newer bars, then a 20% drawdown
        tester_hello = messages.hello(
            login=login, bars=rows[:300], server=t0, balance=10_000.0, tester=True, msg_id="h-2"
        )
        assert json.loads(ea_encode(driver, tester_hello))["ea"]["tester"] is True
        assert send(tester_hello) == {"kind": "ack", "id": "h-2"}
        modes = []
        for k, (equity, bar) in enumerate([(10_000.0, rows[300]), (8_000.0, rows[301])]):
            tick = messages.tick(
                server=int(bar[0]) + 3600,
                bid=1.1,
                login=login,
                equity=equity,
                bars=[bar],
                msg_id=f"t-x{k}",
            )
            got = send(as_tester(tick))
            assert got["kind"] == "verdict" and got["id"] == f"t-x{k}", got
            modes.append(got["mode"])
        assert modes == ["active", "halted"]
        deal = as_tester(messages.trade(deal=2, login=login, entry="out", profit=-2000.0))
        assert send(deal) == {"kind": "ack", "id": "d-2"}
        beat = {
            "v": 1,
            "type": "heartbeat",
            "id": "b-x",
            "login": login,
            "symbol": "EURUSD",
            "time": {"server": t0 + 7200, "gmt": t0 + 7200},
        }
        assert send(as_tester(beat)) == {"kind": "ack", "id": "b-x"}
    finally:
        client.close()

    # live: the very same account and symbol report as before the tester run
    live_after = _of_login(_http_json(server, "/v1/state"), login)
    assert live_after == live_before
    accounts, symbols = live_after
    assert [a["mode"] for a in accounts] == ["active"]
    assert [(s["tester"], s["last_bar_time"]) for s in symbols] == [(False, int(rows[299][0]))]
    assert _http_json(server, f"/v1/trades?login={login}")["trades"] == []
    health = _http_json(server, "/health")
    beats = [ea for ea in health["eas"] if ea["login"] == login]
    assert [ea["last_heartbeat_gmt"] for ea in beats] == [t0]

    # tester: the run's own book, halted on its own drawdown
    accounts, symbols = _of_login(_http_json(server, "/v1/state?tester=true"), login)
    assert [(a["mode"], a["anchors"]["high_water_mark"]) for a in accounts] == [
        ("halted", 10_000.0)
    ]
    assert [(s["tester"], s["last_bar_time"]) for s in symbols] == [(True, int(rows[301][0]))]

    # the next run's hello starts the tester book over; the live account still does not move
    client = ZmqClient(server.zmq_endpoint, timeout_ms=5000)
    try:
        again = {**tester_hello, "id": "h-3"}
        assert ea_parse(driver, [client.raw(ea_encode(driver, again))])[0]["kind"] == "ack"
        tick = as_tester(
            messages.tick(server=t0 + 1, bid=1.1, login=login, equity=10_000.0, msg_id="t-y")
        )
        assert ea_parse(driver, [client.raw(ea_encode(driver, tick))])[0]["mode"] == "active"
    finally:
        client.close()
    assert _of_login(_http_json(server, "/v1/state"), login) == live_before


def ea_sync(driver: Path, read: dict[str, Any]) -> dict[str, Any]:
    """One history read of the EA (DealSync.mqh's selection, QueueDeal's messages)."""
    return json.loads(run(driver, "sync", [json.dumps(read)])[0])


def test_a_stop_filled_while_the_terminal_was_closed_reaches_the_sidecar(
    driver: Path, server: SidecarProcess
) -> None:
    """The EA re-reads the deal history after a restart (DealSync.mqh): the stop that filled
    while the terminal was closed is queued after the deals it had already sent, which the
    sidecar stores once each. It is the third loss in a row, so the cooldown starts; had the
    re-sent losses been counted again, the streak would be 5 and no cooldown would start."""
    login = LOGIN + 3
    magic = 20251218
    rows = messages.eurusd_rows()[:300]
    t0 = int(rows[-1][0]) + 3600

    def deal(n: int, position: int, entry: str, profit: float, t: int, **kw: Any) -> dict:
        row = {
            "deal": n,
            "order": n + 1000,
            "position": position,
            "symbol": "EURUSD",
            "type": "buy" if entry == "in" else "sell",
            "entry": entry,
            "magic": magic,
            "volume": 0.1,
            "price": 1.1,
            "profit": profit,
            "commission": 0.0,
            "swap": 0.0,
            "time": t,
            "comment": "",
        }
        return {**row, **kw}

    history = [
        deal(11, 1, "in", 0.0, t0 - 900),
        deal(12, 1, "out", -12.5, t0 - 800),
        deal(21, 2, "in", 0.0, t0 - 700),
        deal(22, 2, "out", -12.5, t0 - 600),
        deal(31, 3, "in", 0.0, t0 - 300),
        # the stop of position 3, filled by a server order (magic 0) two days later
        deal(32, 3, "out", -9.0, t0 + 2 * 86400, magic=0),
        deal(41, 9, "in", 0.0, t0 - 200, magic=magic + 1),  # another EA's
        deal(42, 0, "in", 0.0, t0 - 100, type="balance"),  # a deposit
    ]
    client = ZmqClient(server.zmq_endpoint, timeout_ms=5000)
    try:

        def send(wire: bytes) -> dict[str, Any]:
            return ea_parse(driver, [client.raw(wire)])[0]

        hello = messages.hello(login=login, bars=rows, server=t0)
        assert send(ea_encode(driver, hello))["kind"] == "ack"
        # before the terminal closed: the read of t0 - 1000 found nothing; these went live
        for live in history[:5]:
            msg = messages.trade(
                deal=live["deal"],
                login=login,
                entry=live["entry"],
                profit=live["profit"],
                time=live["time"],
                position=live["position"],
            )
            assert send(ea_encode(driver, msg)) == {"kind": "ack", "id": f"d-{live['deal']}"}
        cursor = f"v=1\nsynced_to={t0 - 1000}\n"
        # three days later the terminal restarts: the first read (connected only a second)
        read = {
            "login": login,
            "magic": magic,
            "now": t0 + 3 * 86400,
            "complete": False,
            "cursor": cursor,
            "managed": [],
            "history": history,
        }
        first = ea_sync(driver, read)
        queued = [json.loads(m) for m in first["queued"]]
        assert [m["deal"] for m in queued] == [11, 12, 21, 22, 31, 32]
        assert first["cursor"] == cursor  # not complete: the watermark waits for the settle read
        acks = [send(wire.encode()) for wire in first["queued"]]  # the EA's bytes
        assert acks == [{"kind": "ack", "id": f"d-{m['deal']}"} for m in queued]
        tick = messages.tick(
            server=t0 + 2 * 86400 + 600, bid=1.1, login=login, msg_id="t-1", equity=9966.0
        )
        verdict = send(ea_encode(driver, tick))
    finally:
        client.close()
    assert verdict["kind"] == "verdict"
    assert any(r.startswith("RISK_COOLDOWN") for r in verdict["reasons"]), verdict["reasons"]
    trades = _http_json(server, f"/v1/trades?login={login}")["trades"]
    assert sorted(t["deal"] for t in trades) == [11, 12, 21, 22, 31, 32]
