"""The acceptance path over real transports: a client speaking only the documented protocol.

A real `sidecar serve` process on loopback, a ZeroMQ REQ client and a keep-alive HTTP client.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.engine.bars import Bars
from sidecar.engine.strategies.sma_cross import SmaCrossStrategy
from sidecar.testing import messages
from sidecar.testing.server import SidecarProcess

ROWS = messages.eurusd_rows()[:700]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    path = tmp_path_factory.mktemp("sidecar") / "sidecar.sqlite"
    with SidecarProcess(path) as proc:
        yield proc


def _stream(send, login: int) -> list[dict]:
    """hello with 300 real bars, then one tick per new closed bar (the EA's on-new-bar tick)."""
    ack = send(messages.hello(login=login, bars=ROWS[:300], server=ROWS[299][0] + 3600))
    assert ack["type"] == "ack" and ack["ok"] is True
    verdicts = []
    for i in range(300, len(ROWS)):
        bar = ROWS[i]
        t = bar[0] + 3600  # the first tick of the next bar
        price = bar[4]
        msg = messages.tick(
            server=t,
            bid=price,
            ask=round(price + 0.00007, 5),
            login=login,
            bars=[bar],
            msg_id=f"t-{i}",
        )
        reply = send(msg)
        assert reply["id"] == f"t-{i}"
        verdicts.append(reply)
    return verdicts


def _expected_crosses() -> dict[int, str]:
    strategy = SmaCrossStrategy({})
    bars = Bars.from_rows(ROWS)
    out = {}
    for i in range(300, len(ROWS)):
        sig = strategy.evaluate(bars.head(i + 1))
        if sig is not None:
            out[i] = sig.side
    return out


def _check_opens(verdicts: list[dict]) -> None:
    expected = _expected_crosses()
    opens = {300 + k: v for k, v in enumerate(verdicts) if v["action"] == "open"}
    assert len(expected) >= 4  # the data has crosses both ways in this window
    assert {i: v["open"]["side"] for i, v in opens.items()} == expected
    for i, v in opens.items():
        o = v["open"]
        ask = round(ROWS[i][4] + 0.00007, 5)
        bid = ROWS[i][4]
        entry = ask if o["side"] == "buy" else bid
        sl_dist = abs(entry - o["sl"])
        tp_dist = abs(o["tp"] - entry)
        assert tp_dist == pytest.approx(2.5 * sl_dist, abs=2e-5)
        # 1% of 10,000 USD at the stop, floored to 0.01 lots: within one step of the budget.
        loss_per_lot = sl_dist / 0.00001 * 1.0
        assert o["volume"] * loss_per_lot <= 100.0 + o["volume"] * 0.5
        assert (o["volume"] + 0.01) * loss_per_lot > 100.0 - 1e-6
        # risk_pct is computed from the exact stop; sl is rounded to the symbol digits.
        assert math.isclose(o["risk_pct"], o["volume"] * loss_per_lot / 100.0, abs_tol=0.01)
        assert v["reasons"][0].startswith("SIGNAL_SMA_CROSS side=" + o["side"])
        assert any(r.startswith("SIZE_RISK risk_pct=1 ") for r in v["reasons"])
        assert v["valid_until"] == ROWS[i][0] + 3600 + 5
    for v in verdicts:
        assert v["mode"] == "active" and v["leverage_cap"] == 300


def test_sma_crosses_open_sized_trades_over_zeromq(server: SidecarProcess) -> None:
    client = server.zmq()
    _check_opens(_stream(client.send, login=1001))
    client.close()


def test_sma_crosses_open_sized_trades_over_http(server: SidecarProcess) -> None:
    client = server.http()
    _check_opens(_stream(client.send, login=1002))
    client.close()


def test_both_transports_give_the_same_verdicts(server: SidecarProcess) -> None:
    z, h = server.zmq(), server.http()
    a = _stream(z.send, login=2001)[:150]
    b = _stream(h.send, login=2002)[:150]
    strip = lambda v: {k: v[k] for k in v if k != "reasons"} | {"reasons": v["reasons"]}
    for x, y in zip(a, b, strict=True):
        x_open = dict(x["open"] or {})
        y_open = dict(y["open"] or {})
        x_open.pop("signal_id", None)  # the id hashes the login
        y_open.pop("signal_id", None)
        assert x_open == y_open
        assert strip(x)["action"] == strip(y)["action"]


def test_tick_before_hello_is_refused_with_unknown_symbol(server: SidecarProcess) -> None:
    z = server.zmq()
    reply = z.send(messages.tick(server=1734486001, bid=1.1, login=999999, msg_id="t-x"))
    assert reply == {**reply, "type": "error", "ok": False, "id": "t-x"}
    assert (
        reply["error"]["code"] == "UNKNOWN_SYMBOL"
        and "send hello first" in reply["error"]["message"]
    )
    status, body = server.http().raw(
        "tick", json.dumps(messages.tick(server=1, bid=1.1, login=999999)).encode()
    )
    assert status == 409 and json.loads(body)["error"]["code"] == "UNKNOWN_SYMBOL"


def test_bad_input_over_both_transports_gets_an_error_and_the_process_keeps_running(
    server: SidecarProcess,
) -> None:
    z, h = server.zmq(), server.http()
    cases = [
        (b"{not json", "BAD_JSON", 400),
        (
            json.dumps({**messages.tick(server=1, bid=-1.0), "id": "neg"}).encode(),
            "BAD_REQUEST",
            400,
        ),
        (json.dumps(messages.tick(server=1, bid=1.2, ask=1.1)).encode(), "BAD_REQUEST", 400),
        (b'{"v":9,"type":"tick","id":"v9"}', "UNSUPPORTED_VERSION", 400),
        (b"x" * 70000, "TOO_LARGE", 413),
    ]
    for raw, code, status in cases:
        reply = json.loads(z.raw(raw))
        assert reply["type"] == "error" and reply["error"]["code"] == code
        got_status, body = h.raw("tick", raw)
        assert got_status == status and json.loads(body)["error"]["code"] == code
    status, body = h.raw("tock", b"{}")
    assert status == 404 and json.loads(body)["error"]["code"] == "UNKNOWN_TYPE"
    status, body = h.raw("heartbeat", json.dumps(messages.tick(server=1, bid=1.1)).encode())
    assert (
        status == 400 and "this endpoint takes 'heartbeat'" in json.loads(body)["error"]["message"]
    )
    status, _ = h.get("/health")
    assert status == 200


def test_trades_are_idempotent_by_deal_ticket(server: SidecarProcess) -> None:
    z = server.zmq()
    first = z.send(messages.trade(90017, login=3001, comment="sc:abc"))
    again = z.send(messages.trade(90017, login=3001, comment="sc:abc", msg_id="d-retry"))
    assert first["duplicate"] is False and again["duplicate"] is True and again["id"] == "d-retry"
    status, body = server.http().get("/v1/trades?login=3001")
    assert status == 200 and [t["deal"] for t in body["trades"]] == [90017]


def test_operator_endpoints(server: SidecarProcess) -> None:
    h = server.http()
    login = 4001
    h.send(messages.hello(login=login, bars=ROWS[:50]))
    h.send(messages.tick(server=ROWS[49][0] + 3600, bid=1.1, login=login, equity=10000.0))
    verdict = h.send(messages.tick(server=ROWS[49][0] + 3700, bid=1.1, login=login, equity=8400.0))
    assert verdict["mode"] == "halted"
    status, state = h.get("/v1/state")
    account = next(a for a in state["accounts"] if a["login"] == login)
    assert account["mode"] == "halted" and account["drawdown_pct"] == pytest.approx(16.0)
    assert account["anchors"]["high_water_mark"] == 10000.0
    assert any(lock["lock"] == "halted" for lock in account["locks"])

    status, body = h.request("POST", "/v1/resume", json.dumps({"login": login}).encode())
    assert status == 400 and "reason" in json.loads(body)["error"]["message"]
    status, body = h.request(
        "POST", "/v1/resume", json.dumps({"login": login, "reason": "checked"}).encode()
    )
    assert status == 200 and json.loads(body)["mode"] == "active"
    verdict = h.send(messages.tick(server=ROWS[49][0] + 3800, bid=1.1, login=login, equity=8400.0))
    assert verdict["mode"] == "active"

    status, body = h.get("/v1/decisions?symbol=EURUSD&limit=2")
    assert status == 200 and len(body["decisions"]) == 2
    assert body["decisions"][0]["verdict"]["type"] == "verdict"
    status, body = h.get("/v1/decisions?limit=0")
    assert status == 400

    status, health = h.get("/health")
    assert health["database"]["ok"] is True
    assert any(e["login"] == login and e["symbol"] == "EURUSD" for e in health["eas"])

    status, text = h.get("/metrics")
    assert 'sidecar_verdict_latency_seconds_bucket{le="5e-05",transport="http"}' in text
    assert 'sidecar_verdicts_total{action="hold"}' in text
    assert 'sidecar_mode{login="4001",mode="active"} 1.0' in text
    assert "sidecar_invalid_requests_total" in text


def test_log_lines_are_json_with_an_event(server: SidecarProcess) -> None:
    lines = [
        json.loads(line)
        for line in Path(server.log_path).read_text().splitlines()
        if line.startswith("{")
    ]
    events = {line["event"] for line in lines}
    assert {"service.start", "ea.hello", "verdict", "request.invalid", "leverage.regime"} <= events
    assert any(e.startswith("drawdown.") for e in events)


def test_token_is_mandatory_when_configured(tmp_path: Path) -> None:
    secret = "s3cret-token-value"
    with SidecarProcess(tmp_path / "t.sqlite", env={"SIDECAR_TOKEN": secret}) as proc:
        z = proc.zmq()
        refused = z.send(messages.hello(login=5001))
        assert refused["error"]["code"] == "UNAUTHORIZED"
        assert (
            z.send({**messages.hello(login=5001), "token": "wrong"})["error"]["code"]
            == "UNAUTHORIZED"
        )
        assert z.send({**messages.hello(login=5001), "token": secret})["type"] == "ack"
        status, _ = proc.http().raw("hello", json.dumps(messages.hello(login=5001)).encode())
        assert status == 401
        status, _ = proc.http(token=secret).raw(
            "hello", json.dumps(messages.hello(login=5001)).encode()
        )
        assert status == 200
        assert proc.http().get("/v1/state")[0] == 401
        assert proc.http(token=secret).get("/v1/state")[0] == 200
        assert secret not in proc.log()


def test_refuses_to_bind_a_public_address_without_a_token(tmp_path: Path) -> None:
    proc = SidecarProcess(tmp_path / "p.sqlite", env={"SIDECAR_HTTP": "0.0.0.0:8765"})
    proc.http_port = 0  # unused: the process must refuse before binding
    import subprocess
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar",
            "serve",
            "--db",
            str(tmp_path / "p.sqlite"),
            "--http",
            "0.0.0.0:18999",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env=proc.env,
    )
    assert out.returncode == 2
    assert "needs a token" in out.stderr
