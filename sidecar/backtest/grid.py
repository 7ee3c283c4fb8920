"""The grid of a parameter sweep: a TOML file whose `[grid]` table maps dotted configuration keys
to the values to try, expanded into validated configurations.

```toml
[grid]
"risk.risk_pct" = [0.5, 1.0]                               # a list of values
"strategy.params.fast" = { from = 5, to = 20, step = 5 }   # a range: 5, 10, 15, 20 (inclusive)
"strategy.params.slow" = [30, 50]
"manage.trail_atr" = 2.0                                   # one value (a list of one)

[walkforward]            # optional: defaults of `sidecar backtest walkforward` (flags win)
in_sample = "365d"
out_of_sample = "90d"
anchored = false
metric = "sharpe"
```

Sweepable keys: every key of `[risk]`, `[sizing]`, `[leverage]` and `[manage]`, `strategy.name`
and any `strategy.params.*`. Every combination (the Cartesian product, in the order the file
lists the keys and values) is validated with the checks of `sidecar check-config`: the same
`load_config` over the base configuration file, the environment and the grid's values, and the
strategy registry's parameter check. Nothing here restates a rule.

- A key that is not sweepable, a malformed value or range, and a value that fails in **every**
  combination it is part of (e.g. `risk.risk_pct = 5`, above the hard 2 % cap) are errors, all
  reported together by `GridError` before anything runs.
- A combination that fails only because of how its values meet (`fast = 40` with `slow = 30`,
  while `fast = 40, slow = 50` is fine) is skipped; `Grid.skipped` says which and why.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sidecar.config import (
    Config,
    ConfigError,
    LeverageConfig,
    ManageConfig,
    RiskConfig,
    SizingConfig,
    load_config,
)
from sidecar.engine.strategies import strategy_problems

SECTIONS = {
    "risk": RiskConfig,
    "sizing": SizingConfig,
    "leverage": LeverageConfig,
    "manage": ManageConfig,
}
MAX_COMBINATIONS = 100_000
SWEEPABLE = "risk.*, sizing.*, leverage.*, manage.*, strategy.name, strategy.params.*"

Scalar = str | int | float | bool


class GridError(ValueError):
    """Every problem of a grid file, one per entry."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Point:
    """One configuration of the grid: its id (grid order) and the swept values."""

    id: str  # "c0001": its place in the product of the grid, 1-based
    values: dict[str, Scalar]  # dotted key -> value, in the grid's key order


@dataclass
class Grid:
    keys: list[str]  # the swept keys, in the file's order
    values: dict[str, list[Scalar]]  # each key's values, expanded
    points: list[Point]  # the valid combinations, in product order
    configs: list[Config]  # the configuration of each point
    skipped: list[tuple[dict[str, Scalar], list[str]]] = field(default_factory=list)
    walkforward: dict[str, Any] = field(default_factory=dict)  # the file's [walkforward] table
    combinations: int = 0  # the size of the product (valid + skipped)


def check_key(key: str) -> str | None:
    """Why `key` cannot be swept (None when it can)."""
    parts = key.split(".")
    if parts[0] == "strategy":
        if key == "strategy.name" or (
            len(parts) == 3 and parts[1] == "params" and parts[2].strip()
        ):
            return None
        return f"grid {key!r}: expected strategy.name or strategy.params.NAME"
    model = SECTIONS.get(parts[0])
    if model is None or len(parts) != 2:
        return f"grid {key!r}: not a sweepable key; expected one of {SWEEPABLE}"
    if parts[1] not in model.model_fields:
        return (
            f"grid {key!r}: unknown key of [{parts[0]}]; expected one of "
            f"{', '.join(model.model_fields)}"
        )
    return None


def _decimal(x: Any) -> Decimal | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    if isinstance(x, float) and not math.isfinite(x):
        return None
    try:
        return Decimal(str(x))
    except InvalidOperation:  # pragma: no cover - str() of a finite number always parses
        return None


def expand(key: str, raw: Any) -> tuple[list[Scalar], list[str]]:
    """The values of one grid entry: a scalar, a list of scalars, or `{from, to, step}`."""
    where = f"grid {key!r}"
    if isinstance(raw, dict):
        extra = set(raw) - {"from", "to", "step"}
        missing = {"from", "to", "step"} - set(raw)
        if extra or missing:
            return [], [
                f"{where}: a range is {{ from = A, to = B, step = S }}"
                + (f"; unknown {', '.join(sorted(extra))}" if extra else "")
                + (f"; missing {', '.join(sorted(missing))}" if missing else "")
            ]
        lo, hi, step = (_decimal(raw[k]) for k in ("from", "to", "step"))
        if lo is None or hi is None or step is None:
            return [], [f"{where}: from, to and step must be numbers, got {raw!r}"]
        if step <= 0 or hi < lo:
            return [], [f"{where}: expected step > 0 and from <= to, got {raw!r}"]
        count = int((hi - lo) / step) + 1
        if count > MAX_COMBINATIONS:
            return [], [f"{where}: {count} values; at most {MAX_COMBINATIONS}"]
        ints = all(isinstance(raw[k], int) for k in ("from", "to", "step"))
        return [int(lo + k * step) if ints else float(lo + k * step) for k in range(count)], []
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        return [], [f"{where}: an empty list; give at least one value"]
    problems = [
        f"{where}: values are numbers, strings or booleans, got {v!r}"
        for v in items
        if not isinstance(v, str | int | float | bool)
        or (isinstance(v, float) and not math.isfinite(v))
    ]
    out: list[Scalar] = []
    for v in items:
        if v in out and type(v) is type(out[out.index(v)]):
            problems.append(f"{where}: {v!r} is listed twice")
        else:
            out.append(v)
    return out, problems


def overrides_of(values: Mapping[str, Scalar]) -> dict[str, dict[str, Any]]:
    """Dotted keys → the nested overrides `load_config` merges over the file."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        parts = key.split(".")
        node: dict[str, Any] = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def load_grid_file(path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise GridError([f"--grid: cannot read {path}: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise GridError([f"{path}: not valid TOML: {exc}"]) from None


def build_grid(
    raw: Mapping[str, Any],
    config_path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    where: str = "grid",
) -> Grid:
    """Expand and validate `raw` (a parsed grid file) over the configuration at `config_path`
    (and the environment, as `sidecar backtest` reads it). Raises GridError with every
    problem."""
    problems: list[str] = []
    unknown = set(raw) - {"grid", "walkforward"}
    if unknown:
        problems.append(
            f"{where}: unknown table(s) {', '.join(sorted(unknown))}; expected [grid] and "
            "optionally [walkforward]"
        )
    table = raw.get("grid")
    if not isinstance(table, dict) or not table:
        problems.append(f"{where}: no [grid] table (dotted keys mapped to lists of values)")
        raise GridError(problems)
    wf = raw.get("walkforward", {})
    if not isinstance(wf, dict):
        problems.append(f"{where}: [walkforward] must be a table")
        wf = {}
    keys = list(table)
    values: dict[str, list[Scalar]] = {}
    for key in keys:
        bad = check_key(key)
        if bad:
            problems.append(bad)
            continue
        vals, why = expand(key, table[key])
        problems.extend(why)
        if not why:
            values[key] = vals
    # The base configuration alone must be valid: its problems are not the grid's.
    try:
        load_config(config_path, env=env, extra_checks=strategy_problems)
    except ConfigError as exc:
        raise GridError(problems + [f"--config: {p}" for p in exc.problems]) from None
    total = math.prod(len(v) for v in values.values())
    if total > MAX_COMBINATIONS:
        raise GridError([*problems, f"{where}: {total} combinations; at most {MAX_COMBINATIONS}"])
    # The keys that are valid are checked value by value even when others are not, so one run
    # reports every problem.
    keys = [k for k in keys if k in values]

    points: list[Point] = []
    configs: list[Config] = []
    skipped: list[tuple[dict[str, Scalar], list[str]]] = []
    # (key, value index) -> whether some combination with it is valid / its problems
    ok: dict[tuple[str, int], bool] = {}
    why_not: dict[tuple[str, int], list[str]] = {}
    for n, combo in enumerate(
        itertools.product(*(list(enumerate(values[k])) for k in keys)), start=1
    ):
        point = {k: v for k, (_, v) in zip(keys, combo, strict=True)}
        try:
            cfg = load_config(
                config_path, env=env, overrides=overrides_of(point), extra_checks=strategy_problems
            )
        except ConfigError as exc:
            skipped.append((point, exc.problems))
            for k, (i, _) in zip(keys, combo, strict=True):
                ok.setdefault((k, i), False)
                named = [p for p in exc.problems if p.startswith(k)]
                if named and not why_not.get((k, i)):
                    why_not[(k, i)] = named
            continue
        for k, (i, _) in zip(keys, combo, strict=True):
            ok[(k, i)] = True
        points.append(Point(f"c{n:04d}", point))
        configs.append(cfg)
    for key in keys:
        for i, v in enumerate(values[key]):
            if not ok.get((key, i), False):
                reasons = why_not.get((key, i)) or []
                if not reasons:  # nothing names the key: the combinations' own problems
                    reasons = next((p for pt, p in skipped if pt.get(key) == v), [])
                problems.append(
                    f"grid {key!r} = {v!r}: invalid in every combination: "
                    + "; ".join(dict.fromkeys(reasons))
                )
    if problems:
        raise GridError(problems)
    return Grid(keys, values, points, configs, skipped, dict(wf), total)


def load_grid(
    path: str | Path, config_path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Grid:
    return build_grid(load_grid_file(path), config_path, env, where=str(path))


__all__ = [
    "Grid",
    "GridError",
    "Point",
    "build_grid",
    "check_key",
    "expand",
    "load_grid",
    "load_grid_file",
    "overrides_of",
]
