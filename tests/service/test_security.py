"""Security: binds that need a token, malformed JSON, and the token before any other check.

Real `python -m sidecar` processes, real sockets and HTTP; nothing of the project is mocked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from sidecar.testing.client import HttpClient, ZmqClient
from sidecar.testing.server import SidecarProcess, free_port

TOKEN = "s3cret-token"
T0 = 1_714_572_000


def _heartbeat(**extra: object) -> dict[str, object]:
    return {
        "v": 1,
        "type": "heartbeat",
        "id": "hb-1",
        "login": 12345678,
        "symbol": "EURUSD",
        "time": {"server": T0, "gmt": T0},
        **extra,
    }


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without the runner's SIDECAR_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR")}
    return {**env, **extra}


def _libzmq_bound(host: str) -> str | None:
    """The address libzmq binds for `tcp://HOST:0` (None when it cannot)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    try:
        sock.bind(f"tcp://{host}:0")
        return sock.getsockopt_string(zmq.LAST_ENDPOINT)[6:].rsplit(":", 1)[0].strip("[]")
    except zmq.ZMQError:
        return None
    finally:
        sock.close(0)
        ctx.term()


def _interfaces() -> tuple[str | None, str | None]:
    """(an interface with a non-loopback IPv4 address, the loopback interface), by name."""
    public = loopback = None
    for _, name in socket.if_nameindex():
        bound = _libzmq_bound(name)
        if bound is None:
            continue
        if bound.startswith("127."):
            loopback = loopback or name
        elif bound != "0.0.0.0":
            public = public or name
    return public, loopback


PUBLIC_IF, LOOPBACK_IF = _interfaces()
P = 18765  # check-config binds nothing: any port will do

# (component, value): every form that listens on a non-loopback address, or on one that cannot
# be resolved to a loopback one.
EXPOSED = [
    ("server.http", f":{P}"),  # the defect: an empty host is every interface
    ("server.http", f"0.0.0.0:{P}"),
    ("server.http", f"[::]:{P}"),
    ("server.http", f"*:{P}"),
    ("server.http", f"192.0.2.1:{P}"),
    ("server.http", f"no-such-host.invalid:{P}"),
    ("server.zmq", f"tcp://*:{P}"),
    ("server.zmq", f"tcp://0.0.0.0:{P}"),
    ("server.zmq", f"tcp://:{P}"),
    ("server.zmq", f"tcp://[::]:{P}"),
    ("server.zmq", f"tcp://192.0.2.1:{P}"),
    ("server.zmq", f"ws://127.0.0.1:{P}"),  # a transport the check cannot read
]
if PUBLIC_IF:
    EXPOSED += [
        ("server.zmq", f"tcp://{PUBLIC_IF}:{P}"),  # libzmq: the interface's address
        ("server.http", f"{PUBLIC_IF}:{P}"),  # HTTP: not a name that resolves
    ]
LOOPBACK = [
    ("server.http", f"127.0.0.1:{P}"),
    ("server.http", f"localhost:{P}"),
    ("server.http", f"[::1]:{P}"),
    ("server.zmq", f"tcp://127.0.0.1:{P}"),
    ("server.zmq", f"tcp://localhost:{P}"),
    ("server.zmq", f"tcp://[::1]:{P}"),
    ("server.zmq", "ipc://sidecar-test.ipc"),
]
if LOOPBACK_IF:
    LOOPBACK.append(("server.zmq", f"tcp://{LOOPBACK_IF}:{P}"))


def _toml(component: str, value: str, token: str = "") -> str:
    other = "http" if component == "server.zmq" else "zmq"
    key = component.split(".")[1]
    return f'[server]\n{key} = "{value}"\n{other} = ""\ntoken = "{token}"\n'


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or _env(),
    )


def _ids(cases: list[tuple[str, str]]) -> list[str]:
    return [f"{c}={v}" for c, v in cases]


# ------------------------------------------------------------------ 1. binds needing a token


@pytest.mark.parametrize(("component", "value"), EXPOSED, ids=_ids(EXPOSED))
def test_check_config_refuses_a_non_loopback_bind_without_a_token(
    tmp_path: Path, component: str, value: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_toml(component, value))
    out = _run("check-config", str(path))
    assert out.returncode == 2, out
    problems = [ln for ln in out.stderr.splitlines() if ln.strip("- ").startswith(component)]
    assert problems, out.stderr
    assert any("needs a token" in p for p in problems), out.stderr
    # ... and accepted with one.
    path.write_text(_toml(component, value, TOKEN))
    out = _run("check-config", str(path))
    assert out.returncode == 0, out
    assert TOKEN not in out.stdout + out.stderr


@pytest.mark.parametrize(("component", "value"), LOOPBACK, ids=_ids(LOOPBACK))
def test_check_config_accepts_a_loopback_bind_without_a_token(
    tmp_path: Path, component: str, value: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_toml(component, value))
    out = _run("check-config", str(path))
    assert out.returncode == 0, out


def _serve_args(component: str, value: str, db: Path) -> list[str]:
    args = ["serve", "--db", str(db)]
    if component == "server.http":
        return [*args, "--http", value, "--zmq", ""]
    return [*args, "--zmq", value, "--http", ""]


@pytest.mark.parametrize(("component", "value"), EXPOSED, ids=_ids(EXPOSED))
def test_serve_refuses_a_non_loopback_bind_without_a_token(
    tmp_path: Path, component: str, value: str
) -> None:
    out = _run(*_serve_args(component, value, tmp_path / "s.sqlite"))
    assert out.returncode == 2, out
    records = [json.loads(ln) for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    failed = [r for r in records if r["event"] == "service.start_failed"]
    assert len(failed) == 1 and failed[0]["component"] == "config", records
    assert any(p.startswith(component) and "needs a token" in p for p in failed[0]["problems"])
    assert not any(r["event"] == "service.start" for r in records)


def _wait_started(proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        records = [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
        if any(r["event"] == "service.start" for r in records):
            return records
        assert proc.poll() is None, f"exited {proc.returncode}: {text}"
        time.sleep(0.1)
    raise AssertionError(f"no service.start: {log.read_text()}")


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator:
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / f"serve-{len(procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sidecar", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        procs.append(proc)
        return proc, log

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


SERVE_WITH_TOKEN = [
    ("server.http", ":{port}"),
    ("server.http", "0.0.0.0:{port}"),
    ("server.http", "*:{port}"),
    ("server.zmq", "tcp://*:{port}"),
    ("server.zmq", "tcp://0.0.0.0:{port}"),
]


@pytest.mark.parametrize(("component", "value"), SERVE_WITH_TOKEN, ids=_ids(SERVE_WITH_TOKEN))
def test_serve_binds_every_interface_with_a_token(
    tmp_path: Path, spawn, component: str, value: str
) -> None:
    port = free_port()
    args = _serve_args(component, value.format(port=port), tmp_path / "s.sqlite")
    proc, log = spawn(args, _env(SIDECAR_TOKEN=TOKEN))
    _wait_started(proc, log)
    if component == "server.http":
        request = urllib.request.Request(f"http://127.0.0.1:{port}/health")
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        client = HttpClient("127.0.0.1", port)
        status, _ = client.get("/v1/state")
        assert status == 401  # the token is what protects it now
        client.close()
    else:
        zc = ZmqClient(f"tcp://127.0.0.1:{port}", 5000)
        assert zc.send(_heartbeat(token=TOKEN))["type"] == "ack"
        assert zc.send(_heartbeat())["error"]["code"] == "UNAUTHORIZED"
        zc.close()
    if PUBLIC_IF is not None:  # reachable on the machine's other addresses, as asked
        address = _libzmq_bound(PUBLIC_IF)
        assert address is not None
        with socket.create_connection((address, port), timeout=5):
            pass
    assert TOKEN not in log.read_text()


def test_start_up_checks_the_bound_socket_too() -> None:
    """The runner refuses what the socket says it bound, whatever the configuration check said
    (a name resolving differently by then); checked before listen(), so nobody got in."""
    from sidecar.service.runner import StartError, bind_http, check_zmq_bound

    with pytest.raises(StartError, match="needs a token") as err:
        bind_http(":0")
    assert err.value.component == "server.http"
    bind_http("127.0.0.1:0").close()
    bind_http(":0", TOKEN).close()
    assert "needs a token" in (check_zmq_bound("tcp://0.0.0.0:5555", "") or "")
    assert check_zmq_bound("tcp://0.0.0.0:5555", TOKEN) is None
    assert check_zmq_bound("tcp://127.0.0.1:5555", "") is None
    assert check_zmq_bound("tcp://[::1]:5555", "") is None
    assert check_zmq_bound("ipc:///tmp/s.ipc", "") is None


def test_http_replies_are_not_held_by_nagle() -> None:
    """The listener says it is TCP, so asyncio (under uvicorn) sets TCP_NODELAY on every
    accepted connection: a small reply goes out at once, not ~40 ms later behind the
    client's delayed ACK."""
    import asyncio
    import socket

    from sidecar.service.runner import bind_http

    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        listener = bind_http("127.0.0.1:0")
        listener.listen()
        port = listener.getsockname()[1]
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            value = await asyncio.wait_for(seen, 5)
            writer.close()
            return value
        finally:
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0


# ------------------------------------------------------------------ 2. malformed JSON

HEARTBEAT = json.dumps(_heartbeat()).encode()
MALFORMED = {
    "utf8-in-string": b'{"v":1,"type":"heartbeat","id":"\xff"}',
    "utf8-in-key": b'{"v":1,"type":"heartbeat","\xc0\xaf":1}',
    "nested-1000-objects": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "nested-1000-unclosed": b'{"a":' * 1000,
    "nested-arrays-in-a-field": HEARTBEAT[:-1] + b',"x":' + b"[" * 900 + b"]" * 900 + b"}",
    "nested-5000-arrays": b"[" * 5000 + b"]" * 5000,
    "lone-surrogate": b'{"v":1,"type":"heartbeat","id":"\\ud800"}',
}


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("sec") / "s.sqlite"
    proc = SidecarProcess(path, env=_env()).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_json_is_bad_json_on_both_transports(plain_server, name: str) -> None:
    payload = MALFORMED[name]
    zc = plain_server.zmq(timeout_ms=5000)
    try:
        reply = json.loads(zc.raw(payload))
    finally:
        zc.close()
    assert reply["type"] == "error" and reply["error"]["code"] == "BAD_JSON", reply
    assert reply["error"]["message"].startswith("message: ")
    http = plain_server.http()
    status, body = http.raw("heartbeat", payload)
    http.close()
    assert status == 400, body
    assert json.loads(body)["error"] == reply["error"]
    log = plain_server.log()
    assert "Traceback" not in log and "request.internal_error" not in log
    assert '"level":"error"' not in log
    assert plain_server.proc.poll() is None


# ------------------------------------------------------------------ 6. the token first


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("tok") / "s.sqlite"
    env = _env(SIDECAR_TOKEN=TOKEN)
    proc = SidecarProcess(path, env=env).start()
    try:
        yield proc
    finally:
        proc.stop()


BAD_FIELDS = {"v": 1, "type": "heartbeat", "id": "h-9", "login": -5, "symbol": "", "nosuch": 1}


@pytest.mark.parametrize(
    "payload",
    [
        json.dumps(BAD_FIELDS).encode(),
        json.dumps({**BAD_FIELDS, "token": "wrong"}).encode(),
        json.dumps({**BAD_FIELDS, "token": 12345}).encode(),
        json.dumps({**BAD_FIELDS, "v": 9}).encode(),
        json.dumps({**BAD_FIELDS, "type": "nosuch"}).encode(),
        b'{"v":1,"type":"heartbeat","id":"\xff"}',
        b"not json at all",
        b'{"a":' * 1000,
    ],
    ids=["no-token", "wrong", "not-a-string", "version", "type", "utf8", "garbage", "deep"],
)
def test_zmq_checks_the_token_before_anything_else(token_server, payload: bytes) -> None:
    zc = token_server.zmq()
    try:
        reply = json.loads(zc.raw(payload))
    finally:
        zc.close()
    assert reply["error"]["code"] == "UNAUTHORIZED", reply
    assert reply["error"]["message"].startswith("token: ")
    # Nothing about the fields: no field names, no expected types or values.
    for word in ("login", "symbol", "nosuch", "expected", "UTF-8", "JSON"):
        assert word not in reply["error"]["message"], reply


def test_zmq_with_the_token_gets_the_details(token_server) -> None:
    zc = token_server.zmq()
    try:
        reply = json.loads(zc.raw(json.dumps({**BAD_FIELDS, "token": TOKEN}).encode()))
        assert reply["error"]["code"] == "BAD_REQUEST" and reply["id"] == "h-9", reply
        bad = json.loads(
            zc.raw(b'{"v":1,"type":"heartbeat","token":"' + TOKEN.encode() + b'","id":"\xff"}')
        )
        assert bad["error"]["code"] == "BAD_JSON", bad
        hb = zc.send(_heartbeat(token=TOKEN))
        assert hb["type"] == "ack", hb
    finally:
        zc.close()
    # An oversized message is refused before it is parsed (its token cannot be read without).
    big = token_server.zmq()
    try:
        reply = json.loads(big.raw(b'{"token":"' + TOKEN.encode() + b'","x":"' + b"a" * 70000))
    finally:
        big.close()
    assert reply["error"]["code"] == "TOO_LARGE"


def _http(proc: SidecarProcess, token: str | None) -> HttpClient:
    return HttpClient("127.0.0.1", proc.http_port, token)


@pytest.mark.parametrize(
    ("method", "path", "with_token"),
    [
        ("POST", "/v1/nosuch", 404),
        ("GET", "/v1/nosuch", 405),
        ("GET", "/nosuch", 404),
        ("GET", "/docs", 200),
        ("GET", "/openapi.json", 200),
        ("GET", "/docs/oauth2-redirect", 200),
        ("GET", "/v1/state", 200),
        ("GET", "/v1/limits", 200),
        ("POST", "/v1/heartbeat", 400),  # an empty body, judged only once authorized
        ("POST", "/v1/resume", 400),
        ("DELETE", "/health/x", 404),
    ],
)
def test_http_checks_the_token_before_anything_else(
    token_server, method: str, path: str, with_token: int
) -> None:
    anonymous = _http(token_server, None)
    status, body = anonymous.request(method, path, b"")
    anonymous.close()
    assert status == 401, (status, body)
    assert json.loads(body)["error"]["code"] == "UNAUTHORIZED"
    wrong = _http(token_server, "wrong")
    assert wrong.request(method, path, b"")[0] == 401
    wrong.close()
    authorized = _http(token_server, TOKEN)
    status, body = authorized.request(method, path, b"")
    authorized.close()
    assert status == with_token, (status, body)


def test_http_open_paths_with_a_token(token_server) -> None:
    anonymous = _http(token_server, None)
    try:
        assert anonymous.request("GET", "/health")[0] == 200
        assert anonymous.request("GET", "/metrics")[0] == 200
        status, page = anonymous.request("GET", "/")  # the status page: no data in it
        assert status == 200 and b"<html" in page.lower()
        assert b"EURUSD" not in page and b'equity":' not in page
    finally:
        anonymous.close()


def test_http_oversized_resume_is_413(token_server) -> None:
    limit = 65536
    body = json.dumps({"login": 1, "reason": "x" * (limit + 10)}).encode()
    anonymous = _http(token_server, None)
    status, reply = anonymous.request("POST", "/v1/resume", body)
    anonymous.close()
    assert status == 401, reply  # the token before the body
    authorized = _http(token_server, TOKEN)
    status, reply = authorized.request("POST", "/v1/resume", body)
    assert status == 413, reply
    assert json.loads(reply)["error"]["code"] == "TOO_LARGE"
    chunks = iter([body[:40000], body[40000:]])  # no Content-Length: sent chunked
    status, reply = authorized.request("POST", "/v1/resume", chunks)  # type: ignore[arg-type]
    authorized.close()
    assert status == 413, reply


def test_http_unauthenticated_message_gets_no_field_details(token_server) -> None:
    anonymous = _http(token_server, None)
    try:
        for path in ("/v1/heartbeat", "/v1/tick", "/v1/nosuch", "/v1/resume"):
            status, body = anonymous.request("POST", path, json.dumps(BAD_FIELDS).encode())
            assert status == 401, (path, status, body)
            error = json.loads(body)["error"]
            assert error["code"] == "UNAUTHORIZED", body
            for word in ("login", "symbol", "nosuch", "expected", "heartbeat", "tick"):
                assert word not in error["message"], (path, body)
    finally:
        anonymous.close()


# ------------------------------------------------------------------ bodies over the limit

LIMIT = 65536
MESSAGE_PATHS = ["hello", "tick", "trade", "calendar", "heartbeat", "resume"]


@pytest.mark.parametrize(
    "body",
    [
        b"\xff" * (LIMIT + 1),  # not UTF-8: parsing it would say BAD_JSON
        b'{"a":' * (LIMIT // 5 + 1),  # nested far too deep
        b'{"v":1,"type":"heartbeat","id":"big","x":"' + b"a" * LIMIT + b'"}',
    ],
    ids=["invalid-utf8", "deep", "valid-but-big"],
)
def test_zmq_oversized_messages_are_refused_before_parsing(plain_server, body: bytes) -> None:
    """TOO_LARGE, not BAD_JSON: the size is checked before a byte is parsed (no id echoed)."""
    zc = plain_server.zmq(timeout_ms=5000)
    try:
        reply = json.loads(zc.raw(body))
        assert reply["error"]["code"] == "TOO_LARGE" and reply["id"] is None, reply
        assert zc.send(_heartbeat())["type"] == "ack"  # the connection goes on
    finally:
        zc.close()


def _raw_http(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """One request on a raw socket; the reply read until the server closes or sends it all."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_part, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head_part.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(head_part.split(b" ")[1]), rest


@pytest.mark.parametrize("path", MESSAGE_PATHS)
def test_http_declared_oversize_is_413_without_reading_the_body(plain_server, path: str) -> None:
    """A Content-Length over the limit is answered 413 at once: the 10 MB it announces are
    never sent, so a server that waited for (or parsed) the body would time out instead."""
    head = (
        f"POST /v1/{path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {10 * 2**20}\r\n\r\n"
    ).encode()
    status, body = _raw_http(plain_server.http_port, head, b'{"v":1,')
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "TOO_LARGE"


@pytest.mark.parametrize("path", MESSAGE_PATHS)
def test_http_chunked_oversize_is_413(plain_server, path: str) -> None:
    """No Content-Length: the body is counted as it streams in and refused past the limit,
    whatever it holds (here bytes that are not UTF-8: parsed, they would be BAD_JSON)."""
    client = plain_server.http()
    try:
        chunks = iter([b"\xff" * 40000, b"\xff" * 40000])
        status, body = client.request("POST", f"/v1/{path}", chunks)  # type: ignore[arg-type]
    finally:
        client.close()
    assert status == 413, body
    assert json.loads(body)["error"]["code"] == "TOO_LARGE"


# ------------------------------------------------------------------ CSV formula injection


def test_csv_export_defuses_formulas(plain_server) -> None:
    """Comments come from the EA's terminal (anyone who can place an order): a cell that a
    spreadsheet would read as a formula is written with a leading apostrophe."""
    from sidecar.testing import messages as M

    login = 4242
    http = plain_server.http()
    try:
        assert http.send(M.hello(login=login))["type"] == "ack"
        starts = ["=1+1", "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1", "\r=1", "－1+1"]
        for i, comment in enumerate(starts):
            ack = http.send(M.trade(700 + i, login=login, comment=comment))
            assert ack["type"] == "ack", ack
        status, text = http.get(f"/v1/trades?login={login}&format=csv&limit=100")
    finally:
        http.close()
    assert status == 200
    import csv
    import io

    cells = {row["comment"] for row in csv.DictReader(io.StringIO(text))}
    assert cells == {"'" + c for c in starts}, cells


# ------------------------------------------------------------------ secrets never shown

EODHD_SECRET = "EODHD-SECRET-7f3a9c51"
SIDECAR_SECRET = "SIDECAR-SECRET-b2d4e6"
DINGTALK_WEBHOOK = "DINGTALK-SECRET-c0ffee01"
DINGTALK_SIGNING = "SECDINGTALK-SECRET-feed02"
SLACK_WEBHOOK = "SLACK-SECRET-0badf00d"
SECRETS = [EODHD_SECRET, SIDECAR_SECRET, DINGTALK_WEBHOOK, DINGTALK_SIGNING, SLACK_WEBHOOK]


def _secret_config(tmp: Path, base_url: str) -> Path:
    from sidecar.config import Config

    lines = [
        "[feeds]",
        f'eodhd_base_url = "{base_url}"',
        "max_retries = 0",
        "calendar_interval_seconds = 1",
        "news_interval_seconds = 1",
        'news_tickers = ["EURUSD.FOREX"]',
    ]
    if "alerts" in Config.model_fields:  # the alert relay's targets, where this tree has them
        lines += [
            "[[alerts.dingtalk]]",
            'name = "ops"',
            f'webhook = "https://oapi.dingtalk.com/robot/send?access_token={DINGTALK_WEBHOOK}"',
            f'secret = "{DINGTALK_SIGNING}"',
            "[[alerts.slack]]",
            'name = "desk"',
            f'webhook = "https://hooks.slack.com/services/T0/B0/{SLACK_WEBHOOK}"',
        ]
    path = tmp / "secrets.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _no_secret(where: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} in {where}: {text[:2000]}"


def _wait_for(what: str, probe, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_secrets_absent_from_logs_replies_metrics_health_state_and_config_show(
    tmp_path: Path,
) -> None:
    from sidecar.testing.fake_eodhd import FakeEodhd

    with FakeEodhd(token=EODHD_SECRET) as fake:
        # The first calls fail (5xx, 429, a 401 that echoes nothing), then they succeed.
        fake.fail("/api/economic-events", 500, times=2)
        fake.fail("/api/news", 429, times=1, retry_after=1)
        fake.fail("/api/news", 401, times=1, after=1)
        config = _secret_config(tmp_path, fake.base_url)
        env = _env(EODHD_API_TOKEN=EODHD_SECRET, SIDECAR_TOKEN=SIDECAR_SECRET)
        proc = SidecarProcess(tmp_path / "s.sqlite", config=config, env=env).start()
        try:

            def pulled() -> bool:
                seen = {(r.endpoint, r.status) for r in fake.requests}
                return {
                    ("economic-events", 500),
                    ("economic-events", 200),
                    ("news", 429),
                    ("news", 401),
                    ("news", 200),
                } <= seen

            _wait_for("feed calls that fail, then succeed", pulled)
            outputs: dict[str, str] = {}
            anonymous, authorized = _http(proc, None), _http(proc, SIDECAR_SECRET)
            wrong = _http(proc, EODHD_SECRET)  # another secret as the bearer: still 401
            try:
                for path in ("/metrics", "/health", "/v1/state", "/v1/decisions", "/v1/limits"):
                    outputs[f"GET {path}"] = authorized.request("GET", path)[1].decode()
                    outputs[f"GET {path} anonymous"] = anonymous.request("GET", path)[1].decode()
                    outputs[f"GET {path} wrong"] = wrong.request("GET", path)[1].decode()
                bad = json.dumps(BAD_FIELDS).encode()
                for path in ("/v1/heartbeat", "/v1/nosuch", "/v1/resume"):
                    for name, client in (("anon", anonymous), ("auth", authorized)):
                        outputs[f"POST {path} {name}"] = client.request("POST", path, bad)[
                            1
                        ].decode()
            finally:
                for c in (anonymous, authorized, wrong):
                    c.close()
            zc = proc.zmq()
            try:
                for token in (None, "wrong", EODHD_SECRET, SIDECAR_SECRET):
                    extra = {} if token is None else {"token": token}
                    outputs[f"zmq {token}"] = zc.raw(
                        json.dumps({**BAD_FIELDS, **extra}).encode()
                    ).decode()
                outputs["zmq ack"] = json.dumps(zc.send(_heartbeat(token=SIDECAR_SECRET)))
            finally:
                zc.close()
            assert (
                "UNAUTHORIZED" in outputs["zmq wrong"]
                and "BAD_REQUEST" in outputs[f"zmq {SIDECAR_SECRET}"]
            )
            assert "sidecar_verdict_latency_seconds" in outputs["GET /metrics"]
        finally:
            proc.stop()
        log = proc.log()
        assert "news.poll_failed" in log and "eodhd.call" in log, log[:2000]  # logged ...
        outputs["log"] = log  # ... without any secret
        for where, text in outputs.items():
            _no_secret(where, text)

        # config show: every secret masked, in TOML and in JSON.
        for fmt in ("toml", "json"):
            out = _run("config", "show", "--config", str(config), "--format", fmt, env=env)
            assert out.returncode == 0, out
            assert "***" in out.stdout
            _no_secret(f"config show --format {fmt}", out.stdout + out.stderr)


MISTYPED = [
    ("feeds", "eodhd_tokn", EODHD_SECRET),
    ("server", "tokne", SIDECAR_SECRET),
    ("feeds", "api_key", EODHD_SECRET),
    ("feed", "eodhd_token", EODHD_SECRET),  # a mistyped section
    ("feeds", "eodhd_base_url", f"https://eodhd.com/api?api_token={EODHD_SECRET}"),
    ("feeds", "eodhd_base_url", f"https://user:{EODHD_SECRET}@eodhd.com/api"),
]


@pytest.mark.parametrize(
    ("section", "key", "value"), MISTYPED, ids=[f"{s}.{k}" for s, k, _ in MISTYPED]
)
def test_a_mistyped_secret_is_never_echoed(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'[{section}]\n{key} = "{value}"\n')
    out = _run("check-config", str(path))
    assert out.returncode == 2, out
    named = section if section == "feed" else f"{section}.{key}"
    assert f"- {named}:" in out.stderr and "value not shown" in out.stderr, out.stderr
    _no_secret("check-config", out.stdout + out.stderr)
    out = _run("config", "show", "--config", str(path))
    assert out.returncode == 2, out
    _no_secret("config show", out.stdout + out.stderr)
    out = _run("serve", "--config", str(path), "--db", str(tmp_path / "s.sqlite"))
    assert out.returncode == 2, out
    records = [json.loads(ln) for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    assert [r["event"] for r in records] == ["service.start_failed"], records
    _no_secret("service.start_failed", out.stdout + out.stderr)
    # ... nor from the environment.
    env_key = f"SIDECAR__{section.upper()}__{key.upper()}"
    out = _run("check-config", env=_env(**{env_key: value}))
    assert out.returncode == 2, out
    _no_secret("check-config (environment)", out.stdout + out.stderr)
