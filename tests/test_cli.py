"""CLI: `sidecar verdict` answers stdin requests; `sidecar schema` prints or writes the contract;
`init`, `config show`, `--version`; `bias-check` and `pull` exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def _py(code: str, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )


def test_schema_without_out_prints_and_writes_nothing(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sidecar", "schema"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert sorted(printed) == sorted(
        p.name.split(".")[0] for p in (ROOT / "shared_schema").glob("*.schema.json")
    )
    for name, schema in printed.items():
        assert schema == json.loads((ROOT / "shared_schema" / f"{name}.schema.json").read_text())
    assert list(tmp_path.iterdir()) == []  # no shared_schema/ created where it ran


def test_version() -> None:
    out = _run("--version")
    assert out.returncode == 0
    assert out.stdout.startswith("sidecar 0.1.0 ") and "protocol v1" in out.stdout


# --- init and config show -------------------------------------------------------------------


def test_init_writes_a_commented_config_that_serves_the_defaults(tmp_path: Path) -> None:
    import tomllib

    from sidecar.config import Config, load_config

    target = tmp_path / "trader"
    out = _run("init", str(target))
    assert out.returncode == 0, out.stderr
    path = target / "sidecar.toml"
    assert str(path) in out.stdout and "serve --config" in out.stdout
    text = path.read_text(encoding="utf-8")
    # Every setting is there, commented out with its documentation: nothing is overridden.
    assert (
        "# risk_pct = 1.0" in text
        and "# eodhd_token = " in text
        and "sidecar serve --config" in text
    )
    assert all(v in ({}, {"params": {}}) for v in tomllib.loads(text).values())
    assert load_config(path, env={}) == Config()
    assert _run("check-config", str(path)).returncode == 0
    # Uncommenting a line changes that setting.
    path.write_text(text.replace("# risk_pct = 1.0", "risk_pct = 0.5"), encoding="utf-8")
    assert load_config(path, env={}).risk.risk_pct == 0.5


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "sidecar.toml"
    path.write_text("[risk]\nrisk_pct = 0.5\n")
    out = _run("init", str(tmp_path))
    assert out.returncode == 1
    assert "already exists" in out.stderr and str(path) in out.stderr
    assert path.read_text() == "[risk]\nrisk_pct = 0.5\n"


def test_init_default_dir_is_the_current_one(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sidecar", "init"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "sidecar.toml").is_file()


def test_generated_template_without_the_example_file() -> None:
    import tomllib

    from sidecar.config import Config
    from sidecar.config_text import template

    text = template(example=None)  # a non-editable install: no configs/ next to the package
    assert all(v == {} for v in tomllib.loads(text).values())
    assert "# kelly_fraction = 0.5" in text
    uncommented = "\n".join(
        ln[2:] if ln.startswith("# ") and " = " in ln else ln for ln in text.splitlines()
    )
    assert Config.model_validate(tomllib.loads(uncommented)) == Config()


def test_config_show_applies_the_environment_and_masks_secrets(tmp_path: Path) -> None:
    import os
    import tomllib

    config = tmp_path / "sidecar.toml"
    config.write_text('[risk]\nrisk_pct = 0.75\n[feeds]\neodhd_token = "file-secret-123"\n')
    env = {
        **os.environ,
        "SIDECAR_TOKEN": "env-secret-456",
        "SIDECAR_HTTP": "0.0.0.0:9000",
        "SIDECAR__LEVERAGE__NORMAL": "200",
    }
    env.pop("EODHD_API_TOKEN", None)
    toml_out = subprocess.run(
        [sys.executable, "-m", "sidecar", "config", "show", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert toml_out.returncode == 0, toml_out.stderr
    assert "secret-" not in toml_out.stdout
    shown = tomllib.loads(toml_out.stdout)
    assert shown["risk"]["risk_pct"] == 0.75  # the file
    assert shown["server"]["http"] == "0.0.0.0:9000" and shown["leverage"]["normal"] == 200  # env
    assert shown["server"]["token"] == "***" and shown["feeds"]["eodhd_token"] == "***"
    assert shown["risk"]["max_risk_pct"] == 2.0  # defaults too: the whole effective config
    assert "SIDECAR_HTTP" in toml_out.stdout and "SIDECAR__LEVERAGE__NORMAL" in toml_out.stdout

    json_out = subprocess.run(
        [sys.executable, "-m", "sidecar", "config", "show", "--config", str(config), "--format", "json"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert json_out.returncode == 0 and json.loads(json_out.stdout) == shown


def test_config_show_without_a_file_and_with_an_invalid_one(tmp_path: Path) -> None:
    import os
    import tomllib

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIDECAR", "EODHD"))}
    out = subprocess.run(
        [sys.executable, "-m", "sidecar", "config", "show"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0
    shown = tomllib.loads(out.stdout)
    assert (
        shown["server"]["token"] == "" and shown["server"]["http"] == "127.0.0.1:8765"
    )  # unset: empty
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nrisk_pct = 5\n")
    out = _run("config", "show", "--config", str(bad))
    assert out.returncode == 2 and "risk.risk_pct" in out.stderr


def test_mask_secrets_covers_tokens_webhooks_and_nested_values() -> None:
    from sidecar.config_text import mask_secrets

    masked = mask_secrets(
        {
            "server": {"token": "t", "http": "h"},
            "feeds": {"eodhd_token": "e", "api_token": ""},
            "alerts": {"webhook_url": "https://hooks/x", "webhooks": ["a"], "client_secret": "s"},
        }
    )
    assert masked == {
        "server": {"token": "***", "http": "h"},
        "feeds": {"eodhd_token": "***", "api_token": ""},
        "alerts": {"webhook_url": "***", "webhooks": "***", "client_secret": "***"},
    }


# --- bias-check exit codes: 0 same, 1 differ, 2 usage/input -------------------------------

_WITHOUT_BACKTESTING = (
    "import sys; sys.modules['backtesting'] = None\n"  # as after `pip install -e .`
)


def test_bias_check_works_without_backtesting_py() -> None:
    out = _py(
        _WITHOUT_BACKTESTING
        + "from sidecar.cli import main\nsys.exit(main(['bias-check', '--bars', '120']))"
    )
    assert out.returncode == 0, out.stderr
    assert "generated H1 bars" in out.stdout and "--csv" in out.stdout
    assert "bias-check sma_cross: 120 bars checked" in out.stdout and "OK" in out.stdout


def test_bias_check_exits_1_when_decisions_differ() -> None:
    # A strategy biased on purpose (an EMA over the whole loaded history) plugged into the registry.
    out = _py(
        _WITHOUT_BACKTESTING
        + """
from sidecar.engine import indicators, strategies
from sidecar.engine.strategies.base import Signal

class WholeHistoryEma:
    name = "whole_history_ema"
    min_bars = 30
    def __init__(self, params):
        pass
    def evaluate(self, bars, context=None):
        if len(bars) < self.min_bars:
            return None
        above = bars.close > indicators.ema(bars.close, 20)
        if above[-1] and not above[-2]:
            return Signal("buy", 0.001, 0.0025, ("ema",), self.name, int(bars.time[-1]))
        return None

real = strategies._registry
strategies._registry = lambda: {**real(), "whole_history_ema": WholeHistoryEma}
from sidecar.cli import main
sys.exit(main(["bias-check", "--strategy", "whole_history_ema", "--bars", "300"]))
"""
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "DIFFERENT" in out.stdout


def test_bias_check_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = _run("bias-check", "--csv", str(tmp_path / "missing.csv"))
    assert missing.returncode == 2 and "--csv" in missing.stderr and "missing.csv" in missing.stderr
    folder = _run("bias-check", "--csv", str(tmp_path))
    assert folder.returncode == 2 and "--csv" in folder.stderr
    short = tmp_path / "short.csv"
    short.write_text("time,open,high,low,close,volume\n" + "".join(
        f"{1704067200 + 3600 * i},1.1,1.2,1.0,1.1,5\n" for i in range(20)
    ))  # fmt: skip
    few = _run("bias-check", "--csv", str(short))
    assert few.returncode == 2 and "needs more than" in few.stderr
    assert _run("bias-check", "--bars", "0").returncode == 2
    assert _run("bias-check", "--strategy", "nope").returncode == 2
    assert _run("bias-check", "--bars", "x").returncode == 2  # argparse


# --- pull names where the token goes --------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        [
            "pull",
            "--symbols",
            "EURUSD.FOREX",
            "--interval",
            "d",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
        ],
        ["pull-calendar", "--from", "2024-01-01", "--to", "2024-01-02"],
    ],
)
def test_pull_without_a_token_names_the_key_and_the_variable(
    args: list[str], tmp_path: Path
) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIDECAR", "EODHD"))}
    out = subprocess.run(
        [sys.executable, "-m", "sidecar", *args, "--config", str(ROOT / "configs" / "sidecar.example.toml")],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2
    assert "feeds.eodhd_token" in out.stderr and "EODHD_API_TOKEN" in out.stderr
    assert list(tmp_path.iterdir()) == []  # no data/ folder, no database
