"""Compile the MQL5 logic modules with g++ (through the shim) and run the golden vectors.

The .mqh files under mql5/Include/Sidecar are compiled as C++17 with -Wall -Wextra -Werror;
any warning fails the build. The drivers read their inputs with the Protocol module's own JSON
parser and print results as JSON lines; every vector case is compared with its expectation.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "mql5" / "Include"
SHIM = Path(__file__).resolve().parent / "shim"
SRC = Path(__file__).resolve().parent / "src"
VECTORS = ROOT / "shared_schema" / "vectors"

CXX = shutil.which("g++")
FLAGS = [
    "-std=c++17",
    "-O1",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wconversion",
    "-Wno-sign-conversion",
]

pytestmark = pytest.mark.skipif(CXX is None, reason="g++ is required for the MQL5 module tests")


# StringSubstr with a length <= 0 (other than -1) is not documented and older terminal builds return
# the rest of the string for it: every driver is built and run under both rules (mql5_shim.h).
SUBSTR_MODES = {"substr_empty": [], "substr_rest": ["-DSHIM_SUBSTR_REST_ON_NONPOSITIVE"]}


def _compile(src: Path, out: Path, defines: list[str] | None = None) -> Path:
    cmd = [CXX, *FLAGS, *(defines or []), "-I", str(SHIM), "-I", str(INCLUDE)]
    cmd += ["-o", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stderr.strip() == "", (
        f"g++ failed or warned for {src.name}:\n{proc.stderr}"
    )
    return out


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mql5-build")


@pytest.fixture(scope="session", params=sorted(SUBSTR_MODES))
def substr_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def vectors_bin(build_dir: Path, substr_mode: str) -> Path:
    return _compile(
        SRC / "vectors_driver.cpp",
        build_dir / f"vectors_driver_{substr_mode}",
        SUBSTR_MODES[substr_mode],
    )


@pytest.fixture(scope="session")
def unit_bin(build_dir: Path, substr_mode: str) -> Path:
    return _compile(
        SRC / "unit_tests.cpp", build_dir / f"unit_tests_{substr_mode}", SUBSTR_MODES[substr_mode]
    )


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_cases(module: str) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(case id, op, merged input, expectation) for every case of every file of a module."""
    cases = []
    for path in sorted((VECTORS / module).glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["module"] == module
        for case in doc["cases"]:
            merged = deep_merge(doc["defaults"], case.get("given", {}))
            cases.append((f"{path.stem}: {case['name']}", doc["op"], merged, case["expect"]))
    assert cases, f"no vectors for {module}"
    return cases


def run_driver(binary: Path, lines: list[str]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(binary)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    assert len(out) == len(lines)
    return out


def assert_matches(case_id: str, got: dict[str, Any], expect: dict[str, Any]) -> list[str]:
    errors = []
    for key, want in expect.items():
        have = got.get(key)
        if isinstance(want, (bool, str)) or want is None:
            ok = have == want
        else:
            ok = isinstance(have, (int, float)) and math.isclose(
                have, want, rel_tol=1e-9, abs_tol=1e-9
            )
        if not ok:
            errors.append(f"{case_id}: {key} = {have!r}, expected {want!r}")
    return errors


@pytest.mark.parametrize("module", ["guard", "sizing", "manager"])
def test_vectors(vectors_bin: Path, module: str) -> None:
    cases = load_cases(module)
    lines = [json.dumps({"module": module, "op": op, "input": inp}) for _, op, inp, _ in cases]
    results = run_driver(vectors_bin, lines)
    errors: list[str] = []
    for (case_id, _, _, expect), got in zip(cases, results, strict=True):
        errors += assert_matches(case_id, got, expect)
    assert not errors, "\n".join(errors)


def test_vector_files_cover_boundaries() -> None:
    names = [c[0] for c in load_cases("guard")]
    for rule in (
        "daily loss",
        "floating loss",
        "drawdown",
        "positions open",
        "spread",
        "same signal",
        "max lot",
        "risk cap",
        "leverage room",
        "valid",
    ):
        assert sum(rule in n for n in names) >= 3, f"fewer than 3 boundary cases for {rule}"


def test_unit_checks(unit_bin: Path) -> None:
    proc = subprocess.run([str(unit_bin)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checks passed" in proc.stdout


# ------------------------------------------------------------------ protocol round trips

SCHEMAS = ROOT / "shared_schema"
MESSAGE_TYPES = ("hello", "tick", "trade", "calendar", "heartbeat")


@pytest.fixture(scope="session")
def protocol_bin(build_dir: Path, substr_mode: str) -> Path:
    return _compile(
        SRC / "protocol_driver.cpp",
        build_dir / f"protocol_driver_{substr_mode}",
        SUBSTR_MODES[substr_mode],
    )


def _validator(kind: str) -> Any:
    import jsonschema  # a dev dependency: missing it must fail the run, not skip checks

    path = SCHEMAS / f"{kind}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _run_mode(binary: Path, mode: str, lines: list[str]) -> list[str]:
    proc = subprocess.run(
        [str(binary), mode],
        input=("\n".join(lines) + "\n").encode("utf-8"),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    # split on "\n" only: str.splitlines() also breaks on U+0085/U+2028 inside JSON strings
    out = proc.stdout.decode("utf-8").split("\n")
    if out and out[-1] == "":
        out.pop()
    assert len(out) == len(lines)
    return out


DESIGN_EXAMPLES: list[dict[str, Any]] = [
    {
        "v": 1,
        "type": "hello",
        "id": "h-1",
        "digits": 5,
        "ea": {
            "name": "SidecarEA",
            "version": "1.0.0",
            "magic": 20251218,
            "tester": False,
            "day_offset_hours": 0.0,
        },
        "account": {
            "login": 12345678,
            "server": "JustMarkets-Live",
            "currency": "USD",
            "leverage": 3000,
            "balance": 10000.0,
            "equity": 10000.0,
            "margin": 0.0,
            "free_margin": 10000.0,
        },
        "time": {"server": 1734486000, "gmt": 1734478800},
        "symbol": {
            "name": "EURUSD",
            "base": "EUR",
            "quote": "USD",
            "digits": 5,
            "point": 0.00001,
            "tick_size": 0.00001,
            "tick_value": 1.0,
            "contract_size": 100000.0,
            "volume_min": 0.01,
            "volume_step": 0.01,
            "volume_max": 100.0,
            "stops_level": 0,
            "freeze_level": 0,
        },
        "timeframe": "H1",
        "bars": [[1734472800, 1.0912, 1.092, 1.0905, 1.0915, 1534, 7]],
    },
    {
        "v": 1,
        "type": "tick",
        "id": "t-42",
        "token": 's3cr"et',
        "digits": 5,
        "login": 12345678,
        "symbol": "EURUSD",
        "timeframe": "H1",
        "time": {"server": 1734486001, "gmt": 1734478801, "msc": 1734486001250},
        "bid": 1.09121,
        "ask": 1.09128,
        "account": {"balance": 10000.0, "equity": 10012.5, "margin": 36.4, "free_margin": 9976.1},
        "positions": [
            {
                "ticket": 501,
                "symbol": "EURUSD",
                "side": "buy",
                "volume": 0.1,
                "price_open": 1.09001,
                "sl": 1.08701,
                "tp": 1.09601,
                "profit": 12.5,
                "swap": 0.0,
                "time": 1734480000,
                "comment": "sc:9f2c…",
            }
        ],
        "bars": [],
    },
    {
        "v": 1,
        "type": "trade",
        "id": "d-7",
        "digits": 5,
        "login": 12345678,
        "deal": 90017,
        "order": 80011,
        "position": 501,
        "symbol": "EURUSD",
        "side": "buy",
        "entry": "in",
        "volume": 0.1,
        "price": 1.09001,
        "profit": 0.0,
        "commission": -0.35,
        "swap": 0.0,
        "time": 1734480000,
        "comment": "sc:9f2c…",
    },
    {
        "v": 1,
        "type": "calendar",
        "id": "c-3",
        "login": 12345678,
        "source": "mt5",
        "events": [
            {
                "id": "840030016",
                "time_gmt": 1734701400,
                "currency": "USD",
                "importance": "high",
                "name": 'Nonfarm Payrolls "NFP"\n',
                "actual": None,
                "forecast": 200.0,
                "previous": 227.0,
            }
        ],
    },
    {
        "v": 1,
        "type": "heartbeat",
        "id": "b-9",
        "login": 12345678,
        "symbol": "EURUSD",
        "time": {"server": 1734486060, "gmt": 1734478860},
    },
]


def _same(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        errs = [f"{path}: keys {sorted(a)} != {sorted(b)}"] if set(a) != set(b) else []
        for k in set(a) & set(b):
            errs += _same(a[k], b[k], f"{path}.{k}")
        return errs
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [
            e
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for e in _same(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, int) and isinstance(b, int):
        return [] if a == b else [f"{path}: {a!r} != {b!r}"]
    # numbers read back exactly: prices with the symbol's digits, money and volumes with up to 8
    # decimals, symbol specs in their shortest exact form (inputs are generated at that precision)
    ok = isinstance(a, (int, float)) and isinstance(b, (int, float))
    return [] if ok and a == b else [f"{path}: {a!r} != {b!r}"]


# Messages with a top-level "tester" flag (the hello carries it as ea.tester).
TESTER_FLAGGED = ("tick", "trade", "heartbeat")


def _tester_of(msg: dict[str, Any]) -> bool:
    """Whether a driver input describes a Strategy Tester session."""
    if msg["type"] == "hello":
        return bool(msg["ea"]["tester"])
    return bool(msg.get("tester", False))


def _encode_and_check(protocol_bin: Path, messages: list[dict[str, Any]]) -> None:
    from sidecar import protocol

    out = _run_mode(protocol_bin, "encode", [json.dumps(m) for m in messages])
    errors: list[str] = []
    for msg, line in zip(messages, out, strict=True):
        wire = json.loads(line)
        for err in _validator(msg["type"]).iter_errors(wire):
            errors.append(f"{msg['type']} {msg['id']}: schema: {err.message} at {list(err.path)}")
        decoded = protocol.decode(line.encode("utf-8"))  # the sidecar's own decoder accepts it
        protocol.decode(line.encode("utf-8") + b"\x00")
        if msg["type"] in TESTER_FLAGGED or msg["type"] == "hello":
            seen = decoded.ea.tester if msg["type"] == "hello" else decoded.tester
            if seen is not _tester_of(msg):
                errors.append(f"{msg['type']} {msg['id']}: decoded tester={seen!r}")
        want = {k: v for k, v in msg.items() if k != "digits"}
        if msg["type"] in TESTER_FLAGGED and not want.get("tester", False):
            # live messages omit the flag (default false): their bytes stay as before the field
            want.pop("tester", None)
        errors += [f"{msg['type']} {msg['id']}{e}" for e in _same(wire, want)]
    assert not errors, "\n".join(errors)


def test_design_examples_encode_to_valid_messages(protocol_bin: Path) -> None:
    _encode_and_check(protocol_bin, DESIGN_EXAMPLES)


def _as_tester(msg: dict[str, Any]) -> dict[str, Any]:
    if msg["type"] == "hello":
        return {**msg, "ea": {**msg["ea"], "tester": True}}
    return {**msg, "tester": True}


def test_tester_sessions_carry_the_flag(protocol_bin: Path) -> None:
    """A Strategy Tester EA marks tick, trade and heartbeat with "tester":true (and the hello with
    ea.tester): schema-valid, and the sidecar's decoder reads tester == True. Live messages omit
    the field, so they decode to tester == False and stay valid for sidecars without the field."""
    from sidecar import protocol

    flagged = [m for m in DESIGN_EXAMPLES if m["type"] in (*TESTER_FLAGGED, "hello")]
    tester = [_as_tester(m) for m in flagged]
    assert sorted(m["type"] for m in tester) == ["heartbeat", "hello", "tick", "trade"]
    _encode_and_check(protocol_bin, tester)
    live_false = [{**m, "tester": False} for m in flagged if m["type"] in TESTER_FLAGGED]
    _encode_and_check(protocol_bin, live_false)

    lines = [json.dumps(m) for m in tester + live_false]
    for msg, line in zip(
        tester + live_false, _run_mode(protocol_bin, "encode", lines), strict=True
    ):
        wire = json.loads(line)
        decoded = protocol.decode(line.encode("utf-8"))
        if msg["type"] == "hello":
            assert wire["ea"]["tester"] is True and decoded.ea.tester is True
        elif _tester_of(msg):
            assert wire["tester"] is True and decoded.tester is True, line
        else:
            assert "tester" not in wire and decoded.tester is False, line
            # and valid against the contract as it was before the field (additionalProperties false)
            schema = json.loads((SCHEMAS / f"{msg['type']}.schema.json").read_text("utf-8"))
            schema["$defs"][msg["type"].capitalize()]["properties"].pop("tester")
            import jsonschema

            jsonschema.Draft202012Validator(schema).validate(wire)


# hypothesis: random replies serialised by the sidecar parse identically in the MQL5 parser

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from mql5_views import expected_view  # noqa: E402

_TEXT = st.text(max_size=24)
_ID = st.text(min_size=1, max_size=24)
_POS = st.one_of(
    st.floats(min_value=1e-9, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.floats(min_value=5e-324, max_value=1e-9, allow_nan=False, allow_infinity=False),
    st.sampled_from([1.08628, 0.0021, 1e-05, 2650.25, 0.30000000000000004, 123456.789]),
)
_NONNEG = st.one_of(st.just(0.0), _POS)
_I63 = st.integers(min_value=0, max_value=2**63 - 1)


def _verdicts() -> st.SearchStrategy[Any]:
    from sidecar import protocol as p

    manage = st.builds(
        p.Manage,
        breakeven_r=_NONNEG,
        partial_r=_NONNEG,
        partial_fraction=st.floats(min_value=0, max_value=1),
        trail_atr=_NONNEG,
        trail_distance=_NONNEG,
        breakeven_buffer=_NONNEG,
    )
    open_order = st.builds(
        p.OpenOrder,
        side=st.sampled_from(["buy", "sell"]),
        volume=_POS,
        sl=_POS,
        tp=_POS,
        risk_pct=st.floats(min_value=1e-6, max_value=100),
        signal_id=_ID,
    )
    close = st.builds(p.CloseOrder, ticket=_I63, volume=_POS)
    return st.builds(
        p.Verdict,
        id=st.one_of(_ID, st.none()),
        action=st.sampled_from(["open", "hold", "close", "reduce"]),
        mode=st.sampled_from(["active", "reducing", "halted"]),
        manage=manage,
        leverage_cap=st.integers(min_value=1, max_value=2**63 - 1),
        valid_until=_I63,
        open=st.one_of(st.none(), open_order),
        close=st.lists(close, max_size=3) | st.lists(close, min_size=30, max_size=34),
        reasons=st.lists(_TEXT, max_size=20),
    )


def _replies() -> st.SearchStrategy[Any]:
    from sidecar import protocol as p

    ack = st.builds(p.Ack, id=st.one_of(_ID, st.none()), duplicate=st.booleans())
    err = st.builds(
        p.error_reply,
        code=st.sampled_from(list(p.ERROR_CODES)),
        message=_TEXT,
        request_id=st.one_of(_ID, st.none()),
    )
    return st.one_of(_verdicts(), _verdicts(), ack, err)


def _compare_view(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    if want["kind"] == "none":
        return [] if got["kind"] == "none" else [f"expected no verdict, got {got}"]
    got = {k: v for k, v in got.items() if k != "problem"}
    # exact: floats must parse to the very same double the sidecar serialised
    return [] if got == want else [f"{got} != {want}"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_replies(), min_size=1, max_size=20))
def test_sidecar_replies_parse_identically(protocol_bin: Path, replies: list[Any]) -> None:
    from sidecar import protocol

    lines = [protocol.encode(r).decode("utf-8") for r in replies]
    for line in lines:
        protocol.decode_reply(line)  # the sidecar's own view of its reply is valid
        _validator(json.loads(line)["type"]).validate(json.loads(line))
    out = _run_mode(protocol_bin, "parse", lines)
    errors = []
    for reply, line in zip(replies, out, strict=True):
        errors += _compare_view(json.loads(line), expected_view(reply))
    assert not errors, "\n".join(errors)


def test_malformed_replies_are_no_verdict(protocol_bin: Path) -> None:
    good = {
        "v": 1,
        "type": "verdict",
        "id": "t-1",
        "ok": True,
        "action": "hold",
        "mode": "active",
        "open": None,
        "close": [],
        "manage": {
            "breakeven_r": 1.0,
            "partial_r": 1.0,
            "partial_fraction": 0.5,
            "trail_atr": 2.0,
            "trail_distance": 0.0021,
        },
        "leverage_cap": 300,
        "valid_until": 1734478806,
        "reasons": [],
    }
    bad = []
    for key in ("v", "type", "id", "action", "mode", "manage", "leverage_cap", "valid_until"):
        bad.append({k: v for k, v in good.items() if k != key})
        bad.append({**good, key: 7 if key in ("type", "id") else "x"})
    lines = [json.dumps(good)] + [json.dumps(b) for b in bad] + ["", "{", "null", "[]", '"x"']
    out = [json.loads(x) for x in _run_mode(protocol_bin, "parse", lines)]
    assert out[0]["kind"] == "verdict"
    assert all(o["kind"] == "none" and o["problem"] for o in out[1:]), out


def _tick_messages() -> st.SearchStrategy[dict[str, Any]]:
    digits = st.sampled_from([2, 3, 5])
    money = st.floats(min_value=-1e6, max_value=1e6).map(lambda x: round(x, 2))
    posmoney = st.floats(min_value=0.01, max_value=1e7).map(lambda x: round(x, 2))
    vol = st.integers(min_value=1, max_value=10000).map(lambda n: round(n * 0.01, 2))
    name = st.text(min_size=1, max_size=12)
    t = st.integers(min_value=1, max_value=2**40)
    # the EA sends gmt = server - the broker's offset (whole quarter hours, at most 14 h)
    offset = st.integers(min_value=-56, max_value=56).map(lambda q: q * 900)

    def server_gmt(draw: Any) -> tuple[int, int]:
        server = draw(st.integers(min_value=14 * 3600 + 1, max_value=2**40))
        return server, server - draw(offset)

    def tester_flag(draw: Any, msg: dict[str, Any]) -> dict[str, Any]:
        """A Strategy Tester session sends "tester":true; a live one omits it or sends false."""
        flag = draw(st.sampled_from([None, False, True]))
        return msg if flag is None else {**msg, "tester": flag}

    @st.composite
    def tick(draw: Any) -> dict[str, Any]:
        d = draw(digits)
        price = (
            st.floats(min_value=0.5, max_value=5000)
            .map(lambda x: round(x, d))
            .filter(lambda x: x > 0)
        )
        positions = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "ticket": st.integers(min_value=1, max_value=2**63 - 1),
                        "symbol": name,
                        "side": st.sampled_from(["buy", "sell"]),
                        "volume": vol,
                        "price_open": price,
                        "sl": st.one_of(st.just(0.0), price),
                        "tp": st.one_of(st.just(0.0), price),
                        "profit": money,
                        "swap": money,
                        "time": t,
                        "comment": st.text(max_size=31),
                    }
                ),
                max_size=3,
            )
        )
        bid = draw(price)
        bars = []
        start = draw(t)
        for k in range(draw(st.integers(0, 3))):
            o, c = draw(price), draw(price)
            hi = round(max(o, c) + draw(st.integers(0, 9)) * 10.0**-d, d)
            lo = max(round(min(o, c) - draw(st.integers(0, 9)) * 10.0**-d, d), 10.0**-d)
            lo = min(lo, o, c)
            bars.append([start + 60 * k, o, hi, lo, c, draw(t), draw(st.integers(0, 500))])
        msg: dict[str, Any] = {
            "v": 1,
            "type": "tick",
            "id": draw(_ID),
            "digits": d,
            "login": draw(t),
            "symbol": draw(name),
            "timeframe": "M15",
            "time": dict(zip(("server", "gmt"), server_gmt(draw), strict=True), msc=draw(t)),
            "bid": bid,
            "ask": round(bid + draw(st.integers(0, 50)) * 10.0**-d, d),
            "account": {
                "balance": draw(posmoney),
                "equity": draw(posmoney),
                "margin": draw(posmoney),
                "free_margin": draw(money),
            },
            "positions": positions,
            "bars": bars,
        }
        token = draw(st.one_of(st.none(), _ID))
        if token is not None:
            msg["token"] = token
        return tester_flag(draw, msg)

    @st.composite
    def trade(draw: Any) -> dict[str, Any]:
        d = draw(digits)
        msg: dict[str, Any] = {
            "v": 1,
            "type": "trade",
            "id": draw(_ID),
            "digits": d,
            "login": draw(t),
            "deal": draw(t),
            "order": draw(t),
            "position": draw(t),
            "symbol": draw(name),
            "side": draw(st.sampled_from(["buy", "sell"])),
            "entry": draw(st.sampled_from(["in", "out", "inout", "out_by"])),
            "volume": draw(vol),
            "price": round(draw(st.floats(0.5, 5000)), d),
            "profit": draw(money),
            "commission": draw(money),
            "swap": draw(money),
            "time": draw(t),
            "comment": draw(st.text(max_size=31)),
        }
        return tester_flag(draw, msg)

    @st.composite
    def heartbeat(draw: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "v": 1,
            "type": "heartbeat",
            "id": draw(_ID),
            "login": draw(t),
            "symbol": draw(name),
            "time": dict(zip(("server", "gmt"), server_gmt(draw), strict=True)),
        }
        token = draw(st.one_of(st.none(), _ID))
        if token is not None:
            msg["token"] = token
        return tester_flag(draw, msg)

    @st.composite
    def calendar(draw: Any) -> dict[str, Any]:
        value = st.one_of(st.none(), st.integers(-(10**9), 10**9).map(lambda n: n / 1000.0))
        events = [
            {
                "id": draw(st.text(min_size=1, max_size=20)),
                "time_gmt": draw(t),
                "currency": draw(st.sampled_from(["USD", "EUR", "JPY"])),
                "importance": draw(st.sampled_from(["medium", "high"])),
                "name": draw(st.text(min_size=1, max_size=60)),
                "actual": draw(value),
                "forecast": draw(value),
                "previous": draw(value),
            }
            for _ in range(draw(st.integers(0, 4)))
        ]
        return {
            "v": 1,
            "type": "calendar",
            "id": draw(_ID),
            "login": draw(t),
            "source": "mt5",
            "events": events,
        }

    @st.composite
    def hello(draw: Any) -> dict[str, Any]:
        d = draw(digits)
        vmin = draw(st.sampled_from([0.01, 0.1, 1.0]))
        anyf = st.floats(min_value=1e-9, max_value=1e7, allow_nan=False, allow_infinity=False)
        price = st.floats(min_value=0.5, max_value=5000).map(lambda x: round(x, d))
        bars = []
        start = draw(t)
        for k in range(draw(st.integers(0, 4))):
            o, c = draw(price), draw(price)
            bars.append([start + 3600 * k, o, max(o, c), min(o, c), c, draw(t), 0])
        msg: dict[str, Any] = {
            "v": 1,
            "type": "hello",
            "id": draw(_ID),
            "ea": {
                "name": "SidecarEA",
                "version": "1.0.0",
                "magic": draw(t),
                "tester": draw(st.booleans()),
                "day_offset_hours": draw(st.sampled_from([0.0, 2.0, -7.0, 2.5, -0.25, 23.0])),
            },
            "account": {
                "login": draw(t),
                "server": draw(st.text(max_size=20)),
                "currency": draw(st.sampled_from(["USD", "EUR", "JPY"])),
                "leverage": draw(st.integers(1, 3000)),
                "balance": draw(posmoney),
                "equity": draw(posmoney),
                "margin": draw(posmoney),
                "free_margin": draw(money),
            },
            "time": dict(zip(("server", "gmt"), server_gmt(draw), strict=True)),
            "symbol": {
                "name": draw(name),
                "base": draw(st.sampled_from(["EUR", "USD", "XAU"])),
                "quote": draw(st.sampled_from(["USD", "JPY"])),
                "digits": d,
                "point": 10.0**-d,
                "tick_size": draw(anyf),
                "tick_value": draw(anyf),
                "contract_size": draw(st.sampled_from([1.0, 100.0, 100000.0])),
                "volume_min": vmin,
                "volume_step": vmin,
                "volume_max": draw(st.sampled_from([100.0, 500.0])),
                "stops_level": draw(st.integers(0, 100)),
                "freeze_level": draw(st.integers(0, 100)),
            },
            "timeframe": draw(st.sampled_from(["M15", "H1", "D1"])),
            "bars": bars,
        }
        return msg

    return st.one_of(tick(), trade(), calendar(), hello(), heartbeat())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_tick_messages(), min_size=1, max_size=10))
def test_random_messages_encode_to_valid_json(
    protocol_bin: Path, messages: list[dict[str, Any]]
) -> None:
    _encode_and_check(protocol_bin, messages)


# ------------------------------------------------------------------ MQL5-only files

TERMINAL_STUB = SHIM / "terminal"
MQL5_FILES = [ROOT / "mql5" / "Experts" / "SidecarEA.mq5", *sorted(INCLUDE.glob("Sidecar/*.mqh"))]
LOGIC_MODULES = [
    "Guard.mqh",
    "Sizing.mqh",
    "Manager.mqh",
    "Protocol.mqh",
    "Log.mqh",
    "DealSync.mqh",
    "Strings.mqh",
]


def translate_mql5(text: str) -> str:
    """Turn MQL5-only syntax into C++ for a g++ syntax check against the terminal stubs.

    Drops #property, #import blocks and `input group` lines; `input` becomes `const`; includes
    use forward slashes; `T name[];` dynamic arrays become MqlArray<T>; `ptr.member` on names
    declared as pointers becomes `ptr->member`.
    """
    out: list[str] = []
    in_import = False
    for line in text.split("\n"):
        s = line.strip()
        if s.startswith('#import "'):
            in_import = True
        if in_import or s.startswith("#property") or re.match(r"input\s+group\b", s):
            if s == "#import":
                in_import = False
            out.append("")
            continue
        m = re.match(r"#include\s+<([^>]+)>", s)
        if m:
            out.append('#include "{}"'.format(m.group(1).replace("\\", "/")))
            continue
        line = re.sub(r"^(\s*)s?input\s+", r"\1const ", line)
        line = re.sub(
            r"\b([A-Za-z_]\w*)\s+([A-Za-z_]\w*)\[\]\s*;",
            lambda m: f"MqlArray<{m.group(1)}> {m.group(2)};",
            line,
        )
        out.append(line)
    result = "\n".join(out)
    for name in set(re.findall(r"\b[A-Za-z_]\w*\s*\*\s*([A-Za-z_]\w*)\s*[=;]", result)):
        result = re.sub(rf"\b{name}\.(?=[A-Za-z_])", f"{name}->", result)
    return result


def test_ea_transport_executor_pass_a_gxx_syntax_check(build_dir: Path) -> None:
    """The MQL5-only files against declarations of the terminal API (names, arity, types)."""
    out = build_dir / "terminal"
    (out / "Sidecar").mkdir(parents=True, exist_ok=True)
    for f in INCLUDE.glob("Sidecar/*.mqh"):
        (out / "Sidecar" / f.name).write_text(translate_mql5(f.read_text(encoding="ascii")))
    ea = out / "SidecarEA.cpp"
    ea.write_text(translate_mql5(MQL5_FILES[0].read_text(encoding="ascii")))
    # -D__MQL5__: the #ifdef __MQL5__ branches of the logic modules are checked here too
    flags = [f for f in FLAGS if f != "-O1"] + [
        "-Wno-unused-parameter",
        "-fsyntax-only",
        "-D__MQL5__",
    ]
    cmd = [CXX, *flags, "-I", str(out), "-I", str(SHIM), "-I", str(TERMINAL_STUB)]
    cmd += ["-include", "mql5_terminal_stub.h", str(ea)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def test_translation_handles_the_mql5_constructs() -> None:
    src = (
        '#property version "1.00"\n#import "libzmq.dll"\nint zmq_close(long s);\n#import\n'
        '#include <Sidecar\\Log.mqh>\ninput group "x"\ninput int InpA = 1; // a\n'
        "uchar m_buf[];\nCTransport *g_tr = NULL;\nvoid f(){ g_tr.Open(); }\n"
    )
    out = translate_mql5(src)
    assert "#property" not in out and "zmq_close" not in out and "group" not in out
    assert '#include "Sidecar/Log.mqh"' in out and "const int InpA = 1;" in out
    assert "MqlArray<uchar> m_buf;" in out and "g_tr->Open()" in out


@pytest.mark.parametrize("path", MQL5_FILES, ids=lambda p: p.name)
def test_sources_are_ascii_with_balanced_delimiters(path: Path) -> None:
    text = path.read_bytes().decode("ascii")  # ASCII only: no encoding surprises in MetaEditor
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    code = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', code)
    for open_, close in ("()", "[]", "{}"):
        assert code.count(open_) == code.count(close), f"{path.name}: {open_}{close} unbalanced"


@pytest.mark.parametrize("name", LOGIC_MODULES)
def test_logic_modules_stay_in_the_common_subset(name: str) -> None:
    """MQL5-only syntax may appear in the logic modules only inside #ifdef __MQL5__ blocks."""
    text = (INCLUDE / "Sidecar" / name).read_text(encoding="ascii")
    outside = re.sub(r"#ifdef __MQL5__.*?#(?:else|endif)", "", text, flags=re.S)
    code = re.sub(r"//[^\n]*", "", outside)
    for pattern in (
        r"#property",
        r"#import",
        r"^\s*s?input\s",
        r"\w\s+\w+\[\]\s*[;,)]",
        r"GlobalVariable",
        r"WebRequest",
        r"CTrade",
        r"#include\s*<",
    ):
        assert not re.search(pattern, code, flags=re.M), f"{name}: {pattern}"


# ------------------------------------------------------------------ hello ea.limits (issue 16)


def test_hello_limits_vectors_encode_exactly(protocol_bin: Path) -> None:
    """The MQL5 hello builder puts the EA's hard limits on the wire as the golden vectors say
    (shared_schema/vectors/protocol/hello_limits.json; the sidecar side runs the same file in
    tests/service/test_limits_check.py), schema-valid and decoded by the sidecar."""
    from sidecar import protocol

    doc = json.loads((VECTORS / "protocol" / "hello_limits.json").read_text(encoding="utf-8"))
    cases = [(c["name"], deep_merge(doc["defaults"], c.get("given", {})), c) for c in doc["cases"]]
    hello = DESIGN_EXAMPLES[0]
    msgs = [
        {**hello, "id": f"h-{i}", "ea": {**hello["ea"], "limits": inp["ea_limits"]}}
        for i, (_, inp, _) in enumerate(cases)
    ]
    _encode_and_check(protocol_bin, msgs)  # the wire equals the input, key for key
    out = _run_mode(protocol_bin, "encode", [json.dumps(m) for m in msgs])
    errors = []
    for (name, inp, case), line in zip(cases, out, strict=True):
        wire = json.loads(line)["ea"]["limits"]
        want = case["expect"].get("wire", inp["ea_limits"])
        errors += [f"{name}{e}" for e in _same(wire, want)]
        decoded = protocol.decode(line.encode("utf-8")).ea.limits
        assert decoded is not None and decoded.max_positions == want["max_positions"]
    assert not errors, "\n".join(errors)
    # without limits (an older EA's hello) the builder writes none, and that still decodes
    line = _run_mode(protocol_bin, "encode", [json.dumps(hello)])[0]
    assert "limits" not in json.loads(line)["ea"]
    assert protocol.decode(line.encode("utf-8")).ea.limits is None
