"""CLI: `sidecar verdict` answers stdin requests; `sidecar schema` writes the contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sidecar.testing import messages

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verdict_reads_json_lines_and_prints_replies() -> None:
    rows = messages.eurusd_rows()[:200]
    lines = [
        json.dumps(messages.hello(bars=rows)),
        json.dumps(
            messages.tick(server=rows[-1][0] + 3600, bid=rows[-1][4], ask=rows[-1][4] + 0.0001)
        ),
    ]
    out = _run("verdict", stdin="\n".join(lines))
    assert out.returncode == 0, out.stderr
    replies = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["type"] for r in replies] == ["ack", "verdict"]
    assert replies[1]["mode"] == "active" and replies[1]["leverage_cap"] == 300


def test_verdict_exits_1_and_prints_the_error_on_bad_input() -> None:
    out = _run("verdict", stdin='{"v":1,"type":"tick","id":"x"}')
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"]["code"] == "BAD_REQUEST"


def test_schema_command_writes_every_message_schema(tmp_path: Path) -> None:
    out = _run("schema", "--out", str(tmp_path))
    assert out.returncode == 0
    names = sorted(p.name for p in tmp_path.glob("*.schema.json"))
    assert names == sorted(
        f"{t}.schema.json"
        for t in ("hello", "tick", "trade", "calendar", "heartbeat", "ack", "verdict", "error")
    )
    for name in names:
        assert (tmp_path / name).read_text() == (ROOT / "shared_schema" / name).read_text()
