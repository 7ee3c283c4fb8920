"""JSON Schemas (draft 2020-12) generated from the wire types in `sidecar.protocol`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from sidecar.protocol import PROTOCOL_VERSION, REPLY_TYPES, REQUEST_TYPES

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_for(name: str, cls: type) -> dict[str, Any]:
    schema = msgspec.json.schema(cls)
    # msgspec types `v` as a plain integer; the contract pins the version.
    root = schema["$defs"][cls.__name__]
    for definition in schema["$defs"].values():
        if "description" in definition:  # a struct's docstring, on one line
            definition["description"] = " ".join(definition["description"].split())
    described = {k: v for k, v in root["properties"]["v"].items() if k == "description"}
    root["properties"]["v"] = {"const": PROTOCOL_VERSION, **described}
    if "v" not in root.get("required", []):
        root.setdefault("required", []).append("v")
    return {
        "$schema": DIALECT,
        "$id": f"https://mt5-sidecar.local/schema/v{PROTOCOL_VERSION}/{name}.schema.json",
        "title": f"MT5 Sidecar {name} message (protocol v{PROTOCOL_VERSION})",
        **schema,
    }


def all_schemas() -> dict[str, dict[str, Any]]:
    return {name: schema_for(name, cls) for name, cls in {**REQUEST_TYPES, **REPLY_TYPES}.items()}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in all_schemas().items():
        path = out / f"{name}.schema.json"
        path.write_text(render(schema), encoding="utf-8", newline="\n")
        written.append(path)
    return written
