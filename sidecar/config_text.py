"""Configuration as text: the commented file `sidecar init` writes, and the effective
configuration `sidecar config show` prints (TOML or JSON, secrets masked).

The file `sidecar init` writes is `configs/sidecar.example.toml` (every key, its default and what
it does) with every setting commented out, so the file changes nothing until a line is
uncommented, and defaults that improve in a later version still reach the user. When the example
is not next to the package (a non-editable install), the same layout is generated from the
models' defaults.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sidecar.config import Config, is_secret_key

FILE_NAME = "sidecar.toml"
EXAMPLE = Path(__file__).resolve().parents[1] / "configs" / "sidecar.example.toml"
MASK = "***"

_HEADER = """\
# MT5 Sidecar configuration, written by `sidecar init`.
#
# Every setting is optional. Each one is shown below, commented out, with its default and what it
# does: uncomment a line and change its value to override it. Then:
#   sidecar check-config {name}          every problem in this file at once
#   sidecar config show --config {name}  what the sidecar will use (environment included)
#   sidecar serve --config {name}        run with it
# Environment variables override this file: SIDECAR_TOKEN, SIDECAR_DB, SIDECAR_ZMQ,
# SIDECAR_HTTP, EODHD_API_TOKEN, EODHD_BASE_URL and the generic
# SIDECAR__<SECTION>__<KEY>=<value>, e.g. SIDECAR__RISK__RISK_PCT=0.5. Keep secrets (the token,
# the EODHD key) in the environment rather than in this file.
"""

_HEADER_LINE = re.compile(r"^\s*\[[^\[\]=]+\]\s*(#.*)?$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def template(name: str = FILE_NAME, example: Path | None = EXAMPLE) -> str:
    """The text of a new configuration file: the example's documentation, settings commented."""
    header = _HEADER.format(name=name)
    if example is not None and example.is_file():
        body = example.read_text(encoding="utf-8")
        # The example's own opening comment (how to check *it*) gives way to the header above.
        lines = body.splitlines()
        while lines and lines[0].startswith("#"):
            lines.pop(0)
        return header + comment_out_settings("\n".join(lines).rstrip("\n") + "\n")
    return header + comment_out_settings(generated_example())


def generated_example() -> str:
    """Every section and key with its default, from the models (no documentation)."""
    defaults = Config().model_dump()
    return "\n# Every key with its default (the commented example ships with the source).\n" + (
        render_toml(defaults)
    )


def comment_out_settings(text: str) -> str:
    """Prefix every `key = value` line (and a multi-line value's continuation) with `# `;
    section headers, comments and blank lines stay."""
    out = []
    depth = 0  # open brackets/braces of a multi-line value
    for line in text.splitlines():
        stripped = line.strip()
        if depth == 0 and (not stripped or stripped.startswith("#") or _HEADER_LINE.match(line)):
            out.append(line)
            continue
        depth = max(0, depth + _bracket_balance(line))
        out.append(f"# {line}")
    return "\n".join(out) + "\n"


def _bracket_balance(line: str) -> int:
    balance, quote, escaped = 0, "", False
    for ch in line:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch in "[{":
            balance += 1
        elif ch in "]}":
            balance -= 1
    return balance


def write_config(directory: str | Path) -> Path:
    """Write DIR/sidecar.toml; FileExistsError when it is already there (never overwritten)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE_NAME
    # "x": created only if absent, atomically (no check-then-write race).
    with path.open("x", encoding="utf-8", newline="\n") as fh:
        fh.write(template(FILE_NAME))
    return path


def mask_secrets(value: Any, key: str = "") -> Any:
    """Replace every set secret (tokens, keys, passwords, webhooks) by "***"; an unset one ("")
    stays empty, so the output still says whether it is configured."""
    if _is_secret_name(key):
        return MASK if value not in ("", None, [], {}) else value
    if isinstance(value, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secrets(v) for v in value]
    return value


def _is_secret_name(key: str) -> bool:
    low = key.lower()
    return bool(low) and (
        is_secret_key(low) or any(w in low for w in ("webhook", "secret", "password"))
    )


def render_toml(values: Mapping[str, Any]) -> str:
    """A TOML document of `{section: {key: value}}` (nested tables inline)."""
    out = []
    for section, content in values.items():
        if not isinstance(content, Mapping):
            out.append(f"{_key(section)} = {_value(content)}")
            continue
        out.append(f"\n[{_key(section)}]")
        out.extend(f"{_key(k)} = {_value(v)}" for k, v in content.items())
    return "\n".join(out).lstrip("\n") + "\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}: {value!r}")
