"""Wire contract v1: DESIGN.md's examples decode, bad input gets errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from sidecar import protocol as P
from sidecar.schema import all_schemas, render
from sidecar.testing import messages

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "shared_schema"

DESIGN_TICK = {
    "v": 1,
    "type": "tick",
    "id": "t-42",
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
            "volume": 0.10,
            "price_open": 1.09001,
            "sl": 1.08701,
            "tp": 1.09601,
            "profit": 12.5,
            "swap": 0.0,
            "time": 1734480000,
            "comment": "sc:9f2c",
        }
    ],
    "bars": [],
}
DESIGN_TRADE = {
    "v": 1,
    "type": "trade",
    "id": "d-7",
    "login": 12345678,
    "deal": 90017,
    "order": 80011,
    "position": 501,
    "symbol": "EURUSD",
    "side": "buy",
    "entry": "in",
    "volume": 0.10,
    "price": 1.09001,
    "profit": 0.0,
    "commission": -0.35,
    "swap": 0.0,
    "time": 1734480000,
    "comment": "sc:9f2c",
}
DESIGN_CALENDAR = {
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
            "name": "Nonfarm Payrolls",
            "actual": None,
            "forecast": 200.0,
            "previous": 227.0,
        }
    ],
}
DESIGN_HEARTBEAT = {
    "v": 1,
    "type": "heartbeat",
    "id": "b-9",
    "login": 12345678,
    "symbol": "EURUSD",
    "time": {"server": 1734486060, "gmt": 1734478860},
}
EXAMPLES = [
    messages.hello(bars=[[1734472800, 1.0912, 1.0920, 1.0905, 1.0915, 1534, 7]]),
    DESIGN_TICK,
    DESIGN_TRADE,
    DESIGN_CALENDAR,
    DESIGN_HEARTBEAT,
]


def _err(raw: bytes | str) -> P.ProtocolError:
    with pytest.raises(P.ProtocolError) as info:
        P.decode(raw)
    return info.value


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e["type"])
def test_design_examples_decode_and_validate_against_their_schema(example: dict) -> None:
    msg = P.decode(json.dumps(example))
    assert P.type_of(msg) == example["type"]
    schema = json.loads((SCHEMA_DIR / f"{example['type']}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(example)


def test_checked_in_schemas_are_generated_from_the_models() -> None:
    """One source of truth: regenerate with `sidecar schema --out shared_schema/`."""
    for name, schema in all_schemas().items():
        path = SCHEMA_DIR / f"{name}.schema.json"
        assert path.read_text() == render(schema), f"{path.name} is stale: run sidecar schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_trailing_nul_from_mql5_is_accepted() -> None:
    msg = P.decode(json.dumps(DESIGN_TICK).encode() + b"\x00")
    assert isinstance(msg, P.Tick) and msg.bid == 1.09121


@pytest.mark.parametrize(
    ("mutate", "code", "needle"),
    [
        (lambda m: m.update(bid=-1.0), P.BAD_REQUEST, "bid: expected `float` > 0.0, got -1.0"),
        (lambda m: m.update(bid=0), P.BAD_REQUEST, "bid"),
        (lambda m: m.update(bid=1.2), P.BAD_REQUEST, "bid: must be <= ask"),
        (lambda m: m.update(v=2), P.UNSUPPORTED_VERSION, "v: expected 1, got 2"),
        (lambda m: m.update(type="tock"), P.UNKNOWN_TYPE, "type: expected one of"),
        (lambda m: m.pop("login"), P.BAD_REQUEST, "login: required field is missing"),
        (lambda m: m.update(extra=1), P.BAD_REQUEST, "extra: unknown field"),
        # Names that are not identifiers are quoted, so the message still shows which one.
        (lambda m: m.update({"`": 1}), P.BAD_REQUEST, '"`": unknown field'),
        (lambda m: m.update({"": 1}), P.BAD_REQUEST, '"": unknown field'),
        (lambda m: m["account"].update({"a b": 1}), P.BAD_REQUEST, 'account."a b": unknown field'),
        (
            lambda m: m["account"].update(equity="10"),
            P.BAD_REQUEST,
            "account.equity: expected `float`",
        ),
        (lambda m: m["positions"][0].update(ticket=1.5), P.BAD_REQUEST, "positions[0].ticket"),
        (lambda m: m["positions"][0].update(side="long"), P.BAD_REQUEST, "positions[0].side"),
        (lambda m: m.update(bars=[[1, 1.0, 2.0, 1.0, 1.5, 0, 0, 9]]), P.BAD_REQUEST, "bars[0]"),
        (
            lambda m: m.update(bars=[[1, 1.0, 0.5, 1.0, 1.0, 0, 0]]),
            P.BAD_REQUEST,
            "bars[0]: expected low <= open",
        ),
        (
            lambda m: m.update(bars=[[5, 1, 1, 1, 1, 0, 0], [5, 1, 1, 1, 1, 0, 0]]),
            P.BAD_REQUEST,
            "bars[1]: times must increase",
        ),
        (lambda m: m.update(bid=1e300), P.BAD_REQUEST, "bid"),
        (
            lambda m: m["time"].update(gmt=m["time"]["server"] + 15 * 3600),
            P.BAD_REQUEST,
            "time.gmt: must be within 14 h of time.server",
        ),
    ],
)
def test_bad_fields_are_named(mutate, code: str, needle: str) -> None:
    msg = json.loads(json.dumps(DESIGN_TICK))
    mutate(msg)
    err = _err(json.dumps(msg))
    assert err.code == code
    assert needle in err.message
    if code != P.UNKNOWN_TYPE:
        assert err.request_id == "t-42"  # the reply can still be matched by the EA


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", P.BAD_JSON),
        (b"{", P.BAD_JSON),
        (b"not json", P.BAD_JSON),
        (b"[1, 2]", P.BAD_JSON),
        (b'{"v":1,"type":"tick","id":"x","bid":NaN}', P.BAD_JSON),
        (b'{"v":1,"type":"tick","id":"x","bid":Infinity}', P.BAD_JSON),
        (b'{"v":1,"type":"tick","id":"x","bid":1e400}', P.BAD_JSON),
        (b"\xff\xfe{}", P.BAD_JSON),
        (b"{}", P.UNSUPPORTED_VERSION),
        (b'{"v":true,"type":"tick"}', P.UNSUPPORTED_VERSION),
        (b'{"v":1}', P.UNKNOWN_TYPE),
        (b'{"v":1,"type":null,"id":"x"}', P.UNKNOWN_TYPE),
    ],
)
def test_malformed_messages(raw: bytes, code: str) -> None:
    assert _err(raw).code == code


def test_oversized_message_is_refused_before_parsing() -> None:
    big = json.dumps({**DESIGN_TICK, "id": "x" * 10}).encode() + b" " * P.MAX_MESSAGE_BYTES
    err = _err(big)
    assert err.code == P.TOO_LARGE and "65536" in err.message


def test_replies_validate_against_their_schemas() -> None:
    verdict = P.Verdict(
        id="t-1",
        action="open",
        mode="active",
        manage=P.Manage(
            breakeven_r=1, partial_r=1.25, partial_fraction=0.5, trail_atr=2, trail_distance=0.002
        ),
        leverage_cap=300,
        valid_until=5,
        open=P.OpenOrder(side="buy", volume=0.2, sl=1.08, tp=1.1, risk_pct=1.0, signal_id="ab"),
        close=[P.CloseOrder(ticket=1, volume=0.1)],
        reasons=["SIGNAL_SMA_CROSS side=buy"],
    )
    for reply in (verdict, P.Ack(id="d-1"), P.error_reply(P.BAD_REQUEST, "bid: bad", "t-1")):
        data = json.loads(P.encode(reply))
        schema = json.loads((SCHEMA_DIR / f"{data['type']}.schema.json").read_text())
        jsonschema.Draft202012Validator(schema).validate(data)
        assert data["v"] == 1
        assert P.decode_reply(P.encode(reply)) == reply


@pytest.mark.parametrize(
    "raw",
    [
        b'{"v":1,"type":"heartbeat","id":"\xff"}',  # invalid UTF-8 inside a string
        b'{"v":1,"type":"heartbeat","\xc0\xaf":1}',
        b'{"a":' * 1000 + b"1" + b"}" * 1000,  # 1,000 nested objects
        b'{"a":' * 1000,
        b"[" * 5000 + b"]" * 5000,
        b'{"v":1,"type":"heartbeat","id":"x","a":' + b"[" * 40 + b"]" * 40 + b"}",
        b'{"v":1,"type":"heartbeat","id":"\\ud800"}',  # a lone surrogate escape
    ],
)
def test_malformed_json_is_bad_json_never_an_exception(raw: bytes) -> None:
    with pytest.raises(P.ProtocolError) as err:
        P.decode(raw)
    assert err.value.code == P.BAD_JSON
    assert err.value.message.startswith("message: ")


def test_nesting_is_limited_whatever_the_stack() -> None:
    import threading

    raw = b'{"v":1,"type":"heartbeat","id":"d","x":' + b"[" * 900 + b"]" * 900 + b"}"
    codes: list[str] = []

    def run() -> None:
        try:
            P.decode(raw)
        except P.ProtocolError as exc:
            codes.append(exc.code)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert codes == [P.BAD_JSON]


def test_read_token_reads_only_the_top_level_token() -> None:
    assert P.read_token(b'{"token":"t","id":"i","x":[{"token":"no"}]}\x00') == ("t", "i")
    assert P.read_token(b'{"token":"a\\u0062","login":"not validated"}') == ("ab", None)
    assert P.read_token(b'{"token":5,"id":7}') == (None, None)
    assert P.read_token(b'{"token":"t","id":"\xff"}') == ("t", None)  # a bad byte elsewhere
    assert P.read_token(b"[1]") == (None, None)
    assert P.read_token(b"garbage") == (None, None)
    assert P.read_token(b'{"a":' * 5000) == (None, None)
    with pytest.raises(P.ProtocolError) as err:
        P.read_token(b" " * 70000)
    assert err.value.code == P.TOO_LARGE


HELLO_LIMITS = {
    "max_risk_pct": 2.0,
    "max_leverage": 500.0,
    "daily_loss_pct": 3.0,
    "floating_loss_pct": 10.0,
    "max_drawdown_pct": 15.0,
    "max_positions": 3,
    "equity_floor_pct": 0.0,
}


def test_hello_limits_are_optional_and_backward_compatible() -> None:
    """`ea.limits` (issue 16): decoded when sent, None when absent (an older EA's hello is
    accepted), and an EA's hello with limits validates against the checked-in schema."""
    schema = json.loads((SCHEMA_DIR / "hello.schema.json").read_text())
    old = messages.hello()
    old.pop("token")
    assert P.decode(json.dumps(old)).ea.limits is None
    new = {**old, "ea": {**old["ea"], "limits": HELLO_LIMITS}}
    jsonschema.Draft202012Validator(schema).validate(new)
    limits = P.decode(json.dumps(new)).ea.limits
    assert limits is not None and limits.max_positions == 3 and limits.max_leverage == 500.0
    # the old contract (no `limits` property) still describes an older EA's hello
    schema["$defs"]["EAInfo"]["properties"].pop("limits")
    jsonschema.Draft202012Validator(schema).validate(old)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("max_risk_pct", 0, "ea.limits.max_risk_pct"),
        ("floating_loss_pct", 100.5, "ea.limits.floating_loss_pct"),
        ("max_positions", -1, "ea.limits.max_positions"),
        ("equity_floor_pct", -1, "ea.limits.equity_floor_pct"),
        ("spread", 1, "ea.limits"),  # unknown fields are errors, as everywhere
    ],
)
def test_bad_hello_limits_are_named(field: str, value: object, needle: str) -> None:
    msg = messages.hello()
    msg["ea"]["limits"] = {**HELLO_LIMITS, field: value}
    err = _err(json.dumps(msg))
    assert err.code == P.BAD_REQUEST and needle in err.message, err.message
