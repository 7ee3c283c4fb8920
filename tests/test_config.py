"""Configuration: defaults from DESIGN.md, TOML, environment overrides, every error at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.cli import main
from sidecar.config import Config, ConfigError, load_config
from sidecar.engine.strategies import strategy_problems

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_match_the_risk_table() -> None:
    c = Config()
    assert (c.risk.risk_pct, c.risk.max_risk_pct, c.risk.daily_loss_pct) == (1.0, 2.0, 3.0)
    assert c.risk.floating_loss_pct == 10.0
    assert (
        c.risk.drawdown_defensive_pct,
        c.risk.drawdown_reducing_pct,
        c.risk.drawdown_halted_pct,
    ) == (5, 12, 15)
    assert (c.risk.max_positions, c.risk.duplicate_window_seconds) == (3, 300)
    assert (c.risk.loss_streak, c.risk.cooldown_minutes, c.risk.min_reward_risk) == (3, 60, 2.0)
    assert (c.leverage.defensive, c.leverage.normal, c.leverage.profit) == (100, 300, 500)
    assert c.server.zmq == "tcp://127.0.0.1:5555" and c.server.http == "127.0.0.1:8765"


def test_example_config_is_valid_and_documents_every_key() -> None:
    example = ROOT / "configs" / "sidecar.example.toml"
    config = load_config(example, env={}, extra_checks=strategy_problems)
    text = example.read_text()
    for section, model in Config.model_fields.items():
        assert f"[{section}]" in text, section
        for key in model.annotation.model_fields:  # type: ignore[union-attr]
            documented = f"{key} =" in text or f"[{section}.{key}]" in text
            assert documented, f"{section}.{key} undocumented"
    assert config == Config(**{k: getattr(config, k) for k in Config.model_fields})


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[risk]\nrisk_pct = 5\nmax_positions = 9\nspeed = 1\n"
        '[server]\nhttp = "0.0.0.0:8765"\n'
        '[strategy]\nname = "sma_cross"\nparams = { fast = 50, slow = 20 }\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad, env={}, extra_checks=strategy_problems)
    text = str(err.value)
    assert "risk.risk_pct" in text and "2" in text
    assert "risk.max_positions" in text
    assert "risk.speed" in text
    assert "strategy.params.fast" in text
    assert len(err.value.problems) >= 4


def test_non_loopback_bind_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="needs a token"):
        load_config(None, env={"SIDECAR_HTTP": "0.0.0.0:8765"})
    cfg = load_config(None, env={"SIDECAR_HTTP": "0.0.0.0:8765", "SIDECAR_TOKEN": "s3cret"})
    assert cfg.server.token == "s3cret"
    assert load_config(None, env={"SIDECAR_ZMQ": "tcp://[::1]:5555"}).server.zmq.endswith("5555")


@pytest.mark.parametrize(
    ("var", "value", "bound"),
    [
        ("SIDECAR_HTTP", ":8765", "0.0.0.0"),  # an empty host is every interface
        ("SIDECAR_HTTP", "*:8765", "0.0.0.0"),
        ("SIDECAR_HTTP", "[::]:8765", "::"),
        ("SIDECAR_ZMQ", "tcp://*:5555", "0.0.0.0"),
        ("SIDECAR_ZMQ", "tcp://[::]:5555", "::"),
    ],
)
def test_loopback_is_decided_from_the_address_bound(var: str, value: str, bound: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, env={var: value})
    component = "server.http" if var == "SIDECAR_HTTP" else "server.zmq"
    assert err.value.problems == [
        f"{component}: {value!r} binds the non-loopback address {bound} (every interface), "
        "which needs a token (server.token or SIDECAR_TOKEN)"
    ]
    assert load_config(None, env={var: value, "SIDECAR_TOKEN": "t"}).server.token == "t"


def test_loopback_names_and_local_transports_need_no_token() -> None:
    from sidecar.config import bound_host

    assert bound_host("server.http", "localhost:8765") == "127.0.0.1"
    assert bound_host("server.zmq", "tcp://localhost:5555") == "127.0.0.1"
    assert bound_host("server.zmq", "ipc:///tmp/s.ipc") is None
    load_config(None, env={"SIDECAR_HTTP": "localhost:8765", "SIDECAR_ZMQ": "tcp://[::1]:5555"})
    load_config(None, env={"SIDECAR_ZMQ": "ipc:///tmp/sidecar.ipc"})  # libzmq serves ipc://


def test_libzmq_is_the_only_zeromq_engine(tmp_path: Path) -> None:
    # A file written for an earlier version still loads with the key that names the engine.
    old = tmp_path / "old.toml"
    old.write_text('[server]\nzmq_engine = "libzmq"\n')
    assert load_config(old, env={}).server.zmq_engine == "libzmq"
    assert Config().server.zmq_engine == "libzmq"
    # The removed engine is refused, naming the field and saying what to do.
    old.write_text('[server]\nzmq_engine = "builtin"\n')
    with pytest.raises(ConfigError) as err:
        load_config(old, env={})
    [problem] = err.value.problems
    assert problem.startswith("server.zmq_engine: the builtin ZeroMQ engine was removed")
    assert "libzmq is the only engine" in problem and "delete the zmq_engine line" in problem
    with pytest.raises(ConfigError, match="builtin ZeroMQ engine was removed"):
        load_config(None, env={"SIDECAR_ZMQ_ENGINE": "builtin"})
    with pytest.raises(ConfigError, match=r"server\.zmq_engine: input should be 'libzmq'"):
        load_config(None, env={"SIDECAR_ZMQ_ENGINE": "pyzmq"})


def test_an_address_that_does_not_resolve_needs_a_token() -> None:
    with pytest.raises(ConfigError, match="cannot tell which address") as err:
        load_config(None, env={"SIDECAR_HTTP": "no-such-host.invalid:8765"})
    assert err.value.problems[0].startswith("server.http: ")
    with pytest.raises(ConfigError, match=r"server\.http: expected HOST:PORT"):
        load_config(None, env={"SIDECAR_HTTP": "8765"})


def test_environment_overrides() -> None:
    cfg = load_config(
        None,
        env={
            "SIDECAR__RISK__RISK_PCT": "0.5",
            "SIDECAR__STRATEGY__NAME": "sma_cross",
            "SIDECAR_DB": "x.sqlite",
        },
    )
    assert cfg.risk.risk_pct == 0.5 and cfg.server.db == "x.sqlite"


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROOT / "configs" / "sidecar.example.toml")]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\ndaily_loss_pct = -1\ndrawdown_halted_pct = 4\n")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "risk.daily_loss_pct" in err and "drawdown" in err
    assert main(["check-config", str(tmp_path / "missing.toml")]) == 2
    broken = tmp_path / "broken.toml"
    broken.write_text("[risk\n")
    assert main(["check-config", str(broken)]) == 2


def test_secrets_are_never_echoed_in_errors() -> None:
    # A numeric-looking token stays a string; a wrong type for a secret is reported without it.
    cfg = load_config(None, env={"SIDECAR__SERVER__TOKEN": "20240101"})
    assert cfg.server.token == "20240101"
    with pytest.raises(ConfigError) as err:
        load_config(None, env={}, overrides={"server": {"token": 20240101}})
    assert "server.token" in str(err.value) and "20240101" not in str(err.value)


@pytest.mark.parametrize(("hours", "ok"), [(-7, True), (5.5, True), (5.75, True), (0.1234, False)])
def test_broker_day_offset_is_whole_minutes_like_the_eas(hours: float, ok: bool) -> None:
    # The EA's Guard must compute the same broker day from InpDayOffsetHours.
    if ok:
        cfg = load_config(None, env={}, overrides={"broker": {"day_offset_hours": hours}})
        assert cfg.broker.day_offset_hours == hours
        return
    with pytest.raises(ConfigError) as err:
        load_config(None, env={}, overrides={"broker": {"day_offset_hours": hours}})
    assert "broker.day_offset_hours" in str(err.value) and "whole number of minutes" in str(
        err.value
    )


def test_every_problem_once_cross_field_rules_included(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Several field errors and, in the same run, the rules across fields whose own values are
    # valid: the non-loopback/token rule, the drawdown order, the leverage order, min risk.
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[risk]\nrisk_pct = 5\nmax_positions = 9\ndaily_loss_pct = -1\ndrawdown_halted_pct = 4\n"
        '[server]\nhttp = "0.0.0.0:8765"\n'
        "[leverage]\nnormal = 50\n"
        "[sizing]\nmin_risk_pct = 0.1\nkelly_min_trades = 80\n"
        "[feeds]\nnews_limit = 0\n"
    )
    assert main(["check-config", str(bad)]) == 2
    lines = [
        ln.strip()[2:] for ln in capsys.readouterr().err.splitlines() if ln.strip().startswith("- ")
    ]
    fields = [ln.split(":", 1)[0] for ln in lines]
    assert sorted(fields) == sorted(
        [
            "risk.risk_pct",  # once: the <= 2 ceiling; risk_pct <= max_risk_pct is not repeated
            "risk.max_positions",
            "risk.daily_loss_pct",
            "risk.drawdown_*",
            "server.http",
            "leverage",
            "sizing.kelly_min_trades",
            "feeds.news_limit",
        ]
    ), lines
    assert any("needs a token" in ln for ln in lines)


def test_a_rule_is_skipped_when_one_of_its_fields_is_invalid() -> None:
    # risk_pct = 5 is reported; comparing the default in its place with max_risk_pct would be noise.
    with pytest.raises(ConfigError) as err:
        load_config(None, env={}, overrides={"risk": {"risk_pct": 5, "max_risk_pct": 0.5}})
    assert err.value.problems == ["risk.risk_pct: input should be less than or equal to 2, got 5"]
    # A section of the wrong type skips the rules that read it, and the others still run.
    with pytest.raises(ConfigError) as err:
        load_config(None, env={}, overrides={"leverage": 5, "sizing": {"min_risk_pct": 1.5}})
    assert [p.split(":")[0] for p in err.value.problems] == ["leverage", "sizing.min_risk_pct"]


def test_cross_field_rules_alone_are_all_reported() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(
            None,
            env={"SIDECAR_ZMQ": "tcp://0.0.0.0:5555", "SIDECAR_HTTP": "0.0.0.0:8765"},
            overrides={
                "risk": {"halt_resume_pct": 20},
                "feeds": {"close_before_event_minutes": 45},
            },
        )
    fields = [p.split(":")[0] for p in err.value.problems]
    assert sorted(fields) == sorted(
        ["server.zmq", "server.http", "risk.halt_resume_pct", "feeds.close_before_event_minutes"]
    )
