"""docs/protocol.md, generated from the wire types: every field of every message.

    python -m sidecar.docs_protocol            # rewrite docs/protocol.md
    python -m sidecar.docs_protocol --check    # exit 1 when docs/protocol.md is out of date

The tables come from the JSON Schemas that `sidecar.schema` builds from the msgspec types in
`sidecar.protocol`: types and limits from the constraints, meanings and units from the `doc(...)`
next to each field. A test regenerates the page and fails when the checked-in file differs, and
decodes every example in it (and in the README's protocol section) with the real decoder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sidecar.protocol import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, REPLY_TYPES, REQUEST_TYPES
from sidecar.schema import all_schemas
from sidecar.testing.messages import EURUSD_SPEC

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"

# Limits that only guard against absurd numbers (1e400 parses as inf) are left out of the tables.
_SANITY = (1e15, -1e15, 2**63 - 1)

BAR = ["time", "open", "high", "low", "close", "tick_volume", "spread"]

# One example of each message; each must decode with the real decoder (tests/test_docs.py).
EXAMPLES: dict[str, dict[str, Any]] = {
    "hello": {
        "v": 1,
        "type": "hello",
        "id": "h-1",
        "ea": {"name": "SidecarEA", "version": "1.0.0", "magic": 20251218, "tester": False},
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
        "symbol": dict(EURUSD_SPEC),
        "timeframe": "H1",
        "bars": [[1734472800, 1.0912, 1.092, 1.0905, 1.0915, 1534, 7]],
    },
    "tick": {
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
                "volume": 0.1,
                "price_open": 1.09001,
                "sl": 1.08701,
                "tp": 1.09601,
                "profit": 12.5,
                "swap": 0.0,
                "time": 1734480000,
                "comment": "sc:9f2c0c1e5a7b3d41",
            }
        ],
        "bars": [[1734483600, 1.0911, 1.0916, 1.0908, 1.0912, 1210, 7]],
    },
    "trade": {
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
        "volume": 0.1,
        "price": 1.09001,
        "profit": 0.0,
        "commission": -0.35,
        "swap": 0.0,
        "time": 1734480000,
        "comment": "sc:9f2c0c1e5a7b3d41",
    },
    "calendar": {
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
    },
    "heartbeat": {
        "v": 1,
        "type": "heartbeat",
        "id": "b-9",
        "login": 12345678,
        "symbol": "EURUSD",
        "time": {"server": 1734486060, "gmt": 1734478860},
    },
    "ack": {"v": 1, "type": "ack", "id": "d-7", "ok": True, "duplicate": False},
    "verdict": {
        "v": 1,
        "type": "verdict",
        "id": "t-42",
        "ok": True,
        "action": "hold",
        "mode": "active",
        "manage": {
            "breakeven_r": 1.0,
            "partial_r": 1.25,
            "partial_fraction": 0.5,
            "trail_atr": 2.0,
            "trail_distance": 0.0021,
            "breakeven_buffer": 0.0001,
        },
        "leverage_cap": 300,
        "valid_until": 1734478806,
        "open": None,
        "close": [],
        "reasons": [
            "RISK_SYMBOL_OPEN symbol=EURUSD ticket=501",
            "SIGNAL_NONE votes=ema:+1,macd:+1,di:-1,rsi:0,bb:0 adx=18.2<20 rsi=48.6",
            "LEVERAGE_CAP regime=normal cap=300",
        ],
    },
    "error": {
        "v": 1,
        "type": "error",
        "id": "t-43",
        "ok": False,
        "error": {"code": "BAD_REQUEST", "message": "bid: expected `float` > 0.0, got -1.0"},
    },
}

_INTRO = f"""\
# Protocol (version {PROTOCOL_VERSION}): every field

<!-- Generated by `python -m sidecar.docs_protocol` from the msgspec types in
sidecar/protocol.py. Do not edit: change the types (or their `doc(...)`) and regenerate;
tests/test_docs.py fails when this file is out of date. -->

UTF-8 JSON objects, one per message, each with `"v": {PROTOCOL_VERSION}`, a `"type"` and an `"id"`
that the reply echoes. The EA sends them over ZeroMQ REQ/REP (one endpoint, dispatch on `type`) or
HTTP (`POST /v1/<type>`); a trailing NUL byte is accepted; at most {MAX_MESSAGE_BYTES:,} bytes. An
unknown field, a missing required field, a wrong type or a value out of range is refused with an
`error` reply naming the field. The same types generate `shared_schema/*.schema.json`; the
README's "Protocol (version 1)" section shows a conversation.

Units: money is in the account currency, volumes in lots, prices as quoted, times in Unix
seconds (server time or GMT, as each field says), R in multiples of the stop distance. A bar is
an array `[{", ".join(BAR)}]`: the bar's open time in server
time, prices as quoted, the tick volume, and the spread in points; bars go oldest first, their
times increasing, each with low <= open, close <= high.

"Required" is within the enclosing object; an optional field's default is in brackets.
"""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _limits(p: dict[str, Any]) -> list[str]:
    out = []
    for key, op in (
        ("exclusiveMinimum", ">"),
        ("minimum", ">="),
        ("exclusiveMaximum", "<"),
        ("maximum", "<="),
    ):
        if key in p and p[key] not in _SANITY:
            out.append(f"{op} {_num(p[key])}")
    return out


def _type(p: dict[str, Any], defs: dict[str, Any]) -> str:
    """A property's type in words, with its limits."""
    if "$ref" in p:
        return "object"
    if "const" in p:
        return f"`{json.dumps(p['const'])}`"
    if "enum" in p:
        return " | ".join(f"`{json.dumps(e)}`" for e in p["enum"])
    if "anyOf" in p:
        kinds = [_type(alt, defs) for alt in p["anyOf"]]
        return " or ".join(k if k != "null" else "`null`" for k in kinds)
    kind = p.get("type", "any")
    if kind == "array" and "prefixItems" in p:
        return "bar"
    if kind == "array":
        items = p.get("items", {})
        text = "array of bars" if "prefixItems" in items else f"array of {_type(items, defs)}"
        if "maxItems" in p:
            text += f" (at most {p['maxItems']:,})"
        return text
    if kind == "string":
        lo, hi = p.get("minLength"), p.get("maxLength")
        if lo and hi:
            return f"string ({lo}-{hi} chars)"
        if hi:
            return f"string (<= {hi} chars)"
        return "string"
    if kind in ("integer", "number"):
        limits = _limits(p)
        return kind + (" " + ", ".join(limits) if limits else "")
    return str(kind)


def _nested(p: dict[str, Any]) -> tuple[str, str] | None:
    """(definition name, path suffix) of an object-valued property: `.`, or `[].` for arrays."""
    if "$ref" in p:
        return p["$ref"].rsplit("/", 1)[1], "."
    for alt in p.get("anyOf", ()):
        if "$ref" in alt:
            return alt["$ref"].rsplit("/", 1)[1], "."
    items = p.get("items")
    if isinstance(items, dict) and "$ref" in items:
        return items["$ref"].rsplit("/", 1)[1], "[]."
    return None


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(definition: dict[str, Any], defs: dict[str, Any], prefix: str) -> list[str]:
    required = set(definition.get("required", ()))
    rows = []
    for name, p in definition["properties"].items():
        top_type = name == "type" and not prefix
        meaning = "Message type." if top_type else p.get("description", "")
        if name in required:
            req = "yes"
        else:
            req = f"no ({_cell(json.dumps(p['default']))})" if "default" in p else "no"
        unit = p.get("x-unit", "")
        rows.append(
            f"| `{prefix}{name}` | {_cell(_type(p, defs))} | {_cell(unit)} | {req} | "
            f"{_cell(meaning)} |"
        )
        nested = _nested(p)
        if nested is not None:
            ref, suffix = nested
            rows += _rows(defs[ref], defs, f"{prefix}{name}{suffix}")
    return rows


def _order(properties: dict[str, Any]) -> dict[str, Any]:
    """`v`, `type`, `id` first, then the fields in the order the type declares them."""
    head = [k for k in ("v", "type", "id") if k in properties]
    return {k: properties[k] for k in [*head, *(k for k in properties if k not in head)]}


def example_json(value: Any, indent: int = 0, width: int = 100, lead: int = 0) -> str:
    """JSON on as few lines as fit in `width`: an object or array that does not fit on one line
    (after `lead` characters already on it) gets one member per line, indented by 2."""
    flat = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if lead + len(flat) <= width or not isinstance(value, dict | list) or not value:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        members = []
        for k, v in value.items():
            head = f"{pad}{json.dumps(k)}: "
            members.append(head + example_json(v, indent + 2, width, len(head)))
        return "{\n" + ",\n".join(members) + "\n" + " " * indent + "}"
    members = [pad + example_json(v, indent + 2, width, len(pad)) for v in value]
    return "[\n" + ",\n".join(members) + "\n" + " " * indent + "]"


def render() -> str:
    schemas = all_schemas()
    lines = [_INTRO]
    for title, names in (("Requests (EA to sidecar)", REQUEST_TYPES), ("Replies", REPLY_TYPES)):
        lines.append(f"## {title}\n")
        for name, cls in names.items():
            defs = schemas[name]["$defs"]
            root = dict(defs[cls.__name__])
            root["properties"] = _order(root["properties"])
            lines.append(f"### `{name}`\n")
            lines.append(f"{root.get('description', '')}\n")
            lines.append("| field | type | unit | required | meaning |")
            lines.append("|---|---|---|---|---|")
            lines.extend(_rows(root, defs, ""))
            lines.append("\nExample:\n")
            lines.append(f"```json\n{example_json(EXAMPLES[name])}\n```\n")
    return "\n".join(lines).rstrip("\n") + "\n"


def write(out: Path = DEFAULT_OUT) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(), encoding="utf-8", newline="\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write docs/protocol.md from the wire types.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the file to write")
    ap.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    args = ap.parse_args(argv)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != render():
            print(f"{args.out} is out of date: python -m sidecar.docs_protocol", file=sys.stderr)
            return 1
        return 0
    print(f"wrote {write(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
