"""Property tests: whatever arrives at either transport, a real sidecar answers with a valid reply.

One `sidecar serve` process. Every generated payload goes to its ZeroMQ socket and to
`POST /v1/<type>`; each reply must be JSON that decodes as a `verdict`, `ack` or `error` and
validates against the checked-in JSON Schema; errors carry a known code (never `INTERNAL`) and a
message that starts by naming a field; HTTP answers errors with a 4xx status and the same error
object. A ZeroMQ timeout is a failure (the socket must always answer). Every message type of the
protocol is covered (a test fails when a type is added without a base message here). At the end
the process is still alive, healthy and deciding, and its log holds no traceback and no
internal error.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sidecar.protocol import (
    ERROR_CODES,
    INTERNAL,
    MAX_MESSAGE_BYTES,
    REQUEST_TYPES,
    Ack,
    ErrorReply,
    Verdict,
    decode_reply,
)
from sidecar.testing import messages as M
from sidecar.testing.client import HttpClient, ZmqClient
from sidecar.testing.server import SidecarProcess

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "shared_schema"
VALIDATORS = {
    name: Draft202012Validator(json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text()))
    for name in ("ack", "verdict", "error")
}
ROWS = M.eurusd_rows()[:300]
T0 = int(ROWS[-1][0]) + 3600
LOGIN = 12345678
# "<field path>: ..." e.g. "bid: ...", "positions[0].price_open: ...", "message: ...".
NAMES_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[^\s.:\[\]]+|\[\d+\])*: ")
# An unknown field is named as sent, whatever its characters: "<path.>name: unknown field, ...".
NAMES_UNKNOWN_FIELD = re.compile(r"^.+: unknown field, ", re.S)
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Pair:
    def __init__(self, proc: SidecarProcess) -> None:
        self.proc = proc
        self.zmq: ZmqClient = proc.zmq(timeout_ms=5000)
        self.http: HttpClient = proc.http()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    path = tmp_path_factory.mktemp("fuzz") / "sidecar.db"
    with SidecarProcess(path) as proc:
        pair = Pair(proc)
        ack = pair.zmq.send(M.hello(login=LOGIN, bars=ROWS, server=T0))
        assert ack["type"] == "ack", ack
        yield pair
        pair.zmq.close()
        pair.http.close()


# ---------------------------------------------------------------- reply checks


def check_reply(raw: bytes) -> Ack | Verdict | ErrorReply:
    obj = orjson.loads(raw)  # strict JSON: no NaN/Infinity literals
    assert isinstance(obj, dict), raw
    reply = decode_reply(raw)
    errors = sorted(VALIDATORS[obj["type"]].iter_errors(obj), key=str)
    assert not errors, f"{obj['type']} reply fails its schema: {errors[0].message}: {raw[:300]!r}"
    if isinstance(reply, ErrorReply):
        assert reply.ok is False
        assert reply.error.code in ERROR_CODES, reply
        assert reply.error.code != INTERNAL, f"internal error: {reply}"
        message = reply.error.message
        assert NAMES_FIELD.match(message) or NAMES_UNKNOWN_FIELD.match(message), (
            f"message names no field: {reply}"
        )
    else:
        assert reply.ok is True
    return reply


def request_id(payload: bytes) -> str | None:
    try:
        obj = orjson.loads(payload.rstrip(b"\x00 \r\n\t"))
    except orjson.JSONDecodeError:
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) and 0 < len(rid) <= 128 else None


def path_type(payload: bytes) -> str:
    try:
        obj = orjson.loads(payload.rstrip(b"\x00 \r\n\t"))
    except orjson.JSONDecodeError:
        return "tick"
    t = obj.get("type") if isinstance(obj, dict) else None
    return t if isinstance(t, str) and t in REQUEST_TYPES else "tick"


def exchange(pair: Pair, payload: bytes, path: str | None = None) -> tuple[Any, Any]:
    """Send to both transports; check both replies and that they agree."""
    assert pair.proc.proc is not None and pair.proc.proc.poll() is None, "sidecar died"
    z = check_reply(pair.zmq.raw(payload))  # TimeoutError = a REP socket that did not answer
    status, body = pair.http.raw(path or path_type(payload), payload)
    h = check_reply(body)
    if isinstance(h, ErrorReply):
        assert 400 <= status < 500, (status, body)
    else:
        assert status == 200, (status, body)
    if path is None:
        # Same endpoint semantics: the same kind of reply and the same error object.
        assert type(z) is type(h), (z, h)
        if isinstance(z, ErrorReply) and isinstance(h, ErrorReply):
            assert (z.error, z.id) == (h.error, h.id), (z, h)
    rid = request_id(payload)
    too_large = isinstance(z, ErrorReply) and z.error.code == "TOO_LARGE"  # not parsed at all
    if rid is not None and not too_large:
        assert z.id == rid, (z, payload[:200])
    return z, h


# ---------------------------------------------------------------- generators

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)
odd_numbers = st.sampled_from(
    [0, -1, -0.0, 1e-320, 2**63, 2**64, -(2**63) - 1, 10**30, -(10**30), 1e308, -1e308]
)
field_values = (
    scalars
    | odd_numbers
    | st.floats(min_value=-1e6, max_value=1e6)
    | st.lists(scalars, max_size=4)
    | st.dictionaries(st.text(max_size=8), scalars, max_size=3)
)


def heartbeat() -> dict[str, Any]:
    return M.heartbeat(login=LOGIN, server=T0 + 30)


def calendar() -> dict[str, Any]:
    return M.calendar([M.calendar_event(T0 + 86_400)], login=LOGIN)


def open_tick() -> dict[str, Any]:
    pos = M.position(501, price_open=1.09001, profit=12.5, comment="sc:9f2c")
    pos |= {"sl": 1.08701, "tp": 1.09601}
    last = ROWS[-1]
    bar = [T0, last[4], last[4] + 0.0004, last[4] - 0.0003, last[4] + 0.0001, 900.0, 7.0]
    return M.tick(
        T0 + 3601, 1.09121, 1.09128, login=LOGIN, equity=10012.5, positions=[pos], bars=[bar]
    )


BASES = {
    "hello": lambda: M.hello(login=LOGIN, bars=ROWS[-30:], server=T0),
    "tick": open_tick,
    "trade": lambda: M.trade(90017, login=LOGIN, comment="sc:9f2c"),
    "heartbeat": heartbeat,
    "calendar": calendar,
}


def base(kind: str) -> dict[str, Any]:
    """A fresh deep copy: the builders share bar rows with ROWS, and mutations must not leak."""
    return copy.deepcopy(BASES[kind]())


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*prefix, i))
    return out


def at(obj: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        obj = obj[p]
    return obj


@st.composite
def mutated(draw: st.DrawFn, kinds: tuple[str, ...] = tuple(BASES)) -> dict[str, Any]:
    """A well-formed message with 1-3 fields replaced, removed or added."""
    msg = base(draw(st.sampled_from(kinds)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(msg)))
        parent, key = at(msg, path[:-1]), path[-1]
        op = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if op == "replace":
            parent[key] = draw(field_values)
        elif op == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(field_values)
        else:
            parent.append(draw(field_values))
        if not paths(msg):
            break
    return msg


def dumps(obj: Any) -> bytes:
    # Python's json writes NaN / Infinity / -Infinity literals for non-finite floats.
    return json.dumps(obj).encode()


# ---------------------------------------------------------------- properties


@FUZZ
@given(value=json_values)
def test_arbitrary_json_values(server: Pair, value: Any) -> None:
    exchange(server, dumps(value))


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(server: Pair, data: bytes) -> None:
    exchange(server, data)


@FUZZ
@given(kind=st.sampled_from(tuple(BASES)), cut=st.floats(0.0, 1.0), nuls=st.integers(0, 3))
def test_truncated_json(server: Pair, kind: str, cut: float, nuls: int) -> None:
    raw = dumps(base(kind))
    n = min(int(cut * len(raw)), len(raw) - 1)
    z, _ = exchange(server, raw[:n] + b"\x00" * nuls, path=kind)
    assert isinstance(z, ErrorReply) and z.error.code == "BAD_JSON", z


@FUZZ
@given(
    kind=st.sampled_from(tuple(BASES)),
    tail=st.sampled_from([b"\x00", b"\x00\x00", b"\r\n\x00", b" \x00", b"\n"]),
)
def test_valid_messages_with_trailing_nul(server: Pair, kind: str, tail: bytes) -> None:
    z, h = exchange(server, dumps(base(kind)) + tail)
    expected = Verdict if kind == "tick" else Ack
    assert isinstance(z, expected) and isinstance(h, expected), (z, h)


@FUZZ
@given(msg=mutated())
def test_well_typed_messages_with_arbitrary_field_values(server: Pair, msg: dict[str, Any]) -> None:
    exchange(server, dumps(msg))


@FUZZ
@given(
    kind=st.sampled_from(tuple(BASES)),
    literal=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400]),
    data=st.data(),
)
def test_non_finite_and_huge_number_literals(
    server: Pair, kind: str, literal: str, data: st.DataObject
) -> None:
    msg = base(kind)
    numeric = [
        p
        for p in paths(msg)
        if isinstance(at(msg, p), int | float) and not isinstance(at(msg, p), bool) and p != ("v",)
    ]
    path = data.draw(st.sampled_from(numeric))
    marker = "__NUMBER__"
    at(msg, path[:-1])[path[-1]] = marker
    raw = dumps(msg).replace(f'"{marker}"'.encode(), literal.encode())
    z, _ = exchange(server, raw)
    assert isinstance(z, ErrorReply) and z.error.code in ("BAD_JSON", "BAD_REQUEST"), (raw, z)


@FUZZ
@given(
    bid=st.floats(-10.0, 10.0) | st.sampled_from([0.0, -0.0, 1e-300]),
    spread=st.floats(-1.0, 1.0),
    equity=st.floats(-1e6, 1e7) | st.sampled_from([0.0, 1e-9]),
    balance=st.floats(-1e6, 1e7) | st.sampled_from([0.0, 1e-9]),
    price_open=st.floats(-2.0, 5.0),
    volume=st.floats(-1.0, 1000.0),
)
def test_prices_and_money_at_and_beyond_the_edges(
    server: Pair,
    bid: float,
    spread: float,
    equity: float,
    balance: float,
    price_open: float,
    volume: float,
) -> None:
    msg = open_tick()
    msg["bid"], msg["ask"] = bid, bid + spread
    msg["account"] |= {"equity": equity, "balance": balance}
    msg["positions"][0] |= {"price_open": price_open, "volume": volume}
    z, _ = exchange(server, dumps(msg))
    invalid = (
        not bid > 0
        or not msg["ask"] > 0
        or msg["bid"] > msg["ask"]
        or not balance > 0
        or equity < 0
        or not price_open > 0
        or not volume > 0
    )
    if invalid:
        assert isinstance(z, ErrorReply) and z.error.code == "BAD_REQUEST", (msg, z)
    else:
        assert isinstance(z, Verdict), (msg, z)
        if z.open is not None:
            assert math.isfinite(z.open.volume) and z.open.volume > 0


@FUZZ
@given(
    version=st.integers()
    | st.none()
    | st.text(max_size=3)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans(),
    msg_type=st.text(max_size=12) | st.none() | st.integers(),
    kind=st.sampled_from(tuple(BASES)),
)
def test_unknown_version_and_type(server: Pair, version: Any, msg_type: Any, kind: str) -> None:
    msg = base(kind)
    if version == 1 and not isinstance(version, bool):
        version = 2
    msg["v"] = version
    z, _ = exchange(server, dumps(msg))
    assert isinstance(z, ErrorReply) and z.error.code == "UNSUPPORTED_VERSION", z
    msg = base(kind)
    if msg_type in REQUEST_TYPES:
        msg_type = f"{msg_type}s"
    msg["type"] = msg_type
    z, _ = exchange(server, dumps(msg), path=kind)
    assert isinstance(z, ErrorReply) and z.error.code == "UNKNOWN_TYPE", z


@FUZZ
@given(path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
def test_unknown_http_paths(server: Pair, path: str) -> None:
    if path in REQUEST_TYPES or path == "resume":
        path += "x"
    status, body = server.http.raw(path, dumps(base("tick")))
    reply = check_reply(body)
    assert status == 404 and isinstance(reply, ErrorReply), (status, body)
    assert reply.error.code == "UNKNOWN_TYPE"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extra=st.integers(1, 200_000), kind=st.sampled_from(tuple(BASES)))
def test_bodies_over_64_kib(server: Pair, extra: int, kind: str) -> None:
    msg = base(kind)
    msg["comment"] = "x" * (MAX_MESSAGE_BYTES + extra)
    z, _ = exchange(server, dumps(msg))
    assert isinstance(z, ErrorReply) and z.error.code == "TOO_LARGE", z


@FUZZ
@given(
    symbol=st.text(min_size=1, max_size=20).filter(lambda s: s != "EURUSD"),
    login=st.integers(0, 2**63 - 1),
    timeframe=st.sampled_from(["M1", "H1", "H4", "D1"]),
)
def test_ticks_for_symbols_never_introduced(
    server: Pair, symbol: str, login: int, timeframe: str
) -> None:
    msg = open_tick()
    msg |= {"symbol": symbol, "login": login + 1 if login == LOGIN else login}
    msg["timeframe"] = timeframe
    z, _ = exchange(server, dumps(msg))
    assert isinstance(z, ErrorReply), z
    if len(symbol) <= 64:
        assert z.error.code == "UNKNOWN_SYMBOL", z
    if len(symbol) <= 64:
        status, _ = server.http.raw("tick", dumps(msg))
        assert status == 409


def test_every_message_type_has_a_base_message() -> None:
    assert set(BASES) == set(REQUEST_TYPES)


def _splice(raw: bytes, at_fraction: float, insert: bytes) -> bytes:
    """`insert` placed just after a random quote of `raw`: inside a string key or value."""
    quotes = [i for i, c in enumerate(raw) if c == ord('"')]
    i = quotes[min(int(at_fraction * len(quotes)), len(quotes) - 1)] + 1
    return raw[:i] + insert + raw[i:]


@FUZZ
@given(
    kind=st.sampled_from(tuple(BASES)),
    where=st.floats(0.0, 1.0),
    bad=st.sampled_from(
        [
            b"\xff",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xe2\x82",
            b"\x80",
            b"\xfe\xfe",
        ]
    ),
)
def test_invalid_utf8_inside_every_message_type(
    server: Pair, kind: str, where: float, bad: bytes
) -> None:
    raw = _splice(dumps(base(kind)), where, bad)
    z, _ = exchange(server, raw, path=kind)
    assert isinstance(z, ErrorReply) and z.error.code == "BAD_JSON", (raw[:120], z)


@FUZZ
@given(
    kind=st.sampled_from(tuple(BASES)),
    depth=st.integers(1, 3000),
    opener=st.sampled_from([b"[", b'{"a":']),
    closed=st.booleans(),
    data=st.data(),
)
def test_deep_nesting_in_every_message_type(
    server: Pair, kind: str, depth: int, opener: bytes, closed: bool, data: st.DataObject
) -> None:
    msg = base(kind)
    path = data.draw(st.sampled_from(paths(msg)))
    marker = "__NEST__"
    at(msg, path[:-1])[path[-1]] = marker
    closer = b"]" if opener == b"[" else b"}"
    nest = opener * depth + b"1" + (closer * depth if closed else b"")
    raw = dumps(msg).replace(f'"{marker}"'.encode(), nest)
    z, _ = exchange(server, raw, path=kind)
    assert isinstance(z, ErrorReply), z
    if depth + len(path) > 40 or not closed:  # deeper than MAX_DEPTH (32), or not JSON at all
        assert z.error.code == "BAD_JSON", (depth, path, z)


@FUZZ
@given(
    kind=st.sampled_from(tuple(BASES)),
    data=st.data(),
    value=field_values,
)
def test_duplicate_keys_in_every_message_type(
    server: Pair, kind: str, data: st.DataObject, value: Any
) -> None:
    """A key given twice: JSON leaves it to the reader; the reply is still a valid one."""
    msg = base(kind)
    key = data.draw(st.sampled_from(sorted(msg)))
    raw = dumps(msg)
    raw = raw[:-1] + b", " + json.dumps(key).encode() + b": " + dumps(value) + b"}"
    exchange(server, raw, path=kind)


ODD_NUMBERS = [0, -1, -0.0, 1e-320, -1e-9, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 1e15, 1e308]


@FUZZ
@given(kind=st.sampled_from(tuple(BASES)), value=st.sampled_from(ODD_NUMBERS), data=st.data())
def test_zero_negative_and_huge_numbers_in_every_numeric_field(
    server: Pair, kind: str, value: float, data: st.DataObject
) -> None:
    msg = base(kind)
    numeric = [
        p
        for p in paths(msg)
        if isinstance(at(msg, p), int | float) and not isinstance(at(msg, p), bool)
    ]
    path = data.draw(st.sampled_from(numeric))
    at(msg, path[:-1])[path[-1]] = value
    exchange(server, dumps(msg))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(tuple(BASES)), times=st.integers(2, 4))
def test_duplicate_deliveries_get_the_same_kind_of_reply(
    server: Pair, kind: str, times: int
) -> None:
    """The EA re-sends after a timeout: the same message again is answered, never an error."""
    raw = dumps(base(kind))
    expected = Verdict if kind == "tick" else Ack
    replies = [exchange(server, raw) for _ in range(times)]
    for z, h in replies:
        assert isinstance(z, expected) and isinstance(h, expected), (z, h)
    if kind == "trade":  # recorded once: every later copy is a duplicate
        assert all(z.duplicate and h.duplicate for z, h in replies[1:]), replies


def test_still_healthy_and_deciding_after_the_fuzzing(server: Pair) -> None:
    assert server.proc.proc is not None and server.proc.proc.poll() is None
    status, health = server.http.get("/health")
    assert status == 200 and health["ready"] is True, health
    login = LOGIN + 1  # an account the fuzzing never touched
    for send in (server.zmq.send, server.http.send):
        ack = send(M.hello(login=login, bars=ROWS, server=T0))
        assert ack["type"] == "ack", ack
    tick = open_tick() | {"login": login, "bars": []}
    z = check_reply(server.zmq.raw(dumps(tick)))
    status, body = server.http.raw("tick", dumps(tick))
    h = check_reply(body)
    assert isinstance(z, Verdict) and isinstance(h, Verdict) and status == 200
    assert z.mode == "active" and h.mode == "active"
    log = server.proc.log()
    assert "Traceback" not in log and "request.internal_error" not in log
    assert server.proc.proc.poll() is None
