"""The sweep's grid file: every problem at once, with the messages `sidecar check-config` gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.backtest.grid import GridError, build_grid, load_grid
from sidecar.cli import main
from sidecar.config import ConfigError, load_config
from sidecar.engine.strategies import strategy_problems


def test_lists_ranges_and_scalars_expand_in_the_files_order() -> None:
    grid = build_grid(
        {
            "grid": {
                "strategy.params.fast": {"from": 5, "to": 15, "step": 5},
                "manage.trail_atr": {"from": 1.0, "to": 1.3, "step": 0.1},
                "risk.one_per_symbol": True,
            }
        },
        env={},
    )
    assert grid.values["strategy.params.fast"] == [5, 10, 15]
    assert grid.values["manage.trail_atr"] == [1.0, 1.1, 1.2, 1.3]  # no 1.2000000000000002
    assert grid.values["risk.one_per_symbol"] == [True]
    assert len(grid.points) == grid.combinations == 12
    first, last = grid.points[0], grid.points[-1]
    assert first.id == "c0001" and first.values == {
        "strategy.params.fast": 5,
        "manage.trail_atr": 1.0,
        "risk.one_per_symbol": True,
    }
    assert last.values["strategy.params.fast"] == 15 and last.values["manage.trail_atr"] == 1.3
    assert grid.configs[-1].strategy.params == {"fast": 15}
    assert grid.configs[-1].manage.trail_atr == 1.3


def test_every_bad_key_and_value_is_reported_at_once_as_check_config_words_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(GridError) as err:
        build_grid(
            {
                "grid": {
                    "risk.risk_pct": [0.5, 5.0],  # above the hard 2 % cap
                    "server.db": ["x.sqlite"],  # not sweepable
                    "risk.no_such_key": [1],
                    "strategy.params.fast": [0, 10],  # 0 is not an integer >= 1
                    "leverage.normal": {"from": 5, "to": 1, "step": 1},  # empty range
                    "sizing.kelly_fraction": [],
                },
                "extra": {},
            },
            env={},
        )
    problems = err.value.problems
    text = "\n".join(problems)
    assert "unknown table(s) extra" in text
    assert "grid 'server.db': not a sweepable key" in text
    assert "grid 'risk.no_such_key': unknown key of [risk]" in text
    assert "grid 'leverage.normal': expected step > 0 and from <= to" in text
    assert "grid 'sizing.kelly_fraction': an empty list" in text
    # Values: the very messages of check-config, for the value alone.
    for overrides in ({"risk": {"risk_pct": 5.0}}, {"strategy": {"params": {"fast": 0}}}):
        with pytest.raises(ConfigError) as cfg:
            load_config(None, env={}, overrides=overrides, extra_checks=strategy_problems)
        (message,) = cfg.value.problems
        assert any(message in p and "invalid in every combination" in p for p in problems), (
            message,
            problems,
        )
    # The good values of the same keys are not reported.
    assert not any("= 0.5" in p or "= 10:" in p for p in problems)


def test_combinations_that_only_fail_together_are_skipped_and_said() -> None:
    grid = build_grid(
        {"grid": {"strategy.params.fast": [10, 40], "strategy.params.slow": [30, 50]}}, env={}
    )
    assert [p.values for p in grid.points] == [
        {"strategy.params.fast": 10, "strategy.params.slow": 30},
        {"strategy.params.fast": 10, "strategy.params.slow": 50},
        {"strategy.params.fast": 40, "strategy.params.slow": 50},
    ]
    assert [p.id for p in grid.points] == ["c0001", "c0002", "c0004"]
    ((point, why),) = grid.skipped
    assert point == {"strategy.params.fast": 40, "strategy.params.slow": 30}
    assert why == ["strategy.params.fast: must be < slow (30), got 40"]


def test_the_base_configuration_file_is_checked_too(tmp_path: Path) -> None:
    cfg = tmp_path / "sidecar.toml"
    cfg.write_text("[risk]\nmax_risk_pct = 1.0\n", encoding="utf-8")
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text('[grid]\n"risk.risk_pct" = [0.5, 1.5]\n', encoding="utf-8")
    with pytest.raises(GridError) as err:
        load_grid(grid_file, cfg, env={})
    (problem,) = err.value.problems
    assert problem.startswith("grid 'risk.risk_pct' = 1.5: invalid in every combination")
    assert "must be <= risk.max_risk_pct (1.0)" in problem
    cfg.write_text("[risk]\nmax_risk_pct = 9\n", encoding="utf-8")
    with pytest.raises(GridError) as err:
        load_grid(grid_file, cfg, env={})
    assert err.value.problems[0].startswith("--config: risk.max_risk_pct")


def test_the_command_reports_grid_and_data_problems_together_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(
        '[grid]\n"risk.risk_pct" = [3.0]\n"feeds.stale_policy" = ["ignore"]\n', encoding="utf-8"
    )
    out = tmp_path / "out"
    code = main(
        [
            "backtest",
            "sweep",
            "--grid",
            str(grid_file),
            "--data",
            str(tmp_path / "missing.csv"),
            "--symbol",
            "EURUSD",
            "--out",
            str(out),
            "--metric",
            "sharpe +",
            "--serial",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "grid 'risk.risk_pct' = 3.0: invalid in every combination" in err
    assert "grid 'feeds.stale_policy': not a sweepable key" in err
    assert "missing.csv: cannot read" in err
    assert "--metric:" in err
    assert not out.exists()
