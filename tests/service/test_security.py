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

# (component, value, engine): every form that listens on a non-loopback address, or on one
# that cannot be resolved to a loopback one.
EXPOSED = [
    ("server.http", f":{P}", "builtin"),  # the defect: an empty host is every interface
    ("server.http", f"0.0.0.0:{P}", "builtin"),
    ("server.http", f"[::]:{P}", "builtin"),
    ("server.http", f"*:{P}", "builtin"),
    ("server.http", f"192.0.2.1:{P}", "builtin"),
    ("server.http", f"no-such-host.invalid:{P}", "builtin"),
    ("server.zmq", f"tcp://*:{P}", "builtin"),
    ("server.zmq", f"tcp://0.0.0.0:{P}", "builtin"),
    ("server.zmq", f"tcp://[::]:{P}", "builtin"),
    ("server.zmq", f"tcp://:{P}", "builtin"),  # not an endpoint the builtin engine takes
    ("server.zmq", f"tcp://*:{P}", "libzmq"),
    ("server.zmq", f"tcp://0.0.0.0:{P}", "libzmq"),
    ("server.zmq", f"tcp://:{P}", "libzmq"),
    ("server.zmq", f"tcp://192.0.2.1:{P}", "libzmq"),
    ("server.zmq", f"ws://127.0.0.1:{P}", "libzmq"),  # a transport the check cannot read
]
if PUBLIC_IF:
    EXPOSED += [
        ("server.zmq", f"tcp://{PUBLIC_IF}:{P}", "libzmq"),  # libzmq: the interface's address
        ("server.http", f"{PUBLIC_IF}:{P}", "builtin"),  # HTTP: not a name that resolves
    ]
LOOPBACK = [
    ("server.http", f"127.0.0.1:{P}", "builtin"),
    ("server.http", f"localhost:{P}", "builtin"),
    ("server.http", f"[::1]:{P}", "builtin"),
    ("server.zmq", f"tcp://127.0.0.1:{P}", "builtin"),
    ("server.zmq", f"tcp://localhost:{P}", "builtin"),
    ("server.zmq", f"tcp://127.0.0.1:{P}", "libzmq"),
    ("server.zmq", "ipc://sidecar-test.ipc", "libzmq"),
]
if LOOPBACK_IF:
    LOOPBACK.append(("server.zmq", f"tcp://{LOOPBACK_IF}:{P}", "libzmq"))


def _toml(component: str, value: str, engine: str, token: str = "") -> str:
    other = "http" if component == "server.zmq" else "zmq"
    key = component.split(".")[1]
    return (
        f'[server]\n{key} = "{value}"\n{other} = ""\nzmq_engine = "{engine}"\ntoken = "{token}"\n'
    )


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env or _env(),
    )


def _ids(cases: list[tuple[str, str, str]]) -> list[str]:
    return [f"{c}={v}/{e}" for c, v, e in cases]


# ------------------------------------------------------------------ 1. binds needing a token


@pytest.mark.parametrize(("component", "value", "engine"), EXPOSED, ids=_ids(EXPOSED))
def test_check_config_refuses_a_non_loopback_bind_without_a_token(
    tmp_path: Path, component: str, value: str, engine: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_toml(component, value, engine))
    out = _run("check-config", str(path))
    assert out.returncode == 2, out
    problems = [ln for ln in out.stderr.splitlines() if ln.strip("- ").startswith(component)]
    assert problems, out.stderr
    if (component, engine) == ("server.zmq", "builtin") and value.startswith("tcp://:"):
        assert "expected tcp://HOST:PORT" in out.stderr  # refused whatever the token
        return
    assert any("needs a token" in p for p in problems), out.stderr
    # ... and accepted with one.
    path.write_text(_toml(component, value, engine, TOKEN))
    out = _run("check-config", str(path))
    assert out.returncode == 0, out
    assert TOKEN not in out.stdout + out.stderr


@pytest.mark.parametrize(("component", "value", "engine"), LOOPBACK, ids=_ids(LOOPBACK))
def test_check_config_accepts_a_loopback_bind_without_a_token(
    tmp_path: Path, component: str, value: str, engine: str
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(_toml(component, value, engine))
    out = _run("check-config", str(path))
    assert out.returncode == 0, out


def _serve_args(component: str, value: str, engine: str, db: Path) -> list[str]:
    args = ["serve", "--db", str(db), "--zmq-engine", engine]
    if component == "server.http":
        return [*args, "--http", value, "--zmq", ""]
    return [*args, "--zmq", value, "--http", ""]


SERVE_EXPOSED = [c for c in EXPOSED if not c[1].startswith("tcp://:") or c[2] == "libzmq"]


@pytest.mark.parametrize(("component", "value", "engine"), SERVE_EXPOSED, ids=_ids(SERVE_EXPOSED))
def test_serve_refuses_a_non_loopback_bind_without_a_token(
    tmp_path: Path, component: str, value: str, engine: str
) -> None:
    out = _run(*_serve_args(component, value, engine, tmp_path / "s.sqlite"))
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
    ("server.http", ":{port}", "builtin"),
    ("server.http", "0.0.0.0:{port}", "builtin"),
    ("server.http", "*:{port}", "builtin"),
    ("server.zmq", "tcp://*:{port}", "builtin"),
    ("server.zmq", "tcp://0.0.0.0:{port}", "libzmq"),
]


@pytest.mark.parametrize(
    ("component", "value", "engine"), SERVE_WITH_TOKEN, ids=_ids(SERVE_WITH_TOKEN)
)
def test_serve_binds_every_interface_with_a_token(
    tmp_path: Path, spawn, component: str, value: str, engine: str
) -> None:
    port = free_port()
    args = _serve_args(component, value.format(port=port), engine, tmp_path / "s.sqlite")
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


@pytest.fixture(scope="module", params=["builtin", "libzmq"])
def engine_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp(f"sec-{request.param}") / "s.sqlite"
    proc = SidecarProcess(path, env=_env(SIDECAR_ZMQ_ENGINE=request.param)).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_json_is_bad_json_on_both_transports(engine_server, name: str) -> None:
    payload = MALFORMED[name]
    zc = engine_server.zmq(timeout_ms=5000)
    try:
        reply = json.loads(zc.raw(payload))
    finally:
        zc.close()
    assert reply["type"] == "error" and reply["error"]["code"] == "BAD_JSON", reply
    assert reply["error"]["message"].startswith("message: ")
    http = engine_server.http()
    status, body = http.raw("heartbeat", payload)
    http.close()
    assert status == 400, body
    assert json.loads(body)["error"] == reply["error"]
    log = engine_server.log()
    assert "Traceback" not in log and "request.internal_error" not in log
    assert '"level":"error"' not in log
    assert engine_server.proc.poll() is None


# ------------------------------------------------------------------ 6. the token first


@pytest.fixture(scope="module", params=["builtin", "libzmq"])
def token_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp(f"tok-{request.param}") / "s.sqlite"
    env = _env(SIDECAR_TOKEN=TOKEN, SIDECAR_ZMQ_ENGINE=request.param)
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
