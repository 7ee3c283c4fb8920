"""Protocol docs that cannot go stale: docs/protocol.md is generated from the wire types, every
field is described, and every JSON example in it and in the README's protocol section decodes
with the real decoder (a renamed or misspelt field fails here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sidecar import docs_protocol
from sidecar import protocol as P
from sidecar.schema import all_schemas

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PROTOCOL_MD = ROOT / "docs" / "protocol.md"
_BLOCK = re.compile(r"```json\n(.*?)```", re.S)


def readme_protocol_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Protocol (version 1)")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def json_examples(markdown: str) -> list[dict[str, Any]]:
    """Every JSON object in the markdown's ```json blocks (a block may hold several)."""
    out = []
    decoder = json.JSONDecoder()
    for block in _BLOCK.findall(markdown):
        pos = 0
        while pos < len(block):
            if block[pos].isspace():
                pos += 1
                continue
            obj, pos = decoder.raw_decode(block, pos)
            out.append(obj)
    return out


def missing_keys(example: Any, encoded: Any, path: str = "") -> list[str]:
    """Keys of the example that the decoded-and-encoded message does not have: a field the
    types do not know (replies do not refuse unknown fields, so decoding alone would pass)."""
    if isinstance(example, dict) and isinstance(encoded, dict):
        out = []
        for k, v in example.items():
            if k not in encoded:
                out.append(f"{path}{k}")
            else:
                out += missing_keys(v, encoded[k], f"{path}{k}.")
        return out
    if isinstance(example, list) and isinstance(encoded, list):
        return [m for a, b in zip(example, encoded, strict=False) for m in missing_keys(a, b, path)]
    return []


def check(example: dict[str, Any]) -> None:
    """Decode one example as the sidecar (requests) or the EA's side (replies) would."""
    raw = json.dumps(example).encode()
    if example.get("type") in P.REQUEST_TYPES:
        message: Any = P.decode(raw)
    else:
        message = P.decode_reply(raw)
        assert P.type_of(message) == example["type"]
    encoded = json.loads(P.encode(message))
    assert missing_keys(example, encoded) == [], example


def test_protocol_md_is_generated_from_the_types() -> None:
    """Regenerate with `python -m sidecar.docs_protocol`."""
    assert PROTOCOL_MD.read_text(encoding="utf-8") == docs_protocol.render()
    assert docs_protocol.main(["--check"]) == 0


def test_check_flags_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "protocol.md"
    stale.write_text(docs_protocol.render().replace("Margin in use.", "Margin."), "utf-8")
    assert docs_protocol.main(["--check", "--out", str(stale)]) == 1
    assert docs_protocol.main(["--out", str(stale)]) == 0
    assert docs_protocol.main(["--check", "--out", str(stale)]) == 0
    assert b"\r\n" not in stale.read_bytes()  # the same bytes on Windows


def test_every_field_of_every_message_is_in_protocol_md_with_a_meaning() -> None:
    page = PROTOCOL_MD.read_text(encoding="utf-8")
    for name, schema in all_schemas().items():
        assert f"### `{name}`" in page
        for def_name, definition in schema["$defs"].items():
            assert definition.get("description"), f"{def_name}: add a docstring"
            for field, prop in definition["properties"].items():
                if field == "type":
                    continue  # the tag: "Message type."
                assert prop.get("description"), f"{name}: {def_name}.{field} has no doc(...)"
                assert re.search(rf"\| `([a-z_]+(\[\])?\.)*{field}` \|", page), field


def test_protocol_md_rows_name_type_unit_required_and_meaning() -> None:
    page = PROTOCOL_MD.read_text(encoding="utf-8")
    assert "| `account.balance` | number > 0 | account currency | yes | Balance. |" in page
    assert "| `positions[].sl` | number >= 0 | price, as quoted | no (0.0) |" in page
    assert "| `time.gmt` | integer > 0 | Unix seconds, GMT | yes |" in page
    assert "| `bars` | array of bars (at most 500) |  | no ([]) |" in page
    assert "| `open.volume` | number > 0 | lots | yes |" in page


def test_protocol_md_examples_decode_one_per_message() -> None:
    examples = json_examples(PROTOCOL_MD.read_text(encoding="utf-8"))
    assert sorted(e["type"] for e in examples) == sorted([*P.REQUEST_TYPES, *P.REPLY_TYPES])
    for example in examples:
        check(example)


def test_readme_protocol_section_has_a_complete_conversation_that_decodes() -> None:
    examples = json_examples(readme_protocol_section())
    assert {"hello", "tick", "trade", "verdict", "ack"} <= {e["type"] for e in examples}
    for example in examples:
        check(example)
    tick = next(e for e in examples if e["type"] == "tick")
    verdict = next(e for e in examples if e["type"] == "verdict")
    assert verdict["id"] == tick["id"]
    assert verdict["valid_until"] > tick["time"]["gmt"]


@pytest.mark.parametrize("kind", ["hello", "tick", "trade", "verdict"])
def test_a_renamed_field_in_an_example_fails(kind: str) -> None:
    example = next(e for e in json_examples(readme_protocol_section()) if e["type"] == kind)
    renamed = dict(example)
    key = next(k for k in example if k not in ("v", "type", "id"))
    renamed[key + "_renamed"] = renamed.pop(key)
    with pytest.raises((P.ProtocolError, msgspec.ValidationError, AssertionError)):
        check(renamed)


def test_mt5_md_lists_the_mql5_files_as_shipped() -> None:
    page = (ROOT / "docs" / "mt5.md").read_text(encoding="utf-8")
    layout = page[: page.index("## 0.")]
    shipped = sorted(p.relative_to(ROOT / "mql5") for p in (ROOT / "mql5").rglob("*.mq*"))
    for rel in shipped:
        assert f"MQL5/{rel.as_posix()}" in layout, rel
    assert not list(ROOT.rglob("libzmq*.dll"))  # not shipped, and the page says so
    assert "**Not in the repository:** `MQL5/Libraries/libzmq.dll`" in layout


def test_every_reason_code_is_explained_in_engine_md() -> None:
    """A trader reading a verdict's reasons finds every code in docs/engine.md's table."""
    from sidecar.engine import reasons as R

    codes = {v for k, v in vars(R).items() if k.isupper() and isinstance(v, str) and v == k}
    table = (ROOT / "docs" / "engine.md").read_text(encoding="utf-8")
    codes.discard(R.SIGNAL)  # a prefix: SIGNAL_<STRATEGY> has its row
    missing = sorted(c for c in codes if f"`{c}`" not in table)
    assert not missing, f"docs/engine.md's reason codes table lacks {missing}"
