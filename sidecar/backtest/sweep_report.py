"""The sweep's outputs: the ranked CSV, the chosen configuration as TOML, the HTML report.

Pure rendering: no clock, no randomness, no environment; the same arguments give the same bytes.

Rows
----
A *row* is one configuration's result as a flat mapping: its swept parameters under their dotted
keys (``"risk.risk_pct"``, ``"strategy.params.fast"``, also ``"symbol"`` or any other label the
orchestration adds to ``param_keys``) and its metrics under flat names (what
``walkforward.flat_fields(summary)`` returns for a ``metrics.summarize`` dict: ``sharpe``,
``calmar``, ``profit_factor``, ``max_drawdown_pct``, ``net_profit``, ``trades``, ...). A nested
summary is accepted as a row too: its numbers are flattened the same way. Values are numbers,
strings, bools or None; NaN and infinities are treated as missing.

API
---
``rank(rows, param_keys, metric)`` → ``list[dict]``
    The rows best first: by the metric's value (``walkforward.metric_value``; ``metric`` is a
    field name or an expression), highest first; rows without a value last; ties broken by the
    parameters in ``param_keys`` order (numbers ascending, then strings, then missing), then by
    the rest of the row's content (so even repeated parameters come out in one order). Each
    returned row is a copy with ``"rank"`` (1-based) and the ``metric`` value under the key
    ``metric`` (the expression text when it is one).

``ranked_csv(rows, param_keys, metric)`` → ``str``
    The ranking as CSV text (``\\n`` line ends; write it with ``newline=""`` or as bytes
    ``.encode("utf-8")``). Columns: ``rank``, the ``param_keys``, ``metric``, then the standard
    metric columns of ``walkforward.FIELDS`` that any row has, then any other keys sorted by
    name. Floats are fixed-point with at most 6 decimals, trailing zeros dropped (``0.5``,
    ``1.25``, ``-3``), ``-0`` written ``0``; ints as ints; bools ``true``/``false``; missing,
    None and NaN as an empty cell. Deterministic: the same set of rows in any order gives the
    same text.

``toml_fragment(point, *, header=True)`` → ``str``
    ``point`` maps dotted keys to values (``{"risk.risk_pct": 0.5, "strategy.name":
    "sma_cross", "strategy.params.fast": 10}``; nested dicts are accepted and flattened). The
    text is a ``sidecar.toml`` fragment: ``[risk]``, ``[strategy]``, ``[strategy.params]``...
    sections in the order of first appearance, each key once, TOML-correct values (strings
    quoted and escaped, floats that round-trip, ``true``/``false``, arrays). With ``header``
    a comment line says where it came from. ``ValueError`` for a key that is not
    ``section.key`` or a value TOML cannot hold (None, NaN).
    Labels that are not configuration (``symbol``, ``window``, ``config``, ``data``,
    ``timeframe``) are skipped: the names in ``NOT_CONFIG``.

``write_sweep_report(path, ranked_rows, param_keys, metric, walkforward=None, *, title=None,
facts=None, chosen=None)`` → ``Path``
    One self-contained HTML page (inline CSS/JS, no network) in the backtest report's look:
    header with ``title`` and ``facts`` (``{"Symbols": "EURUSD", "Data": "..."}`` shown as is),
    cards (configurations tried, best metric, the best configuration), the ranked table (the
    first ``TABLE_ROWS`` rows; the CSV has them all), one heat map per pair of swept
    parameters that take at least two values, labels (``NOT_CONFIG``) excepted (cell = the
    **best** metric value over all other parameters and labels at that pair of values; the
    cell's tooltip also gives the mean and how many rows it covers), the chosen configuration
    as TOML (``chosen``, a point, when given — e.g. the best averaged over symbols — else
    ``chosen_point(...)``: the last walk-forward window's choice, or the top-ranked row's
    parameters), and when ``walkforward`` is
    given (a ``walkforward.WalkForwardResult`` or its ``to_dict()``): the stitched
    out-of-sample equity chart (drawn by ``report_assets/sweep.js``), one row per window
    (periods, chosen configuration, in-sample and out-of-sample metric, their ratio), the
    number of configurations tried and the deflated Sharpe ratio with a verdict in plain words
    ("a lucky maximum" below 0.95). ``ranked_rows`` may be ranked or not: the page ranks them
    with ``rank`` itself. ``render_sweep_report(...)`` returns the HTML string.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.backtest import walkforward as wf
from sidecar.backtest.metrics import iso
from sidecar.backtest.report import (
    _asset,
    _card,
    _cls,
    _downsample,
    _e,
    _json_for_script,
    _money,
    _pct,
    _ratio,
)
from sidecar.page_errors import ERROR_HOOK

TABLE_ROWS = 200  # ranked rows shown in the HTML page (the CSV has them all)
TABLE_METRICS = (
    "sharpe",
    "calmar",
    "profit_factor",
    "total_return_pct",
    "max_drawdown_pct",
    "trades",
    "win_rate_pct",
)
CHART_BUCKETS = 2000
NOT_CONFIG = frozenset({"symbol", "symbols", "data", "timeframe", "rank", "window", "config"})
DASH = "\u2014"
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# --------------------------------------------------------------------------- rows & ranking


def make_row(point: Mapping[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    """A results row: the configuration's ``point`` (dotted keys) and the summary's standard
    metrics under their short names (``walkforward.FIELDS``)."""
    fields = wf.flat_fields(summary)
    row: dict[str, Any] = dict(point)
    for name in wf.FIELDS:
        if name in fields:
            row[name] = fields[name]
    return row


def _as_row(row: Mapping[str, Any]) -> dict[str, Any]:
    if not wf._is_nested(row):
        return dict(row)
    scalars = {k: v for k, v in row.items() if not isinstance(v, Mapping | list)}
    return make_row(scalars, row)


def _param_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, int | float | np.integer | np.floating):
        x = float(value)
        return (0, x) if math.isfinite(x) else (2, "")
    if value is None:
        return (2, "")
    return (1, value if isinstance(value, str) else json.dumps(value, sort_keys=True))


def rank(
    rows: Sequence[Mapping[str, Any]], param_keys: Sequence[str], metric: str
) -> list[dict[str, Any]]:
    """The rows best first, each a copy with ``rank`` and the metric's value (module docstring)."""
    evaluate = wf.compile_metric(metric)
    keyed = []
    for i, raw in enumerate(rows):
        row = _as_row(raw)
        value = evaluate(row)
        row[metric] = value
        params = tuple(_param_key(row.get(k)) for k in param_keys)
        content = tuple(sorted((str(k), _fmt_csv(v)) for k, v in row.items()))
        keyed.append(((value is None, -(value or 0.0), params, content, i), row))
    keyed.sort(key=lambda kv: kv[0])
    out = []
    for n, (_, row) in enumerate(keyed, 1):
        row["rank"] = n
        out.append(row)
    return out


def _fmt_csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        x = float(value)
        if not math.isfinite(x):
            return ""
        text = f"{x:.6f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _columns(
    ranked: Sequence[Mapping[str, Any]], param_keys: Sequence[str], metric: str
) -> list[str]:
    present: set[str] = set()
    for row in ranked:
        present.update(str(k) for k in row)
    fixed = ["rank", *param_keys]
    if metric not in fixed:
        fixed.append(metric)
    standard = [f for f in wf.FIELDS if f in present and f not in fixed]
    rest = sorted(present - set(fixed) - set(standard))
    return fixed + standard + rest


def ranked_csv(rows: Sequence[Mapping[str, Any]], param_keys: Sequence[str], metric: str) -> str:
    """The ranking as deterministic CSV text (module docstring)."""
    ranked = rank(rows, param_keys, metric)
    columns = _columns(ranked, param_keys, metric)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in ranked:
        writer.writerow([_fmt_csv(row.get(c)) for c in columns])
    return buf.getvalue()


# --------------------------------------------------------------------------- TOML


def _flatten(point: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in point.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out += _flatten(value, name)
        else:
            out.append((name, value))
    return out


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any, key: str) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{key}: {value!r} has no place in a configuration")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v, key) for v in value) + "]"
    raise ValueError(f"{key}: no TOML form for {type(value).__name__} {value!r}")


def toml_fragment(point: Mapping[str, Any], *, header: bool = True) -> str:
    """The configuration ``point`` as a ``sidecar.toml`` fragment (module docstring)."""
    sections: dict[tuple[str, ...], list[tuple[str, Any]]] = {}
    seen: set[tuple[str, ...]] = set()
    for name, value in _flatten(point):
        if name in NOT_CONFIG:
            continue
        parts = tuple(name.split("."))
        if len(parts) < 2 or not all(parts):
            raise ValueError(f"{name}: expected a dotted configuration key like risk.risk_pct")
        if parts in seen:
            raise ValueError(f"{name}: given twice")
        seen.add(parts)
        sections.setdefault(parts[:-1], []).append((parts[-1], value))
    for section in sections:
        for key, _ in sections[section]:
            if (*section, key) in sections:
                raise ValueError(f"{'.'.join((*section, key))}: both a value and a section")
    tops = list(dict.fromkeys(s[0] for s in sections))
    order = sorted(sections, key=lambda s: (tops.index(s[0]), len(s), list(sections).index(s)))
    lines: list[str] = []
    if header:
        lines.append("# Chosen by `sidecar backtest sweep`: these keys go into sidecar.toml")
        lines.append("# (they replace the same keys there; check with `sidecar check-config`).")
    for section in order:
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_toml_key(p) for p in section) + "]")
        for key, value in sections[section]:
            dotted = ".".join((*section, key))
            if value is None:
                raise ValueError(f"{dotted}: None has no place in a configuration")
            lines.append(f"{_toml_key(key)} = {_toml_value(value, dotted)}")
    return "\n".join(lines) + "\n"


def chosen_point(
    rows: Sequence[Mapping[str, Any]],
    param_keys: Sequence[str],
    metric: str,
    walkforward: wf.WalkForwardResult | Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The configuration to trade: the last walk-forward window's choice when there is a
    walk-forward, else the top-ranked row's parameters."""
    if walkforward is not None:
        data = _wf_dict(walkforward)
        if data["windows"]:
            return dict(data["windows"][-1]["params"])
    ranked = rank(rows, param_keys, metric)
    if not ranked:
        raise ValueError("rows: empty, no configuration to choose")
    return {k: ranked[0].get(k) for k in param_keys}


# --------------------------------------------------------------------------- heat maps


class HeatMap:
    """The metric over a pair of parameters: ``cells[(i, j)] = (best, mean, count)`` for
    ``x_values[i]`` and ``y_values[j]`` over every configuration with those two values (the
    other parameters vary); configurations without a metric value are left out of a cell."""

    def __init__(
        self,
        x_key: str,
        y_key: str,
        x_values: list[Any],
        y_values: list[Any],
        cells: dict[tuple[int, int], tuple[float, float, int]],
    ) -> None:
        self.x_key, self.y_key = x_key, y_key
        self.x_values, self.y_values = x_values, y_values
        self.cells = cells


def _distinct(values: Sequence[Any]) -> list[Any]:
    seen: dict[tuple[int, Any], Any] = {}
    for v in values:
        seen.setdefault(_param_key(v), v)
    return [seen[k] for k in sorted(seen)]


def heat_map(rows: Sequence[Mapping[str, Any]], x_key: str, y_key: str, metric: str) -> HeatMap:
    """Best and mean of ``metric`` at each pair of values of ``x_key`` and ``y_key``."""
    evaluate = wf.compile_metric(metric)
    flat = [_as_row(r) for r in rows]
    xs = _distinct([r.get(x_key) for r in flat])
    ys = _distinct([r.get(y_key) for r in flat])
    xi = {_param_key(v): i for i, v in enumerate(xs)}
    yi = {_param_key(v): j for j, v in enumerate(ys)}
    acc: dict[tuple[int, int], list[float]] = {}
    for r in flat:
        value = evaluate(r)
        if value is None:
            continue
        key = (xi[_param_key(r.get(x_key))], yi[_param_key(r.get(y_key))])
        acc.setdefault(key, []).append(value)
    cells = {k: (max(v), math.fsum(v) / len(v), len(v)) for k, v in acc.items()}
    return HeatMap(x_key, y_key, xs, ys, cells)


def _labels(rows: Sequence[Mapping[str, Any]], param_keys: Sequence[str]) -> list[str]:
    return [
        k for k in param_keys if k in NOT_CONFIG and len(_distinct([r.get(k) for r in rows])) > 1
    ]


def heat_map_pairs(
    rows: Sequence[Mapping[str, Any]], param_keys: Sequence[str]
) -> list[tuple[str, str]]:
    """The pairs of swept parameters that get a heat map: both take at least two values and
    neither is a label (``NOT_CONFIG``: symbol, window...; a cell's best runs over those too)."""
    flat = [_as_row(r) for r in rows]
    varying = [
        k
        for k in param_keys
        if k not in NOT_CONFIG and len(_distinct([r.get(k) for r in flat])) >= 2
    ]
    return list(combinations(varying, 2))


# --------------------------------------------------------------------------- HTML


def write_sweep_report(
    path: str | Path,
    ranked_rows: Sequence[Mapping[str, Any]],
    param_keys: Sequence[str],
    metric: str,
    walkforward: wf.WalkForwardResult | Mapping[str, Any] | None = None,
    *,
    title: str | None = None,
    facts: Mapping[str, str] | None = None,
    chosen: Mapping[str, Any] | None = None,
) -> Path:
    """Render the sweep report and write it to ``path`` (UTF-8, ``\\n``); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_sweep_report(
        ranked_rows, param_keys, metric, walkforward, title=title, facts=facts, chosen=chosen
    )
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return out


def render_sweep_report(
    ranked_rows: Sequence[Mapping[str, Any]],
    param_keys: Sequence[str],
    metric: str,
    walkforward: wf.WalkForwardResult | Mapping[str, Any] | None = None,
    *,
    title: str | None = None,
    facts: Mapping[str, str] | None = None,
    chosen: Mapping[str, Any] | None = None,
) -> str:
    """The sweep report's HTML as a string."""
    ranked = rank(ranked_rows, param_keys, metric)
    wfd = _wf_dict(walkforward) if walkforward is not None else None
    pairs = heat_map_pairs(ranked, param_keys)
    maps = [heat_map(ranked, a, b, metric) for a, b in pairs]
    data = {
        "oos": _oos_chart_data(wfd) if wfd else None,
        "heatmaps": len(maps),
        "rows": len(ranked),
    }
    heading = title or "Parameter sweep"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(heading)} \u00b7 {_e(metric)}</title>",
        f"<style>\n{_asset('report.css')}{_asset('sweep.css')}</style>",
        f"<script>{ERROR_HOOK}</script>",
        "</head>",
        '<body data-render="pending">',
        _header(heading, ranked, param_keys, metric, wfd, facts),
        "<main>",
        '<div id="js-errors" class="errors" hidden></div>',
        '<div id="render-status" hidden></div>',
        _cards(ranked, param_keys, metric, wfd),
    ]
    if wfd:
        parts.append(_walkforward_panel(wfd, param_keys))
    parts += [
        _ranked_panel(ranked, param_keys, metric),
        _heatmaps_panel(maps, metric, param_keys, _labels(ranked, param_keys)),
        _toml_panel(ranked, param_keys, metric, wfd, chosen),
        "<footer>Times are UTC. Generated by sidecar.backtest.sweep_report from the sweep's "
        "results only; the same results give the same file.</footer>",
        "</main>",
        f'<script type="application/json" id="sweep-data">{_json_for_script(data)}</script>',
        f"<script>\n{_asset('sweep.js')}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _configurations(
    ranked: Sequence[Mapping[str, Any]], param_keys: Sequence[str], wfd: Mapping[str, Any] | None
) -> int:
    """Configurations tried: the walk-forward's count, else the distinct parameter sets
    (labels such as the symbol left out)."""
    if wfd and wfd.get("n_configurations") is not None:
        return int(wfd["n_configurations"])
    keys = [k for k in param_keys if k not in NOT_CONFIG]
    return len({tuple(_param_key(r.get(k)) for k in keys) for r in ranked})


def _wf_dict(walkforward: wf.WalkForwardResult | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(walkforward, wf.WalkForwardResult):
        return walkforward.to_dict()
    return dict(walkforward)


def _value(x: Any) -> str:
    """A metric value as shown: 3 decimals below 1000, else grouped with 1 decimal."""
    x = wf._finite(x)
    if x is None:
        return DASH
    return _ratio(x, 1 if abs(x) >= 1000 else 3)


def _param_text(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _short_key(key: str) -> str:
    return key.removeprefix("strategy.params.")


def _point_text(params: Mapping[str, Any], keys: Sequence[str]) -> str:
    shown = [k for k in keys if k in params] or list(params)
    return "  ".join(f"{_short_key(k)}={_param_text(params.get(k))}" for k in shown)


def _day(ts: int | None) -> str:
    text = iso(ts)
    return text[:16].replace("T", " ") if text else DASH


def _header(
    heading: str,
    ranked: Sequence[Mapping[str, Any]],
    param_keys: Sequence[str],
    metric: str,
    wfd: Mapping[str, Any] | None,
    facts: Mapping[str, str] | None,
) -> str:
    items = [
        ("Metric", metric),
        ("Configurations", f"{_configurations(ranked, param_keys, wfd):,}"),
    ]
    items.append(("Rows", f"{len(ranked):,}"))
    items.append(("Parameters", ", ".join(param_keys) or DASH))
    if wfd:
        items.append(("Walk-forward windows", str(len(wfd.get("windows") or []))))
    items += [(str(k), str(v)) for k, v in (facts or {}).items()]
    out = ['<header class="top">', '<div class="title">', f"<h1>{_e(heading)}</h1>"]
    out.append(f'<span class="sub">ranked by {_e(metric)}, highest first</span>')
    out.append("</div>")
    out.append('<div class="facts">')
    out += [f"<span><b>{_e(k)}</b>{_e(v)}</span>" for k, v in items]
    out.append("</div></header>")
    return "\n".join(out)


def _cards(
    ranked: Sequence[Mapping[str, Any]],
    param_keys: Sequence[str],
    metric: str,
    wfd: Mapping[str, Any] | None,
) -> str:
    best = ranked[0] if ranked else {}
    best_value = best.get(metric)
    valued = sum(1 for r in ranked if r.get(metric) is not None)
    best_text = _point_text({k: best.get(k) for k in param_keys}, param_keys) or DASH
    cards = [
        _card(
            "Configurations",
            f"{_configurations(ranked, param_keys, wfd):,}",
            f"{len(ranked):,} rows · {valued:,} with a value",
        ),
        _card(f"Best {metric}", _value(best_value), "rank 1", _cls(best_value)),
        '<div class="card wide" title="' + _e(best_text) + '"><div class="k">Rank 1</div>'
        f'<div class="v small">{_e(best_text)}</div>'
        '<div class="s">in-sample: the whole period, or one window\'s</div></div>',
    ]
    if wfd:
        dsr = wfd.get("dsr")
        threshold = wfd.get("dsr_threshold", wf.DSR_THRESHOLD)
        cards += [
            _card(
                "OOS return",
                _pct(wfd.get("total_return_pct"), sign=True),
                f"stitched \u00b7 from {_money(wfd.get('start_equity'))}",
                _cls(wfd.get("total_return_pct")),
            ),
            _card(
                "OOS Sharpe",
                _ratio(wfd.get("sharpe")),
                "daily, \u221a252, rf 0",
                _cls(wfd.get("sharpe")),
            ),
            _card(
                "OOS max drawdown",
                _pct(-(wfd.get("max_drawdown_pct") or 0.0)),
                "stitched curve",
                "neg" if wfd.get("max_drawdown_pct") else "",
            ),
            _card(
                "OOS / IS " + metric if len(metric) < 16 else "OOS / IS metric",
                _ratio(wfd.get("is_oos_ratio")),
                "mean out-of-sample / in-sample",
                "" if wfd.get("is_oos_ratio") is not None else "na",
            ),
            _card(
                "Deflated Sharpe",
                _ratio(dsr, 2) if dsr is not None else DASH,
                f"{wfd.get('n_configurations', 0):,} configurations tried",
                "na" if dsr is None else "pos" if dsr >= threshold else "neg",
                str(wfd.get("verdict", "")),
            ),
        ]
    return '<section class="cards">\n' + "\n".join(cards) + "\n</section>"


def _oos_chart_data(wfd: Mapping[str, Any]) -> dict[str, Any]:
    stitched = wfd.get("stitched") or {"t": [], "equity": []}
    t = np.asarray(stitched.get("t") or [], dtype=np.int64)
    v = np.asarray([np.nan if x is None else x for x in stitched.get("equity") or []], float)
    windows = wfd.get("windows") or []
    t0 = int(windows[0]["oos_start"]) if windows else int(t[0]) if t.size else 0
    t1 = int(windows[-1]["oos_end"]) if windows else int(t[-1]) if t.size else 1
    idx = _downsample(t, v, t0, t1, CHART_BUCKETS) if t.size else np.zeros(0, dtype=np.int64)
    return {
        "t0": t0,
        "start": 0,
        "end": t1 - t0,
        "t": (t[idx] - t0).tolist(),
        "v": [round(float(x), 2) for x in v[idx]],
        "points": int(t.size),
        "start_equity": wfd.get("start_equity"),
        "windows": [
            [int(w["oos_start"]) - t0, int(w["oos_end"]) - t0, i + 1] for i, w in enumerate(windows)
        ],
    }


def _walkforward_panel(wfd: Mapping[str, Any], param_keys: Sequence[str]) -> str:
    dsr = wfd.get("dsr")
    threshold = wfd.get("dsr_threshold", wf.DSR_THRESHOLD)
    good = dsr is not None and dsr >= threshold
    metric = str(wfd.get("metric", ""))
    n = wfd.get("n_configurations", 0)
    windows = wfd.get("windows") or []
    verdict = (
        f"Deflated Sharpe ratio {_ratio(dsr, 3) if dsr is not None else DASH} \u2014 "
        f"{wfd.get('verdict', '')}"
    )
    detail = (
        f"Out-of-sample Sharpe {_ratio(wfd.get('sharpe_per_period'), 4)} per day over "
        f"{wfd.get('n_returns', 0):,} days (skewness {_ratio(wfd.get('skewness'), 2)}, kurtosis "
        f"{_ratio(wfd.get('kurtosis'), 2)}) against the "
        f"{_ratio(wfd.get('expected_max_sharpe'), 4)} "
        f"per day that the best of {n:,} configurations with no skill is expected to reach "
        f"(Bailey & L\u00f3pez de Prado 2014; variance of the configurations' in-sample daily "
        f"Sharpe {wfd.get('trials_variance', 0):.3g})."
    )
    out = [
        '<section class="panel" id="walkforward">',
        f'<h2>Walk-forward <span class="hint">{len(windows)} windows \u00b7 {n:,} '
        f"configurations tried in each \u00b7 the best {_e(metric)} in-sample, traded "
        "out-of-sample \u00b7 out-of-sample equity stitched</span></h2>",
        f'<div id="verdict" class="verdict {"good" if good else "bad"}">{_e(verdict)}</div>',
        f'<p class="explain">{_e(detail)}</p>',
        '<div class="legend"><span><i class="sw line" style="background:#2563eb"></i>'
        "Stitched out-of-sample equity</span>"
        '<span><i class="sw" style="background:var(--window)"></i>Alternate windows</span></div>',
        '<div id="chart-oos" class="chart"></div>',
        "<h3>Windows</h3>",
        '<div class="tablewrap"><table class="windows"><thead><tr><th>#</th>'
        '<th class="l">In-sample</th><th class="l">Out-of-sample</th>'
        f'<th class="l">Chosen configuration</th><th>IS {_e(metric)}</th>'
        f"<th>OOS {_e(metric)}</th><th>OOS / IS</th></tr></thead><tbody>",
    ]
    for i, w in enumerate(windows, 1):
        params = w.get("params") or {}
        out.append(
            f"<tr><td>{i}</td>"
            f'<td class="l">{_e(_day(w.get("is_start")))} \u2192 {_e(_day(w.get("is_end")))}</td>'
            f'<td class="l">{_e(_day(w.get("oos_start")))} \u2192 {_e(_day(w.get("oos_end")))}</td>'
            f'<td class="l mono">{_e(_point_text(params, param_keys))}</td>'
            f'<td class="{_cls(w.get("is_value"))}">{_e(_value(w.get("is_value")))}</td>'
            f'<td class="{_cls(w.get("oos_value"))}">{_e(_value(w.get("oos_value")))}</td>'
            f"<td>{_e(_ratio(w.get('ratio'), 2))}</td></tr>"
        )
    out.append("</tbody></table></div></section>")
    return "\n".join(out)


def _ranked_panel(
    ranked: Sequence[Mapping[str, Any]], param_keys: Sequence[str], metric: str
) -> str:
    present = {k for r in ranked for k, v in r.items() if v is not None}
    extra = [m for m in TABLE_METRICS if m in present and m != metric]
    shown = ranked[:TABLE_ROWS]
    hint = f"{len(ranked):,} configurations"
    if len(ranked) > len(shown):
        hint += f", the first {len(shown):,} shown (results.csv has them all)"
    out = [
        '<section class="panel">',
        f'<h2>Ranking <span class="hint">{_e(hint)} \u00b7 by {_e(metric)}, ties by the '
        "parameters</span></h2>",
        '<div class="tablewrap"><table class="ranked"><thead><tr><th>Rank</th>',
    ]
    out += [f'<th class="l">{_e(_short_key(k))}</th>' for k in param_keys]
    out.append(f'<th class="metric">{_e(metric)}</th>')
    out += [f"<th>{_e(m)}</th>" for m in extra]
    out.append("</tr></thead><tbody>")
    for r in shown:
        cells = [f"<td>{int(r['rank'])}</td>"]
        cells += [f'<td class="l">{_e(_param_text(r.get(k)))}</td>' for k in param_keys]
        v = r.get(metric)
        cells.append(f'<td class="metric {_cls(v)}">{_e(_value(v))}</td>')
        cells += [f"<td>{_e(_value(r.get(m)))}</td>" for m in extra]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div></section>")
    return "\n".join(out)


def _heat_style(value: float, lo: float, hi: float) -> str:
    """Red (lowest) → white → green (highest) over the map's own range."""
    t = 0.5 if hi - lo <= 1e-12 else (value - lo) / (hi - lo)
    if t >= 0.5:
        alpha = (t - 0.5) * 2 * 0.55
        rgb = "15,138,95"
    else:
        alpha = (0.5 - t) * 2 * 0.55
        rgb = "217,45,32"
    return f"background:rgba({rgb},{alpha:.2f})"


def _heatmaps_panel(
    maps: Sequence[HeatMap], metric: str, param_keys: Sequence[str], labels: Sequence[str] = ()
) -> str:
    over = "the other parameters" + (f" and {', '.join(labels)}" if labels else "")
    out = [
        '<section class="panel" id="heatmaps">',
        f'<h2>Heat maps <span class="hint">each cell: the <b>best</b> {_e(metric)} over all '
        f"values of {_e(over)} (hover: the mean and how many rows); "
        "green high, red low, per map</span></h2>",
    ]
    if not maps:
        out.append(
            '<div class="empty">Fewer than two parameters take two or more values: '
            "no pair to map.</div></section>"
        )
        return "\n".join(out)
    out.append('<div class="heatgrid">')
    for m in maps:
        values = [c[0] for c in m.cells.values()]
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        top = (
            max(m.cells.items(), key=lambda kv: (kv[1][0], -kv[0][0], -kv[0][1]))[0]
            if values
            else None
        )
        out.append(
            f'<div class="heatmap" data-x="{_e(m.x_key)}" data-y="{_e(m.y_key)}">'
            f"<h3>{_e(_short_key(m.y_key))} \u2193 \u00b7 {_e(_short_key(m.x_key))} \u2192</h3>"
            '<div class="tablewrap"><table class="heat"><thead><tr>'
            f'<th class="l corner">{_e(_short_key(m.y_key))} \\ {_e(_short_key(m.x_key))}</th>'
        )
        out += [f"<th>{_e(_param_text(x))}</th>" for x in m.x_values]
        out.append("</tr></thead><tbody>")
        for j, y in enumerate(m.y_values):
            row = [f'<tr><th class="l">{_e(_param_text(y))}</th>']
            for i, _ in enumerate(m.x_values):
                cell = m.cells.get((i, j))
                if cell is None:
                    row.append('<td class="na" title="no configuration with a value">\u00b7</td>')
                    continue
                best, mean, count = cell
                tip = f"best {_value(best)} \u00b7 mean {_value(mean)} \u00b7 {count} configuration"
                tip += "s" if count != 1 else ""
                cls = ' class="top"' if (i, j) == top else ""
                row.append(
                    f'<td{cls} style="{_heat_style(best, lo, hi)}" title="{_e(tip)}">'
                    f"{_e(_value(best))}</td>"
                )
            out.append("".join(row) + "</tr>")
        out.append("</tbody></table></div></div>")
    out.append("</div></section>")
    return "\n".join(out)


def _toml_panel(
    ranked: Sequence[Mapping[str, Any]],
    param_keys: Sequence[str],
    metric: str,
    wfd: Mapping[str, Any] | None,
    chosen: Mapping[str, Any] | None = None,
) -> str:
    out = ['<section class="panel" id="chosen">']
    if not ranked and not wfd and chosen is None:
        out.append("<h2>Chosen configuration</h2>")
        out.append('<div class="empty">No configuration.</div></section>')
        return "\n".join(out)
    if chosen is not None:
        point = dict(chosen)
        how = f"the best configuration by {metric}"
    else:
        point = chosen_point(ranked, param_keys, metric, wfd)
        how = (
            "the last walk-forward window's in-sample choice: what the walk-forward trades next"
            if wfd and wfd.get("windows")
            else f"the configuration ranked first by {metric}"
        )
    out.append(
        f'<h2>Chosen configuration <span class="hint">{_e(how)} \u00b7 a ready sidecar.toml '
        "fragment</span></h2>"
    )
    try:
        text = toml_fragment(point)
    except ValueError as exc:
        text = f"# cannot be written as TOML: {exc}"
    out.append(f'<pre class="config" id="chosen-toml">{_e(text)}</pre>')
    out.append("</section>")
    return "\n".join(out)
