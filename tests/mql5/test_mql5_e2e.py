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
