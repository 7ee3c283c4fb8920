"""Walk-forward analysis: windows, in-sample selection, stitching, deflated Sharpe. Pure functions.

No I/O, no clock, no randomness: the same arguments give the same answer on any machine, so a
walk-forward run on a Dask cluster equals the serial one. The orchestration (sweep.py) runs the
backtests; this module only decides *which* periods, *which* configuration, and *how good*.

API (times are Unix epoch seconds, UTC; every interval is half-open ``[start, end)``)
---------------------------------------------------------------------------------------
``windows(first_time, last_time, in_sample, out_of_sample, *, anchored=False, step=None)``
    → ``list[Window]``. ``Window(is_start, is_end, oos_start, oos_end)`` with
    ``is_start < is_end == oos_start < oos_end <= last_time`` (the out-of-sample period starts
    where the in-sample one ends, so no bar is in both). Rolling: each in-sample period has the
    length ``in_sample`` and moves by ``step`` (default ``out_of_sample``, i.e. out-of-sample
    periods tile the data without overlap). Anchored: every in-sample period starts at
    ``first_time`` and grows. Only complete windows are returned (a trailing out-of-sample
    period shorter than ``out_of_sample`` is dropped). ``last_time`` is exclusive: pass the end
    of the data (the last bar's open + one bar). A ``step`` shorter than ``out_of_sample``
    makes out-of-sample periods overlap: allowed here, but such windows cannot be stitched.
    Lengths are seconds (int); ``DAY`` and ``parse_duration("90d")`` help. ``ValueError``
    names the bad argument; no window fitting the data is a ``ValueError`` too.

``flat_fields(summary)`` → ``dict[str, float | None]``
    The numeric fields a metric can name. Accepts a nested ``metrics.summarize()`` dict *or* an
    already flat mapping (a results row): flat keys pass through; nested summaries get the
    short names of ``FIELDS`` (``sharpe``, ``sortino``, ``calmar``, ``profit_factor``,
    ``cagr_pct``, ``total_return_pct``, ``net_profit``, ``max_drawdown_pct``,
    ``max_drawdown_money``, ``trades``, ``win_rate_pct``, ``expectancy``, ``payoff_ratio``,
    ``volatility_pct``, ``exposure_pct``, ``days_with_bars``, ...) and every numeric leaf under
    its dotted path too (``returns.sharpe``, ``drawdown.max_pct``). Non-finite values → None.

``metric_value(summary, metric)`` → ``float | None``
    ``metric`` is a field name (``"sharpe"``, ``"calmar"``, ``"profit_factor"``, any name of
    ``flat_fields``) or an expression over them: numbers, names, ``+ - * / **``, unary ``-``,
    parentheses and the functions ``min max abs log sqrt``, e.g.
    ``"sharpe * (1 - max_drawdown_pct / 100)"``. Parsed with ``ast`` and evaluated by a tiny
    interpreter (never ``eval``). A None/NaN operand, a division by zero or a math domain
    error gives None (such a configuration never wins). ``MetricError`` (a ``ValueError``)
    for syntax not allowed or an unknown field, naming it and listing the known ones.
    ``compile_metric(metric, fields=None)`` checks the text once (before a sweep starts) and
    returns the evaluator; with ``fields`` (e.g. ``FIELDS``) an unknown name fails now, not
    after the backtests; ``compile_metric(m).names`` are the fields it reads.

``select(summaries, metric)`` → ``int``
    Index of the best summary (the highest metric value; to prefer low values negate them,
    e.g. ``"-max_drawdown_pct"``). None/NaN never wins; ties go to the
    lowest index (so: order the configurations deterministically, e.g. as the grid lists them).
    ``ValueError`` if the list is empty or no summary has a value.

``stitch(oos_curves, start_equity)`` → ``list[tuple[int, float]]``
    ``oos_curves`` is one curve per window in window order, each a sequence of
    ``(time, equity)`` pairs *preceded by nothing*: each curve's first point is its window's
    first equity point and the window started at its own initial equity, given as
    ``OosCurve(initial, points)`` or a plain ``(initial, points)`` tuple. The stitched curve
    starts at ``(first window's oos_start or first time, start_equity)`` and compounds each
    window's returns: a point's equity is ``carried × equity / initial`` where ``carried`` is
    the stitched equity at the end of the previous window. Times must increase strictly
    across windows (``ValueError`` otherwise; a window whose first time is not after the
    previous window's last time means overlapping out-of-sample data); within a window two
    points at the same time keep the later one.

``probabilistic_sharpe(observed_sr, benchmark_sr, n_returns, skewness=0.0, kurtosis=3.0)``
    → probability in [0, 1] that the true Sharpe exceeds ``benchmark_sr`` (Bailey & López de
    Prado 2012): ``Φ((SR − SR*)·√(T − 1) / √(1 − γ3·SR + (γ4 − 1)/4·SR²))``.
``expected_max_sharpe(n_trials, trials_variance)``
    → ``√V·((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))`` (γ = Euler–Mascheroni); 0 for N ≤ 1.
``deflated_sharpe(observed_sr, trial_srs, n_returns, skewness=0.0, kurtosis=3.0, *,
n_trials=None, variance=None)``
    → PSR against ``expected_max_sharpe(N, V)`` with ``N = n_trials or len(trial_srs)`` and
    ``V = variance or trials_variance(trial_srs)``, the sample variance (ddof 1) of the finite
    trial Sharpes (Bailey & López de Prado 2014).
    **Every Sharpe here is per period, not annualized** (per day for our daily returns), and
    ``n_returns`` is the number of those periods; ``kurtosis`` is the plain (not excess)
    kurtosis, 3 for normal returns. ``metrics.summarize`` reports the *annualized* daily Sharpe
    (× √252): convert with ``per_period_sharpe(annual) = annual / √252`` (``TRADING_DAYS``).
    ``return_moments(returns)`` → ``Moments(sharpe, skewness, kurtosis, n)`` of a return series
    (per-period Sharpe with ddof 1, population skewness and kurtosis as in the paper).
    ``DSR_THRESHOLD = 0.95``; ``dsr_verdict(dsr)`` says in plain words whether the best result
    is a lucky maximum.

``metric_ratio(is_value, oos_value)`` → ``float | None``
    Out-of-sample / in-sample (1.0 = held up, 0.5 = halved, negative = flipped sign); None when
    either is missing or the in-sample value is not > 0 (a ratio against a loss is meaningless).

``walk_forward(windows, is_summaries, oos_summaries, oos_curves, points, metric, start_equity,
*, chosen=None)`` → ``WalkForwardResult``
    Assembles everything the report shows once the orchestration has run: for window ``k``,
    ``is_summaries[k][j]`` is configuration ``j``'s in-sample summary (the same configuration
    order in every window, ``points[j]`` its ``{dotted key: value}``), ``oos_summaries[k]`` the
    out-of-sample summary of the configuration chosen in window ``k`` (``chosen[k]``; computed
    with ``select`` when not given) and ``oos_curves[k]`` its ``(initial, points)`` curve.
    The result holds the per-window choice and IS/OOS metric values and ratio, the stitched
    curve, the number of configurations tried, the Sharpe, moments and deflated Sharpe of the
    stitched out-of-sample daily returns (trial variance: the variance of the configurations'
    in-sample per-period Sharpe, averaged over the windows), and ``to_dict()`` (JSON-ready,
    what ``sweep_report.write_sweep_report(walkforward=...)`` takes; it takes the object too).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np

from sidecar.backtest.metrics import TRADING_DAYS, daily_returns, drawdown_series

DAY = 86_400
EULER_GAMMA = 0.5772156649015329
DSR_THRESHOLD = 0.95
MAX_WINDOWS = 10_000
_NORMAL = NormalDist()

# Short metric names → their path in a `metrics.summarize()` dict (the order is the CSV order).
FIELDS: dict[str, tuple[str, ...]] = {
    "sharpe": ("returns", "sharpe"),
    "sortino": ("returns", "sortino"),
    "calmar": ("returns", "calmar"),
    "profit_factor": ("trades", "profit_factor"),
    "cagr_pct": ("returns", "cagr_pct"),
    "total_return_pct": ("returns", "total_return_pct"),
    "net_profit": ("returns", "net_profit"),
    "final_equity": ("returns", "final_equity"),
    "max_drawdown_pct": ("drawdown", "max_pct"),
    "max_drawdown_money": ("drawdown", "max_money"),
    "drawdown_days": ("drawdown", "duration_days"),
    "volatility_pct": ("returns", "volatility_pct"),
    "trades": ("trades", "count"),
    "win_rate_pct": ("trades", "win_rate_pct"),
    "payoff_ratio": ("trades", "payoff_ratio"),
    "expectancy": ("trades", "expectancy"),
    "longest_losing_streak": ("trades", "longest_losing_streak"),
    "exposure_pct": ("exposure", "exposure_pct"),
    "avg_leverage": ("exposure", "avg_leverage"),
    "max_leverage": ("exposure", "max_leverage"),
    "commission": ("costs", "commission"),
    "swap": ("costs", "swap"),
    "days_with_bars": ("period", "days_with_bars"),
}
# Dotted names under these sections (``returns.sortino``) are looked up in a nested summary
# when the metric is evaluated; ``compile_metric(m, fields)`` lets them through.
SUMMARY_SECTIONS = frozenset(
    {"period", "returns", "drawdown", "trades", "exposure", "costs", "decisions", "modes"}
)
_NESTED_SKIP = frozenset({"config", "strategy", "monthly_returns", "notes", "account"})


class MetricError(ValueError):
    """A metric expression that is not allowed or names an unknown field."""


class Window(NamedTuple):
    """One walk-forward step: in-sample ``[is_start, is_end)``, out-of-sample
    ``[oos_start, oos_end)``, epoch seconds, ``is_end == oos_start``."""

    is_start: int
    is_end: int
    oos_start: int
    oos_end: int


class OosCurve(NamedTuple):
    """One window's out-of-sample equity: the equity it started with and its ``(time, equity)``
    points; ``start`` (optional, e.g. the window's ``oos_start``) adds a point at the stitched
    equity carried into the window, so a chart shows where each window begins (not when the
    first point is at or before ``start``)."""

    initial: float
    points: Sequence[tuple[int, float]]
    start: int | None = None


class Moments(NamedTuple):
    """Per-period Sharpe (mean / sample std), population skewness and (plain) kurtosis."""

    sharpe: float | None
    skewness: float
    kurtosis: float
    n: int


# --------------------------------------------------------------------------- windows


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}


def parse_duration(text: str | int, name: str = "duration") -> int:
    """``"90d"``, ``"12w"``, ``"6h"``, ``"30m"``, ``"3600s"`` or plain seconds → seconds."""
    if isinstance(text, bool):
        raise ValueError(f"{name}: expected a duration like 90d, 12w or 6h, got {text!r}")
    if isinstance(text, int):
        seconds = text
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ValueError(f"{name}: expected a duration like 90d, 12w or 6h, got {text!r}")
        seconds = round(float(m.group(1)) * _UNITS[m.group(2)])
    if seconds <= 0:
        raise ValueError(f"{name}: must be longer than zero, got {text!r}")
    return seconds


def _seconds(value: Any, name: str, positive: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name}: expected seconds (a number), got {value!r}")
    if not math.isfinite(float(value)) or float(value) != int(value):
        raise ValueError(f"{name}: expected whole seconds, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name}: must be longer than zero, got {value!r}")
    return int(value)


def windows(
    first_time: int,
    last_time: int,
    in_sample: int,
    out_of_sample: int,
    *,
    anchored: bool = False,
    step: int | None = None,
) -> list[Window]:
    """The walk-forward windows over ``[first_time, last_time)`` (``last_time`` exclusive: pass
    the end of the data, e.g. the last bar's time plus one bar). See the module docstring."""
    first = _seconds(first_time, "first_time", positive=False)
    last = _seconds(last_time, "last_time", positive=False)
    is_len = _seconds(in_sample, "in_sample", positive=True)
    oos_len = _seconds(out_of_sample, "out_of_sample", positive=True)
    stride = oos_len if step is None else _seconds(step, "step", positive=True)
    if last <= first:
        raise ValueError(f"last_time: must be after first_time ({first}), got {last}")
    if is_len + oos_len > last - first:
        raise ValueError(
            f"in_sample: in_sample + out_of_sample ({(is_len + oos_len) / DAY:g} days) is longer "
            f"than the data ({(last - first) / DAY:g} days): no window fits"
        )
    count = (last - first - is_len - oos_len) // stride + 1
    if count > MAX_WINDOWS:
        raise ValueError(f"step: {count:,} windows, more than {MAX_WINDOWS:,}: use a longer step")
    out = []
    for k in range(count):
        start = first if anchored else first + k * stride
        is_end = first + is_len + k * stride
        out.append(Window(start, is_end, is_end, is_end + oos_len))
    return out


# --------------------------------------------------------------------------- metrics


def _finite(x: Any) -> float | None:
    if (
        x is None
        or isinstance(x, bool)
        or not isinstance(x, int | float | np.integer | np.floating)
    ):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _is_nested(summary: Mapping[str, Any]) -> bool:
    return any(isinstance(summary.get(k), Mapping) for k in ("returns", "trades", "drawdown"))


def _leaves(prefix: str, value: Any, out: dict[str, float | None]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _leaves(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        out[prefix] = _finite(value)


def flat_fields(summary: Mapping[str, Any]) -> dict[str, float | None]:
    """The numeric fields a metric can name (see the module docstring)."""
    out: dict[str, float | None] = {}
    if _is_nested(summary):
        for name, path in FIELDS.items():
            node: Any = summary
            for key in path:
                node = node.get(key) if isinstance(node, Mapping) else None
            out[name] = _finite(node)
        for key, value in summary.items():
            if key not in _NESTED_SKIP and isinstance(value, Mapping):
                _leaves(str(key), value, out)
        return out
    for key, value in summary.items():
        if value is None or (
            isinstance(value, int | float | np.integer | np.floating)
            and not isinstance(value, bool)
        ):
            out[str(key)] = _finite(value)
    return out


def per_period_sharpe(
    annualized: float | None, periods_per_year: int = TRADING_DAYS
) -> float | None:
    """An annualized Sharpe (``metrics.summarize``: daily × √252) back to per period (per day)."""
    x = _finite(annualized)
    return None if x is None else x / math.sqrt(periods_per_year)


_FUNCS: dict[str, tuple[Callable[..., float], int, int]] = {
    "min": (min, 1, 64),
    "max": (max, 1, 64),
    "abs": (abs, 1, 1),
    "log": (math.log, 1, 1),
    "sqrt": (math.sqrt, 1, 1),
}
_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: math.pow,
}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


class _Missing(Exception):
    """An operand is None/NaN: the expression has no value."""


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


@dataclass(frozen=True)
class Metric:
    """A checked metric: call it with a summary (nested or flat) to get its value or None."""

    text: str
    tree: ast.expr = field(repr=False, compare=False)
    names: tuple[str, ...] = ()

    def __call__(self, summary: Mapping[str, Any]) -> float | None:
        fields = flat_fields(summary)
        unknown = [n for n in self.names if n not in fields]
        if unknown:
            known = ", ".join(sorted(k for k in fields if "." not in k)) or "none"
            raise MetricError(
                f"metric {self.text!r}: unknown field {unknown[0]!r} (fields: {known}; "
                "nested summaries also take dotted paths like returns.sharpe)"
            )
        try:
            value = _evaluate(self.tree, fields)
        except (_Missing, ZeroDivisionError, OverflowError, ValueError):
            return None
        return value if math.isfinite(value) else None


def _evaluate(node: ast.expr, fields: Mapping[str, float | None]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name | ast.Attribute):
        value = fields[_dotted(node) or ""]
        if value is None:
            raise _Missing
        return value
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, fields)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        a = _evaluate(node.left, fields)
        b = _evaluate(node.right, fields)
        return float(_BINOPS[type(node.op)](a, b))
    if isinstance(node, ast.Call):
        fn = _FUNCS[node.func.id][0]  # type: ignore[union-attr]
        return float(fn(*(_evaluate(a, fields) for a in node.args)))
    raise MetricError(f"cannot evaluate {ast.dump(node)}")  # unreachable after _check


def _check(node: ast.AST, text: str, names: list[str]) -> None:
    def bad(what: str) -> MetricError:
        return MetricError(
            f"metric {text!r}: {what} is not allowed (use field names, numbers, + - * / **, "
            "parentheses and min max abs log sqrt)"
        )

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise bad(f"the constant {node.value!r}")
        return
    if isinstance(node, ast.Name | ast.Attribute):
        name = _dotted(node)  # type: ignore[arg-type]
        if name is None:
            raise bad("an attribute of an expression")
        if name in _FUNCS:
            raise bad(f"the function name {name!r} without a call")
        if name not in names:
            names.append(name)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise bad(f"the operator {type(node.op).__name__}")
        _check(node.operand, text, names)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise bad(f"the operator {type(node.op).__name__}")
        _check(node.left, text, names)
        _check(node.right, text, names)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS:
            what = node.func.id if isinstance(node.func, ast.Name) else "this"
            raise bad(f"the function {what!r}")
        _, lo, hi = _FUNCS[node.func.id]
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise bad("a keyword or starred argument")
        if not lo <= len(node.args) <= hi:
            raise MetricError(
                f"metric {text!r}: {node.func.id}() takes "
                f"{lo if lo == hi else f'{lo} or more'} argument(s), got {len(node.args)}"
            )
        for a in node.args:
            _check(a, text, names)
        return
    raise bad(type(node).__name__)


@lru_cache(maxsize=256)
def _compile(text: str) -> Metric:
    if not isinstance(text, str) or not text.strip():
        raise MetricError(f"metric: expected a field name or an expression, got {text!r}")
    if len(text) > 1000:
        raise MetricError("metric: longer than 1000 characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise MetricError(f"metric {text!r}: not a valid expression ({exc.msg})") from None
    names: list[str] = []
    _check(tree.body, text, names)
    return Metric(text, tree.body, tuple(names))


def compile_metric(metric: str, fields: Iterable[str] | None = None) -> Metric:
    """Check ``metric`` once; with ``fields`` (e.g. ``[*FIELDS, *grid_keys]``) unknown names
    are reported now rather than at the first evaluation (dotted paths into a summary's
    sections, ``returns.sortino``, are left to the evaluation)."""
    compiled = _compile(metric)
    if fields is not None:
        known = set(fields)
        unknown = [
            n for n in compiled.names if n not in known and n.split(".")[0] not in SUMMARY_SECTIONS
        ]
        if unknown:
            raise MetricError(
                f"metric {metric!r}: unknown field {unknown[0]!r} "
                f"(fields: {', '.join(sorted(known))})"
            )
    return compiled


def metric_value(summary: Mapping[str, Any], metric: str) -> float | None:
    """The value of ``metric`` for one summary (None when it has none)."""
    return _compile(metric)(summary)


def select(summaries: Sequence[Mapping[str, Any]], metric: str) -> int:
    """Index of the best summary by ``metric``: highest value, None/NaN never wins, ties go to
    the lowest index."""
    if not summaries:
        raise ValueError("summaries: empty, nothing to select from")
    evaluate = _compile(metric)
    best: int | None = None
    best_value = -math.inf
    for i, summary in enumerate(summaries):
        value = evaluate(summary)
        if value is not None and (best is None or value > best_value):
            best, best_value = i, value
    if best is None:
        raise ValueError(
            f"summaries: no configuration has a value for {metric!r} "
            "(e.g. no trades, or fewer than two days)"
        )
    return best


def metric_ratio(is_value: float | None, oos_value: float | None) -> float | None:
    """Out-of-sample / in-sample value; None unless both exist and the in-sample one is > 0."""
    a, b = _finite(is_value), _finite(oos_value)
    if a is None or b is None or a <= 0:
        return None
    return b / a


# --------------------------------------------------------------------------- stitching


def stitch(
    oos_curves: Sequence[OosCurve | tuple[float, Sequence[tuple[int, float]]]],
    start_equity: float,
) -> list[tuple[int, float]]:
    """Chain the windows' out-of-sample returns into one curve starting at ``start_equity``."""
    start = _finite(start_equity)
    if start is None or start <= 0:
        raise ValueError(f"start_equity: must be a positive amount, got {start_equity!r}")
    out: list[tuple[int, float]] = []
    carried = start
    last_time: int | None = None
    for k, raw in enumerate(oos_curves):
        curve = raw if isinstance(raw, OosCurve) else OosCurve(*raw)
        initial = _finite(curve.initial)
        if initial is None or initial <= 0:
            raise ValueError(
                f"oos_curves[{k}]: initial equity must be positive, got {curve.initial!r}"
            )
        first_t = int(curve.points[0][0]) if len(curve.points) else None
        anchor = []
        if curve.start is not None and (first_t is None or int(curve.start) < first_t):
            anchor = [(int(curve.start), initial)]
        first_point = True
        for t_raw, e_raw in [*anchor, *curve.points]:
            t = int(t_raw)
            e = _finite(e_raw)
            if e is None:
                raise ValueError(f"oos_curves[{k}]: equity at {t} is not a number: {e_raw!r}")
            value = carried * e / initial if carried > 0 else carried
            if not first_point and t == last_time:
                out[-1] = (t, value)  # two points at one time in a window: the later one holds
                continue
            if last_time is not None and t <= last_time:
                where = "overlaps the previous window" if first_point else "is not increasing"
                raise ValueError(f"oos_curves[{k}]: time {t} {where} (previous {last_time})")
            first_point = False
            out.append((t, value))
            last_time = t
        if out and (curve.points or anchor):
            carried = out[-1][1]
    return out


# --------------------------------------------------------------------------- Sharpe statistics


def return_moments(returns: Sequence[float] | np.ndarray) -> Moments:
    """Per-period Sharpe, skewness and kurtosis of a return series (see ``Moments``)."""
    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    n = int(r.size)
    if n < 2:
        return Moments(None, 0.0, 3.0, n)
    mean = float(r.mean())
    std = float(r.std(ddof=1))
    dev = r - mean
    m2 = float(np.mean(dev**2))
    if std <= 1e-15 or m2 <= 0:
        return Moments(None, 0.0, 3.0, n)
    skew = float(np.mean(dev**3)) / m2**1.5
    kurt = float(np.mean(dev**4)) / m2**2
    return Moments(mean / std, skew, kurt, n)


def _check_number(value: Any, name: str) -> float:
    x = _finite(value)
    if x is None:
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return x


def probabilistic_sharpe(
    observed_sr: float,
    benchmark_sr: float,
    n_returns: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """P(true Sharpe > ``benchmark_sr``) given the observed per-period Sharpe over ``n_returns``
    periods with that skewness and (plain) kurtosis (Bailey & López de Prado 2012)."""
    sr = _check_number(observed_sr, "observed_sr")
    bench = _check_number(benchmark_sr, "benchmark_sr")
    g3 = _check_number(skewness, "skewness")
    g4 = _check_number(kurtosis, "kurtosis")
    if isinstance(n_returns, bool) or not isinstance(n_returns, int | np.integer) or n_returns < 2:
        raise ValueError(f"n_returns: expected an integer >= 2, got {n_returns!r}")
    if g4 < 1 + g3 * g3 - 1e-9:
        raise ValueError(
            f"kurtosis: must be >= 1 + skewness² ({1 + g3 * g3:g}) — plain kurtosis, 3 for "
            f"normal returns, not excess kurtosis; got {g4!r}"
        )
    variance = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if variance <= 0:
        return 1.0 if sr > bench else 0.0
    z = (sr - bench) * math.sqrt(n_returns - 1) / math.sqrt(variance)
    return _NORMAL.cdf(z)


def expected_max_sharpe(n_trials: int, trials_variance: float) -> float:
    """The expected maximum per-period Sharpe of ``n_trials`` independent trials with true
    Sharpe 0 whose Sharpe estimates have variance ``trials_variance`` (False Strategy Theorem)."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise ValueError(f"n_trials: expected an integer >= 1, got {n_trials!r}")
    v = _check_number(trials_variance, "trials_variance")
    if v < 0:
        raise ValueError(f"trials_variance: must be >= 0, got {trials_variance!r}")
    if n_trials == 1 or v == 0:
        return 0.0
    n = float(n_trials)
    z = (1 - EULER_GAMMA) * _NORMAL.inv_cdf(1 - 1 / n) + EULER_GAMMA * _NORMAL.inv_cdf(
        1 - 1 / (n * math.e)
    )
    return math.sqrt(v) * z


def trials_variance(trial_srs: Iterable[float | None]) -> float:
    """Sample variance (ddof 1) of the finite trial Sharpes; 0 with fewer than two."""
    values = [x for x in (_finite(v) for v in trial_srs) if x is not None]
    if len(values) < 2:
        return 0.0
    return float(np.var(np.asarray(values), ddof=1))


def deflated_sharpe(
    observed_sr: float,
    trial_srs: Iterable[float | None],
    n_returns: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    *,
    n_trials: int | None = None,
    variance: float | None = None,
) -> float:
    """The deflated Sharpe ratio (Bailey & López de Prado 2014): the probability that the true
    per-period Sharpe exceeds the maximum expected from ``N`` trials of no skill.

    ``N`` is ``n_trials`` or the number of ``trial_srs``; the variance of the trials' Sharpes is
    ``variance`` or the sample variance of ``trial_srs`` (None/NaN trials ignored)."""
    trials = list(trial_srs)
    n = len(trials) if n_trials is None else n_trials
    v = trials_variance(trials) if variance is None else variance
    benchmark = expected_max_sharpe(n, v)
    return probabilistic_sharpe(observed_sr, benchmark, n_returns, skewness, kurtosis)


def dsr_verdict(dsr: float | None, n_trials: int | None = None) -> str:
    """The deflated Sharpe ratio in plain words."""
    tried = f"{n_trials:,} configurations" if n_trials else "the configurations"
    if dsr is None:
        return "not available: too few days of out-of-sample returns to judge"
    if dsr >= DSR_THRESHOLD:
        return (
            f"likely genuine: after allowing for {tried} tried, the chance that the true Sharpe "
            f"beats the best expected from luck is {dsr:.0%} (at least {DSR_THRESHOLD:.0%})"
        )
    return (
        f"a lucky maximum: with {tried} tried, a Sharpe ratio this high is what chance alone "
        f"tends to produce (deflated Sharpe {dsr:.2f} < {DSR_THRESHOLD:.2f})"
    )


# --------------------------------------------------------------------------- assembling a run


@dataclass(frozen=True)
class WindowResult:
    """One window's outcome: the configuration chosen in-sample and how it did out-of-sample."""

    window: Window
    chosen: int
    params: dict[str, Any]
    is_value: float | None
    oos_value: float | None
    ratio: float | None
    is_fields: dict[str, float | None]
    oos_fields: dict[str, float | None]


@dataclass(frozen=True)
class WalkForwardResult:
    """Everything the report shows about a walk-forward (see ``walk_forward``)."""

    metric: str
    n_configurations: int
    windows: list[WindowResult]
    stitched: list[tuple[int, float]]
    start_equity: float
    final_equity: float
    total_return_pct: float
    max_drawdown_pct: float
    sharpe: float | None  # annualized (× √252) like metrics.summarize, of the stitched curve
    moments: Moments  # per-period (daily) Sharpe, skewness, kurtosis, number of daily returns
    trials_variance: float  # of the configurations' per-period in-sample Sharpe
    expected_max_sharpe: float  # per period
    dsr: float | None
    is_oos_ratio: float | None  # mean out-of-sample / mean in-sample metric over the windows

    @property
    def verdict(self) -> str:
        return dsr_verdict(self.dsr, self.n_configurations)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN), rounded: money 2 decimals, ratios 6."""

        def r(x: float | None, digits: int = 6) -> float | None:
            x = _finite(x)
            return None if x is None else (round(x, digits) or 0.0)

        def fields(d: Mapping[str, float | None]) -> dict[str, float | None]:
            return {k: r(v) for k, v in d.items() if "." not in k}

        return {
            "metric": self.metric,
            "n_configurations": self.n_configurations,
            "windows": [
                {
                    "is_start": w.window.is_start,
                    "is_end": w.window.is_end,
                    "oos_start": w.window.oos_start,
                    "oos_end": w.window.oos_end,
                    "chosen": w.chosen,
                    "params": dict(w.params),
                    "is_value": r(w.is_value),
                    "oos_value": r(w.oos_value),
                    "ratio": r(w.ratio),
                    "is_fields": fields(w.is_fields),
                    "oos_fields": fields(w.oos_fields),
                }
                for w in self.windows
            ],
            "stitched": {
                "t": [t for t, _ in self.stitched],
                "equity": [r(e, 2) for _, e in self.stitched],
            },
            "start_equity": r(self.start_equity, 2),
            "final_equity": r(self.final_equity, 2),
            "total_return_pct": r(self.total_return_pct, 4),
            "max_drawdown_pct": r(self.max_drawdown_pct, 4),
            "sharpe": r(self.sharpe),
            "sharpe_per_period": r(self.moments.sharpe),
            "skewness": r(self.moments.skewness),
            "kurtosis": r(self.moments.kurtosis),
            "n_returns": self.moments.n,
            "trials_variance": r(self.trials_variance, 10),
            "expected_max_sharpe": r(self.expected_max_sharpe),
            "dsr": r(self.dsr),
            "dsr_threshold": DSR_THRESHOLD,
            "verdict": self.verdict,
            "is_oos_ratio": r(self.is_oos_ratio),
        }


def walk_forward(
    windows: Sequence[Window],
    is_summaries: Sequence[Sequence[Mapping[str, Any]]],
    oos_summaries: Sequence[Mapping[str, Any]],
    oos_curves: Sequence[OosCurve | tuple[float, Sequence[tuple[int, float]]]],
    points: Sequence[Mapping[str, Any]],
    metric: str,
    start_equity: float,
    *,
    chosen: Sequence[int] | None = None,
) -> WalkForwardResult:
    """Assemble a walk-forward's result (see the module docstring)."""
    evaluate = _compile(metric)
    k = len(windows)
    if k == 0:
        raise ValueError("windows: empty")
    for name, seq in (
        ("is_summaries", is_summaries),
        ("oos_summaries", oos_summaries),
        ("oos_curves", oos_curves),
    ):
        if len(seq) != k:
            raise ValueError(f"{name}: {len(seq)} entries for {k} windows")
    if chosen is not None and len(chosen) != k:
        raise ValueError(f"chosen: {len(chosen)} entries for {k} windows")
    n_configs = len(points)
    for i, row in enumerate(is_summaries):
        if len(row) != n_configs:
            raise ValueError(
                f"is_summaries[{i}]: {len(row)} summaries for {n_configs} configurations (points)"
            )
    prev_end: int | None = None
    for i, w in enumerate(windows):
        if not w.is_start < w.is_end <= w.oos_start < w.oos_end:
            raise ValueError(f"windows[{i}]: in-sample must end before out-of-sample starts: {w}")
        if prev_end is not None and w.oos_start < prev_end:
            raise ValueError(f"windows[{i}]: out-of-sample overlaps the previous window's")
        prev_end = w.oos_end

    results: list[WindowResult] = []
    variances: list[float] = []
    for i, w in enumerate(windows):
        pick = select(is_summaries[i], metric) if chosen is None else int(chosen[i])
        if not 0 <= pick < n_configs:
            raise ValueError(
                f"chosen[{i}]: {pick} is not a configuration index (0..{n_configs - 1})"
            )
        is_value = evaluate(is_summaries[i][pick])
        oos_value = evaluate(oos_summaries[i])
        results.append(
            WindowResult(
                window=Window(*(int(x) for x in w)),
                chosen=pick,
                params=dict(points[pick]),
                is_value=is_value,
                oos_value=oos_value,
                ratio=metric_ratio(is_value, oos_value),
                is_fields=flat_fields(is_summaries[i][pick]),
                oos_fields=flat_fields(oos_summaries[i]),
            )
        )
        srs = [per_period_sharpe(flat_fields(s).get("sharpe")) for s in is_summaries[i]]
        if sum(x is not None for x in srs) >= 2:
            variances.append(trials_variance(srs))

    curves = [c if isinstance(c, OosCurve) else OosCurve(*c) for c in oos_curves]
    curves = [
        c if c.start is not None else c._replace(start=w.oos_start)
        for c, w in zip(curves, windows, strict=True)
    ]
    for i, (c, w) in enumerate(zip(curves, windows, strict=True)):
        outside = [t for t, _ in c.points if not w.oos_start <= int(t) < w.oos_end]
        if outside:
            raise ValueError(
                f"oos_curves[{i}]: point at {outside[0]} outside the out-of-sample period "
                f"[{w.oos_start}, {w.oos_end})"
            )
    curve = stitch(curves, start_equity)
    start = float(start_equity)
    times = np.fromiter((t for t, _ in curve), dtype=np.int64, count=len(curve))
    equity = np.fromiter((e for _, e in curve), dtype=np.float64, count=len(curve))
    moments = return_moments(daily_returns(times, equity, start))
    final = float(equity[-1]) if equity.size else start
    _, dd = drawdown_series(equity, start)
    variance = float(np.mean(variances)) if variances else 0.0
    expected = expected_max_sharpe(max(1, n_configs), variance)
    dsr = None
    if moments.sharpe is not None:
        dsr = probabilistic_sharpe(
            moments.sharpe,
            expected,
            moments.n,
            moments.skewness,
            max(moments.kurtosis, 1 + moments.skewness**2),
        )
    pairs = [
        (w.is_value, w.oos_value)
        for w in results
        if w.is_value is not None and w.oos_value is not None
    ]
    is_oos = (
        metric_ratio(float(np.mean([a for a, _ in pairs])), float(np.mean([b for _, b in pairs])))
        if pairs
        else None
    )
    return WalkForwardResult(
        metric=metric,
        n_configurations=n_configs,
        windows=results,
        stitched=curve,
        start_equity=start,
        final_equity=final,
        total_return_pct=(final / start - 1.0) * 100.0,
        max_drawdown_pct=float(dd.max()) if dd.size else 0.0,
        sharpe=None if moments.sharpe is None else moments.sharpe * math.sqrt(TRADING_DAYS),
        moments=moments,
        trials_variance=variance,
        expected_max_sharpe=expected,
        dsr=dsr,
        is_oos_ratio=is_oos,
    )
