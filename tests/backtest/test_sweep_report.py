"""The sweep's outputs as a trader uses them: results.csv (the same bytes however the sweep ran),
the chosen configuration as a sidecar.toml fragment that the real config loader accepts, and
the HTML report opened in real headless Chromium (Debian's `chromium`; CI installs it: without
it these tests FAIL), whose heat maps, ranking, stitched equity and verdict must show the data.
"""

from __future__ import annotations

import html
import io
import random
import re
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sidecar.backtest import walkforward as wf
from sidecar.backtest.metrics import iso
from sidecar.backtest.sweep_report import (
    TABLE_ROWS,
    chosen_point,
    heat_map,
    rank,
    ranked_csv,
    render_sweep_report,
    toml_fragment,
    write_sweep_report,
)
from sidecar.config import load_config
from sidecar.engine.strategies import strategy_problems
from sidecar.testing import browser
from tests.backtest.test_walkforward import synthetic_walk_forward

EVIL = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
WINDOW = (1280, 3200)
KEYS = ["strategy.params.fast", "strategy.params.slow", "risk.risk_pct", "symbol"]


def grid_rows() -> list[dict]:
    """12 configurations: fast × slow × risk on one symbol, with a made-up but fixed Sharpe
    (higher for fast=10, slow=50, risk=0.5) and one configuration without any (no trades)."""
    rows = []
    n = 0
    for fast in (5, 10, 20):
        for slow in (30, 50):
            for risk in (0.5, 1.0):
                n += 1
                sharpe = 1.0 - abs(fast - 10) / 10 + (slow - 30) / 40 - (risk - 0.5) * 0.3
                rows.append(
                    {
                        "strategy.params.fast": fast,
                        "strategy.params.slow": slow,
                        "risk.risk_pct": risk,
                        "symbol": "EURUSD",
                        "config": f"c{n:02d}",
                        "sharpe": round(sharpe, 4),
                        "calmar": round(sharpe * 2.5, 4),
                        "max_drawdown_pct": 8.0 + fast / 10,
                        "trades": 40 + fast,
                        "profit_factor": round(1 + sharpe / 5, 4),
                    }
                )
    rows[-1].update(sharpe=None, calmar=None, trades=0, profit_factor=None)  # fast 20/50/1.0
    return rows


# --------------------------------------------------------------------------- ranking & CSV


def test_rank_orders_by_metric_then_parameters_and_puts_missing_last() -> None:
    ranked = rank(grid_rows(), KEYS, "sharpe")
    assert [r["rank"] for r in ranked] == list(range(1, 13))
    top = ranked[0]
    assert (top["strategy.params.fast"], top["strategy.params.slow"], top["risk.risk_pct"]) == (
        10,
        50,
        0.5,
    )
    assert top["sharpe"] == 1.5
    assert ranked[-1]["sharpe"] is None and ranked[-1]["config"] == "c12"
    values = [r["sharpe"] for r in ranked[:-1]]
    assert values == sorted(values, reverse=True)
    # fast 5 / slow 30 and fast 20 / slow 50 both score 0.5: the tie goes by the parameters
    ties = [r for r in ranked if r["sharpe"] == 0.5]
    assert [(r["strategy.params.fast"], r["strategy.params.slow"]) for r in ties] == [
        (5, 30),
        (20, 50),
    ]


def test_ranked_csv_exact_text() -> None:
    rows = [
        {"a": 1, "b": "x", "sharpe": 0.1 + 0.2, "net_profit": 1234567.891, "config": "p1"},
        {"a": 2, "b": "y,z", "sharpe": 0.3, "net_profit": -0.0000001, "config": "p2"},
        {"a": 0.5, "b": 'q"uote', "sharpe": None, "net_profit": 1e-7, "flag": True},
        {"a": 3, "b": None, "sharpe": float("nan"), "net_profit": 2.50},
        {"a": 1, "b": "w", "sharpe": 1 / 3, "net_profit": -12.345678},
    ]
    text = ranked_csv(rows, ["a", "b"], "sharpe")
    assert text == (
        "rank,a,b,sharpe,net_profit,config,flag\n"
        "1,1,w,0.333333,-12.345678,,\n"
        "2,1,x,0.3,1234567.891,p1,\n"  # 0.30000000000000004 and 0.3 tie: a=1 before a=2
        '3,2,"y,z",0.3,0,p2,\n'  # -1e-7 shows as 0, never -0
        '4,0.5,"q""uote",,0,,true\n'  # no value: last, ties by the parameters
        "5,3,,,2.5,,\n"
    )


def test_ranked_csv_is_the_same_bytes_whatever_order_the_results_arrived_in() -> None:
    rows = grid_rows()
    expected = ranked_csv(rows, KEYS, "sharpe").encode("utf-8")
    rng = random.Random(4)
    for _ in range(6):
        shuffled = [dict(r) for r in rows]
        rng.shuffle(shuffled)
        assert ranked_csv(shuffled, KEYS, "sharpe").encode("utf-8") == expected
    # rows with the same parameters (a repeated configuration) still come out in one order
    twice = [*rows, {**rows[0], "config": "c00"}]
    again = ranked_csv(list(reversed(twice)), KEYS, "sharpe")
    assert again == ranked_csv(twice, KEYS, "sharpe")
    lines = expected.decode().splitlines()
    assert lines[0] == (
        "rank,strategy.params.fast,strategy.params.slow,risk.risk_pct,symbol,sharpe,calmar,"
        "profit_factor,max_drawdown_pct,trades,config"
    )
    assert lines[1] == "1,10,50,0.5,EURUSD,1.5,3.75,1.3,9,50,c07"
    assert len(lines) == 13


def test_ranked_csv_by_an_expression_adds_its_column() -> None:
    expr = "sharpe * (1 - max_drawdown_pct / 100)"
    text = ranked_csv(grid_rows(), KEYS, expr)
    header = text.splitlines()[0].split(",")
    assert header[:6] == ["rank", *KEYS, expr]
    first = text.splitlines()[1].split(",")
    assert first[1:4] == ["10", "50", "0.5"] and first[5] == "1.365"  # 1.5 × (1 − 9/100)


# --------------------------------------------------------------------------- TOML


def test_toml_fragment_loads_as_a_valid_sidecar_configuration(tmp_path: Path) -> None:
    point = {
        "risk.risk_pct": 0.5,
        "strategy.params.fast": 10,
        "strategy.name": "sma_cross",
        "strategy.params.slow": 50,
        "strategy.params.sl_atr": 1.75,
        "risk.one_per_symbol": False,
        "leverage.normal": 200,
        "symbol": "EURUSD",  # a label, not configuration
        "window": 3,
    }
    text = toml_fragment(point)
    assert text.startswith("# ")
    sections = re.findall(r"^\[(.+)\]$", text, re.M)
    assert sections == ["risk", "strategy", "strategy.params", "leverage"]
    assert not re.search(r"^(symbol|window) =", text, re.M)
    assert tomllib.loads(text) == {
        "risk": {"risk_pct": 0.5, "one_per_symbol": False},
        "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 50, "sl_atr": 1.75}},
        "leverage": {"normal": 200},
    }
    path = tmp_path / "sidecar.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path, env={}, extra_checks=strategy_problems)
    assert config.risk.risk_pct == 0.5 and config.risk.one_per_symbol is False
    assert config.strategy.name == "sma_cross"
    assert config.strategy.params == {"fast": 10, "slow": 50, "sl_atr": 1.75}
    assert config.leverage.normal == 200


def test_toml_values_are_exact_and_escaped() -> None:
    point = {
        "a.float": 0.1,
        "a.tiny": 1e-05,
        "a.big": 123456789.123,
        "a.whole_float": 2.0,
        "a.int": -7,
        "a.text": 'say "hi"\\ \n\ttab \x7f é',
        "a.list": [1, 2.5, "x"],
        "b.params.weird key": 1,
        "b.np": np.float64(0.25),
    }
    parsed = tomllib.loads(toml_fragment(point, header=False))
    assert parsed["a"] == {
        "float": 0.1,
        "tiny": 1e-05,
        "big": 123456789.123,
        "whole_float": 2.0,
        "int": -7,
        "text": 'say "hi"\\ \n\ttab \x7f é',
        "list": [1, 2.5, "x"],
    }
    assert isinstance(parsed["a"]["whole_float"], float) and isinstance(parsed["a"]["int"], int)
    assert parsed["b"] == {"params": {"weird key": 1}, "np": 0.25}
    # nested dicts are accepted as well as dotted keys
    assert tomllib.loads(toml_fragment({"risk": {"risk_pct": 1.5}})) == {"risk": {"risk_pct": 1.5}}


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"risk_pct": 0.5}, "risk_pct: expected a dotted configuration key"),
        ({"risk.risk_pct": None}, "risk.risk_pct: None"),
        ({"risk.risk_pct": float("nan")}, "risk.risk_pct: nan"),
        ({"strategy.params": 1, "strategy.params.fast": 5}, "strategy.params: both"),
        ({"risk.x": object()}, "risk.x: no TOML form"),
    ],
)
def test_toml_fragment_refuses_what_toml_or_the_config_cannot_hold(
    point: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        toml_fragment(point)


# --------------------------------------------------------------------------- heat maps


def test_heat_map_cells_are_the_best_over_the_other_parameters() -> None:
    rows = grid_rows()
    m = heat_map(rows, "strategy.params.fast", "strategy.params.slow", "sharpe")
    assert m.x_values == [5, 10, 20] and m.y_values == [30, 50]
    # fast=10, slow=50: risk 0.5 → 1.5, risk 1.0 → 1.35; best 1.5, mean 1.425, 2 rows
    best, mean, count = m.cells[(1, 1)]
    assert (best, mean, count) == (1.5, pytest.approx(1.425), 2)
    # fast=20, slow=50: the risk 1.0 run has no Sharpe, only the risk 0.5 one (0.5) counts
    assert m.cells[(2, 1)] == (0.5, 0.5, 1)


# --------------------------------------------------------------------------- the page


def lucky_walk_forward() -> wf.WalkForwardResult:
    """A walk-forward whose best in-sample configuration loses its edge out of sample."""
    ws, is_s, oos_s, curves, points = synthetic_walk_forward()
    return wf.walk_forward(ws, is_s, oos_s, curves, points, "sharpe", 10_000.0)


def page_rows() -> list[dict]:
    rows = grid_rows()
    rows[5]["symbol"] = EVIL  # text from the data is shown as text
    return rows


def run_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return browser.run_chromium(page.resolve().as_uri(), profile, *args, window=WINDOW)


def js_errors(dom: str) -> str:
    m = re.search(r'<div id="js-errors"[^>]*>(.*?)</div>', dom, re.S)
    assert m, "the js-errors box is missing from the DOM"
    return m.group(1).strip()


def console_errors(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or "Error" in line or ":ERROR:" in line)
    ]


def shown(x: float) -> str:
    """How the page writes a metric value: 3 decimals, a real minus sign."""
    return f"{x:.3f}".replace("-", "\u2212")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("sweep")
    result = lucky_walk_forward()
    path = write_sweep_report(
        out / "report.html",
        page_rows(),
        KEYS,
        "sharpe",
        walkforward=result,
        title="Walk-forward",
        facts={"Data": EVIL, "Symbols": "EURUSD"},
    )
    dom = run_chromium(path, out / "profile-dom", "--dump-dom")
    png = out / "report.png"
    shot = run_chromium(path, out / "profile-shot", f"--screenshot={png}")
    assert png.exists(), shot.stderr[-2000:]
    print(f"\nsweep report: {path}\nscreenshot: {png}")
    return {
        "path": path,
        "text": path.read_text("utf-8"),
        "dom": dom.stdout,
        "log": dom.stderr + shot.stderr,
        "png": png,
        "result": result,
    }


def test_page_renders_without_errors(page: dict) -> None:
    dom = page["dom"]
    assert 'data-render="ok"' in dom, "the page script did not finish"
    assert js_errors(dom) == ""
    assert not re.search(r"<html[^>]*data-js-errors", dom)
    assert console_errors(page["log"]) == []
    assert re.search(r'id="render-status"[^>]*>charts=1 heatmaps=3 rows=12<', dom)


def test_heat_maps_show_the_best_sharpe_of_each_pair(page: dict) -> None:
    rows = grid_rows()
    dom = page["dom"]
    maps = re.findall(
        r'<div class="heatmap" data-x="([^"]+)" data-y="([^"]+)">(.*?)</table>', dom, re.S
    )
    assert [(x, y) for x, y, _ in maps] == [
        ("strategy.params.fast", "strategy.params.slow"),
        ("strategy.params.fast", "risk.risk_pct"),
        ("strategy.params.slow", "risk.risk_pct"),
    ]
    for x_key, y_key, table in maps:
        xs = sorted({r[x_key] for r in rows})
        ys = sorted({r[y_key] for r in rows})
        body = re.search(r"<tbody>(.*)", table, re.S).group(1)
        grid = [re.findall(r"<td[^>]*>([^<]*)</td>", tr) for tr in body.split("</tr>")[:-1]]
        assert len(grid) == len(ys)
        for j, y in enumerate(ys):
            for i, x in enumerate(xs):
                values = [
                    r["sharpe"]
                    for r in rows
                    if r[x_key] == x and r[y_key] == y and r["sharpe"] is not None
                ]
                assert grid[j][i] == shown(max(values)), (x_key, y_key, x, y)
    # the best cell of the first map is outlined: fast 10 × slow 50 = 1.500
    assert re.search(r'<td class="top"[^>]*>1\.500</td>', maps[0][2])


def test_ranked_table_starts_with_the_best(page: dict) -> None:
    dom = page["dom"]
    body = re.search(r'<table class="ranked">.*?<tbody>(.*?)</tbody>', dom, re.S).group(1)
    first = re.findall(r"<td[^>]*>([^<]*)</td>", body.split("</tr>")[0])
    assert first[:6] == ["1", "10", "50", "0.5", "EURUSD", "1.500"]
    assert body.count("<tr>") == 12
    last = re.findall(r"<td[^>]*>([^<]*)</td>", body.split("</tr>")[-2])
    assert last[0] == "12" and last[5] == "\u2014"  # no Sharpe: last, shown as a dash


def test_walk_forward_panel_shows_the_stitched_curve_windows_and_verdict(page: dict) -> None:
    res = page["result"]
    d = res.to_dict()
    dom = page["dom"]
    host = re.search(r'<div id="chart-oos"[^>]*>', dom).group(0)
    attr = dict(re.findall(r'data-([a-z]+)="([^"]*)"', host))
    assert int(attr["drawn"]) == len(res.stitched)
    assert attr["first"] == f"{d['stitched']['equity'][0]:.2f}" == "10000.00"
    assert attr["last"] == f"{res.final_equity:.2f}"
    assert attr["max"] == f"{max(d['stitched']['equity']):.2f}"
    assert attr["windows"] == "4"
    rows = re.search(r'<table class="windows">.*?<tbody>(.*?)</tbody>', dom, re.S).group(1)
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", tr) for tr in rows.split("</tr>")[:-1]]
    assert len(cells) == 4
    for cell, w in zip(cells, res.windows, strict=True):
        assert cell[3] == "fast=8  risk.risk_pct=0.5"  # the chosen configuration's parameters
        assert cell[4] == shown(w.is_value) and cell[5] == shown(w.oos_value)
        assert cell[6] == f"{w.ratio:.2f}"
        assert cell[1].startswith(iso(w.window.is_start)[:10])
    # configurations tried, and the DSR's verdict in plain words
    assert res.dsr is not None and res.dsr < 0.95
    verdict = re.search(r'<div id="verdict" class="verdict bad">([^<]*)</div>', dom).group(1)
    assert f"{res.dsr:.3f}" in verdict and "a lucky maximum" in verdict
    assert "6 configurations" in html.unescape(verdict)
    assert re.search(r"Deflated Sharpe</div><div class=\"v neg\">" + f"{res.dsr:.2f}", dom)


def test_chosen_configuration_is_the_last_windows_choice_as_toml(page: dict) -> None:
    m = re.search(r'<pre class="config" id="chosen-toml">(.*?)</pre>', page["dom"], re.S)
    assert m
    parsed = tomllib.loads(html.unescape(m.group(1)))
    last = page["result"].windows[-1].params
    assert parsed == {"strategy": {"params": {"fast": 8}}, "risk": {"risk_pct": 0.5}}
    assert last == {"strategy.params.fast": 8, "risk.risk_pct": 0.5}


def test_no_html_injection(page: dict) -> None:
    assert "<img" not in page["text"] and 'data-pwned="1"' not in page["dom"]
    assert "<img" not in page["dom"]
    assert "&lt;img src=x onerror=" in page["text"]
    assert page["text"].count("<script") == 3  # the error hook, the data, the page script
    assert not re.search(r"<(link|iframe)\b|\bsrc=\"http|@import|url\(http", page["text"])


def test_screenshot_shows_the_equity_line(page: dict) -> None:
    img = np.asarray(Image.open(io.BytesIO(page["png"].read_bytes())).convert("RGB"))
    host = re.search(r'<div id="chart-oos"[^>]*data-rect="(\d+),(\d+),(\d+),(\d+)"', page["dom"])
    x, y, w, h = (int(g) for g in host.groups())
    assert w > 800 and h > 250 and y + h < WINDOW[1]
    chart = img[y : y + h, x : x + w, :3].astype(int)
    blue = (np.abs(chart - np.array([0x25, 0x63, 0xEB])).sum(axis=2) <= 40).sum()
    assert blue > 400, "no stitched equity line"
    # a real-size heat map cell in green (best) and one in red (worst) are on the page
    green = (np.abs(img[:, :, :3].astype(int) - np.array([142, 198, 178])).sum(axis=2) <= 30).sum()
    assert green > 200, "no green heat map cell"


def test_a_sweep_without_walk_forward(tmp_path: Path) -> None:
    path = write_sweep_report(tmp_path / "r.html", grid_rows(), KEYS, "calmar")
    dom = run_chromium(path, tmp_path / "profile", "--dump-dom")
    assert 'data-render="ok"' in dom.stdout and js_errors(dom.stdout) == ""
    assert console_errors(dom.stderr) == []
    assert re.search(r'id="render-status"[^>]*>charts=0 heatmaps=3 rows=12<', dom.stdout)
    assert 'id="walkforward"' not in dom.stdout
    m = re.search(r'id="chosen-toml">(.*?)</pre>', dom.stdout, re.S)
    parsed = tomllib.loads(html.unescape(m.group(1)))
    assert parsed == {
        "strategy": {"params": {"fast": 10, "slow": 50}},
        "risk": {"risk_pct": 0.5},
    }  # the top-ranked row; the symbol is a label, not configuration


def test_page_is_deterministic_and_big_sweeps_stay_readable(tmp_path: Path) -> None:
    res = lucky_walk_forward()
    rows = page_rows()
    a = render_sweep_report(rows, KEYS, "sharpe", res).encode()
    shuffled = list(reversed(rows))
    b = render_sweep_report(shuffled, KEYS, "sharpe", res.to_dict()).encode()
    assert a == b  # same results in another order, object or dict: the same bytes
    big = [
        {"p.a": i % 50, "p.b": i // 50, "sharpe": float(np.sin(i)), "trades": i}
        for i in range(5_000)
    ]
    text = render_sweep_report(big, ["p.a", "p.b"], "sharpe")
    body = re.search(r'<table class="ranked">.*?<tbody>(.*?)</tbody>', text, re.S).group(1)
    assert body.count("<tr>") == TABLE_ROWS
    assert "the first 200 shown (results.csv has them all)" in text
    assert len(text.encode()) < 1_000_000


def test_a_strong_out_of_sample_result_is_called_genuine() -> None:
    rng = np.random.default_rng(1)
    ws = wf.windows(wf.DAY * 20_000, wf.DAY * 20_200, 100 * wf.DAY, 25 * wf.DAY)
    points = [{"strategy.params.fast": f} for f in (5, 10)]
    from sidecar.backtest.metrics import summarize
    from tests.backtest.test_walkforward import run_from_daily_returns, summary_of

    is_s, oos_s, curves = [], [], []
    for w in ws:
        start = w.is_start
        is_s.append([summary_of(rng.normal(d, 0.01, 100), start) for d in (0.0, 0.004)])
        run = run_from_daily_returns(rng.normal(0.004, 0.01, 25), w.oos_start)
        oos_s.append(summarize(run))
        curves.append((10_000.0, [(p.time, p.equity) for p in run.equity]))
    res = wf.walk_forward(ws, is_s, oos_s, curves, points, "sharpe", 10_000.0)
    assert res.dsr is not None and res.dsr > 0.95
    text = render_sweep_report([], ["strategy.params.fast"], "sharpe", res)
    assert 'class="verdict good">' in text and "likely genuine" in text
    assert chosen_point([], ["strategy.params.fast"], "sharpe", res) == {"strategy.params.fast": 10}
