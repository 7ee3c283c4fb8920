"""The HTML report, rendered from a realistic synthetic run and opened in real headless Chromium.

Chromium is required (Debian package `chromium`; CI installs it): without it these tests FAIL.
Set CHROMIUM=/path/to/binary to use another build. The screenshot of the main run is kept at
`<pytest tmp dir>/report/report.png` and its path is printed (run with -s to see it).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sidecar.backtest.metrics import summarize
from sidecar.backtest.model import (
    AccountSpec,
    BacktestResult,
    DecisionStats,
    EquityPoint,
    InstrumentSpec,
    Span,
    TradeRecord,
)
from sidecar.backtest.report import render_report, write_json, write_report
from sidecar.protocol import SymbolSpec
from sidecar.testing import browser

START = 1_717_372_800  # 2024-06-03 00:00 UTC, a Monday
H = 3600
EVIL = "<script>document.body.setAttribute('data-pwned','1')</script><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
WINDOW = (1280, 2400)


def spec(name: str, digits: int, point: float, commission: float) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=SymbolSpec(
            name=name,
            digits=digits,
            point=point,
            tick_size=point,
            tick_value=1.0,
            contract_size=100_000,
            volume_min=0.01,
            volume_step=0.01,
            volume_max=100.0,
            base=name[:3],
            quote=name[3:],
        ),
        commission_per_lot=commission,
    )


def market_hours(n: int) -> list[int]:
    """n H1 bar times from START, skipping Saturdays and Sundays (UTC)."""
    out: list[int] = []
    t = START
    while len(out) < n:
        if (t // 86_400 + 3) % 7 < 5:  # 1970-01-01 was a Thursday: (days + 3) % 7 = weekday
            out.append(t)
        t += H
    return out


def make_result(n_points: int = 3000, n_trades: int = 30, seed: int = 7) -> BacktestResult:
    """A run with a gentle uptrend, a ~14 % drawdown (reducing span) in the middle, a news
    blackout, ~30 trades on two symbols, refusals and a config holding secrets and HTML."""
    rng = np.random.default_rng(seed)
    times = market_hours(n_points)
    # Trades one after another; equity = balance + the open trade's floating profit, which
    # walks (a Brownian bridge) to the trade's result. Trades in the middle third lose.
    slots = np.linspace(5, n_points - 40, n_trades + 1).astype(int)
    balance = np.full(n_points, 10_000.0)
    floating = np.zeros(n_points)
    open_at = np.zeros(n_points)
    trades: list[TradeRecord] = []
    running = 10_000.0
    for k in range(n_trades):
        i = int(slots[k])
        j = int(i + (slots[k + 1] - i) * rng.uniform(0.35, 0.8))
        losing_phase = 0.35 < k / n_trades < 0.6
        if losing_phase:
            r_multiple = 1.2 if k % 4 == 0 else -1.0
        else:
            r_multiple = float(rng.choice([-1.0, 2.5]))
        risk = running * (0.04 if 0.35 < k / n_trades < 0.5 else 0.01)
        pnl = round(float(r_multiple * risk + rng.normal(0, risk * 0.15)), 2)
        n = j - i
        walk = np.cumsum(rng.normal(0, risk * 0.12, n))
        bridge = walk - np.arange(1, n + 1) / n * walk[-1] + np.arange(1, n + 1) / n * pnl
        floating[i + 1 : j + 1] = bridge
        floating[j] = 0.0
        open_at[i:j] = 1
        running += pnl
        balance[j:] = running
        sym = "EURUSD" if k % 3 else "GBPUSD"
        side = "buy" if k % 2 == 0 else "sell"
        price = 1.0850 + 0.0007 * k if sym == "EURUSD" else 1.2710 + 0.0009 * k
        sign = 1 if side == "buy" else -1
        exit_price = price + sign * pnl / 10_000 * 0.01
        reasons = (
            f"SIGNAL_SMA_CROSS side={side} fast=10 slow=30",
            f"SIZE_RISK risk_pct={risk / running * 100:.1f}",
            "LEVERAGE_CAP cap=300 regime=normal",
        )
        if k == 4:
            reasons = (*reasons, EVIL)
        trades.append(
            TradeRecord(
                position=500 + k,
                symbol=sym,
                side=side,  # type: ignore[arg-type]
                volume=round(0.1 + 0.05 * (k % 4), 2),
                entry_time=times[i],
                entry_price=round(price, 5),
                exit_time=times[j],
                exit_price=round(exit_price, 5),
                sl=round(price - sign * 0.002, 5),
                tp=round(price + sign * 0.005, 5),
                profit=pnl,
                commission=-3.5 - 3.5 * (k % 2),
                swap=-0.42 if n > 24 else 0.0,
                exit_reason="tp" if r_multiple > 2 else "sl" if r_multiple < 0 else "expert",
                signal_id=f"sig{k:03d}",
                reasons=reasons,
            )
        )
    equity = balance + floating
    # "reducing" from a 12 % drawdown until it is back under 10 % (the default resume rule)
    peak = np.maximum.accumulate(np.maximum(equity, 10_000.0))
    dd = (peak - equity) / peak * 100
    hit = np.flatnonzero(dd >= 12.0)
    first = int(hit[0]) if hit.size else int(n_points * 0.5)
    later = np.flatnonzero(dd[first:] < 10.0)
    last = first + int(later[0]) if later.size else n_points - 1
    reducing = (times[first], times[last])
    modes = [Span(reducing[0], reducing[1], "reducing drawdown=12.4%")]
    blackout_t = times[int(n_points * 0.25)]
    blackouts = [
        Span(blackout_t - 1800, blackout_t + 3600, 'USD "Non-Farm Payrolls"'),
        Span(blackout_t + 40 * H, blackout_t + 41 * H + 1800, EVIL),
    ]
    points = [
        EquityPoint(
            time=t,
            balance=round(float(balance[i]), 2),
            equity=round(float(equity[i]), 2),
            margin=30.0 * open_at[i],
            mode="reducing" if reducing[0] <= t < reducing[1] else "active",
            leverage=float(open_at[i]) * (40.0 + (i % 17) * 6.0),
        )
        for i, t in enumerate(times)
    ]
    end = times[-1]
    total = end - times[0]
    red = reducing[1] - reducing[0]
    return BacktestResult(
        account=AccountSpec(balance=10_000.0, leverage=500, server="JustMarkets-Demo"),
        instruments={
            "EURUSD": spec("EURUSD", 5, 0.00001, 3.5),
            "GBPUSD": spec("GBPUSD", 5, 0.00001, 3.5),
        },
        timeframe="H1",
        start=times[0],
        end=end,
        bars=2 * n_points,
        config={
            "server": {"token": "s3cr3t-token", "http": "127.0.0.1:8765"},
            "feeds": {"eodhd_token": "eodhd-KEY-123", "note": EVIL},
            "alerts": {"dingtalk_webhook": "https://oapi.dingtalk.com/robot/send?access_token=abc"},
            "risk": {
                "risk_pct": 1.0,
                "max_risk_pct": 2.0,
                "daily_loss_pct": 3.0,
                "drawdown_reducing_pct": 12.0,
                "drawdown_halted_pct": 15.0,
                "max_positions": 3,
            },
            "leverage": {"defensive": 100, "normal": 300, "profit": 500},
            "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 30, "sl_atr": 2.0}},
        },
        equity=points,
        trades=trades,
        deals=[],
        modes=modes,
        blackouts=blackouts,
        decisions=DecisionStats(
            ticks=2 * n_points,
            signals=95,
            opened=n_trades,
            refused={
                "NEWS_BLACKOUT": 7,
                "RISK_COOLDOWN": 11,
                "MODE_REDUCING": 4,
                "RISK_MAX_POSITIONS": 23,
                "RISK_REWARD_RISK": 9,
                "SIZE_BELOW_MIN": 2,
                EVIL: 1,
            },
            guard_refused={"GUARD_MAX_LEVERAGE": 3, "GUARD_SPREAD": 5},
            actions={"hold": 2 * n_points - 80, "open": n_trades, "close": 44, "reduce": 6},
            mode_seconds={"active": total - red, "reducing": red},
        ),
    )


# --------------------------------------------------------------------------- chromium


def run_chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return browser.run_chromium(page.resolve().as_uri(), profile, *args, window=WINDOW)


@dataclass
class Rendered:
    html: Path
    text: str
    dom: str
    png: Path
    log: str


def render_in_chromium(result: BacktestResult, out: Path) -> Rendered:
    out.mkdir(parents=True, exist_ok=True)
    page = write_report(result, summarize(result), out / "report.html")
    dom = run_chromium(page, out / "profile-dom", "--dump-dom")
    png = out / "report.png"
    shot = run_chromium(page, out / "profile-shot", f"--screenshot={png}")
    assert png.exists(), shot.stderr[-2000:]
    return Rendered(page, page.read_text("utf-8"), dom.stdout, png, dom.stderr + shot.stderr)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    r = render_in_chromium(make_result(), tmp_path_factory.mktemp("report"))
    print(f"\nreport screenshot: {r.png}\nreport html: {r.html}")
    return r


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


def chart_rect(dom: str, chart_id: str) -> tuple[int, int, int, int]:
    m = re.search(rf'<div id="{chart_id}"[^>]*data-rect="(\d+),(\d+),(\d+),(\d+)"', dom)
    assert m, f"{chart_id} was not drawn (no data-rect)"
    x, y, w, h = (int(g) for g in m.groups())
    return x, y, w, h


def color_pixels(img: np.ndarray, rgb: tuple[int, int, int], tol: int = 40) -> int:
    diff = np.abs(img[:, :, :3].astype(int) - np.array(rgb)).sum(axis=2)
    return int((diff <= tol).sum())


# --------------------------------------------------------------------------- tests


def test_page_drew_without_errors(rendered: Rendered) -> None:
    dom = rendered.dom
    assert 'data-render="ok"' in dom, "the report script did not finish"
    assert js_errors(dom) == "", f"page errors: {js_errors(dom)}"
    assert not re.search(r"<html[^>]*data-js-errors", dom)
    assert console_errors(rendered.log) == []
    assert re.search(r'<div id="render-status"[^>]*>charts=2 trades=30</div>', dom)
    for chart in ("chart-equity", "chart-dd"):
        m = re.search(rf'<div id="{chart}"[^>]*data-drawn="(\d+)"', dom)
        assert m and int(m.group(1)) > 1000, f"{chart} drew too few points"
    # the trade list is paged: 25 rows on the first page
    tbody = re.search(r'<table class="trades">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert tbody and tbody.group(1).count("<tr>") == 25
    assert "30 of 30 trades" in dom and "page 1 / 2" in dom


def test_screenshot_shows_the_charts(rendered: Rendered) -> None:
    img = np.asarray(Image.open(io.BytesIO(rendered.png.read_bytes())).convert("RGB"))
    assert img.shape[:2] == (WINDOW[1], WINDOW[0])
    assert img.std() > 10, "the screenshot is blank"
    x, y, w, h = chart_rect(rendered.dom, "chart-equity")
    eq = img[y : y + h, x : x + w]
    assert w > 800 and h > 200
    assert color_pixels(eq, (0x25, 0x63, 0xEB)) > 500, "no equity line in the equity chart"
    assert color_pixels(eq, (0x98, 0xA2, 0xB3), 25) > 40, "no balance line"
    # reducing band (amber on white) and blackout band (violet on white)
    assert color_pixels(eq, (254, 235, 209), 18) > 1000, "no reducing band"
    assert color_pixels(eq, (237, 233, 254), 18) > 100, "no blackout band"
    x, y, w, h = chart_rect(rendered.dom, "chart-dd")
    dd = img[y : y + h, x : x + w]
    assert color_pixels(dd, (0xD9, 0x2D, 0x20), 60) > 300, "no drawdown line"
    # the charts are inside the 2400-pixel screenshot, below the cards
    assert y + h < WINDOW[1]


def test_no_html_injection(rendered: Rendered) -> None:
    text = rendered.text
    assert "<script>document" not in text and "<img src=x" not in text
    assert text.count("<script") == 3  # the error hook, the data block, the report script
    assert "&lt;script&gt;document.body.setAttribute(&#x27;data-pwned&#x27;" in text
    dom = rendered.dom
    assert 'data-pwned="1"' not in dom
    assert "<img" not in dom
    # the JS-rendered reason chip shows the payload as text
    assert '<span class="reason">&lt;script&gt;document.body' in dom


def test_secrets_masked(rendered: Rendered) -> None:
    for secret in ("s3cr3t-token", "eodhd-KEY-123", "access_token=abc"):
        assert secret not in rendered.text
    assert "&quot;dingtalk_webhook&quot;: &quot;***&quot;" in rendered.text
    assert "&quot;token&quot;: &quot;***&quot;" in rendered.text


def test_header_and_tables(rendered: Rendered) -> None:
    text = rendered.text
    for needle in (
        "sma_cross",
        "EURUSD, GBPUSD",
        "H1",
        "2024-06-03 00:00",
        "10,000.00 USD \u00b7 1:500 \u00b7 hedging",
        "fast=10",
        "leverage caps=100/300/500",
        "Monthly returns",
        "RISK_MAX_POSITIONS",
        "GUARD_SPREAD",
        "Time in breaker mode",
        "reducing",
    ):
        assert needle in text, needle
    monthly = re.search(r'<table class="monthly">.*?</table>', text, re.S)
    assert monthly and monthly.group(0).count("<tr>") == 1 + 1  # header + 2024
    assert "https://" not in text.replace("https://oapi.dingtalk.com", "")
    assert not re.search(r"<(link|iframe)\b|\bsrc=\"http|@import|url\(http", text)


def test_deterministic(tmp_path: Path) -> None:
    r1, r2 = make_result(), make_result()
    a = write_report(r1, summarize(r1), tmp_path / "a.html").read_bytes()
    b = write_report(r2, summarize(r2), tmp_path / "b.html").read_bytes()
    assert a == b
    ja = write_json(summarize(r1), tmp_path / "a.json").read_bytes()
    jb = write_json(summarize(r2), tmp_path / "b.json").read_bytes()
    assert ja == jb
    loaded = json.loads(ja)
    assert loaded["trades"]["count"] == 30
    assert loaded["config"]["server"]["token"] == "***"


def test_degenerate_run_renders_without_errors(tmp_path: Path) -> None:
    full = make_result(n_points=50, n_trades=2)
    empty = BacktestResult(
        account=full.account,
        instruments=full.instruments,
        timeframe="H1",
        start=START,
        end=START,
        bars=0,
        config={},
        equity=[],
        trades=[],
        deals=[],
        modes=[],
        blackouts=[],
        decisions=DecisionStats(),
    )
    r = render_in_chromium(empty, tmp_path)
    assert 'data-render="ok"' in r.dom and js_errors(r.dom) == ""
    assert "charts=2 trades=0" in r.dom and "No trades." in r.dom
    assert console_errors(r.log) == []


def test_million_points_stay_small(tmp_path: Path) -> None:
    n = 1_000_000
    rng = np.random.default_rng(1)
    eq = 10_000 * np.exp(np.cumsum(rng.normal(0, 0.0004, n)))
    times = START + 60 * np.arange(n)
    points = [
        EquityPoint(int(t), float(v), float(v), 0.0, "active", 0.0)
        for t, v in zip(times.tolist(), eq.tolist(), strict=True)
    ]
    base = make_result(n_points=200, n_trades=10)
    blackouts = [Span(int(t), int(t) + 5400, "USD CPI") for t in times[::2000].tolist()]
    big = BacktestResult(
        account=base.account,
        instruments=base.instruments,
        timeframe="M1",
        start=int(times[0]),
        end=int(times[-1]),
        bars=n,
        config=base.config,
        equity=points,
        trades=base.trades,
        deals=[],
        modes=base.modes,
        blackouts=blackouts,
        decisions=base.decisions,
    )
    text = render_report(big, summarize(big))
    assert len(text.encode()) < 1_500_000, len(text.encode())
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1))
    assert 1000 < len(data["equity"]["t"]) <= 4002
    # min/max buckets keep the extremes
    assert max(data["equity"]["v"]) == pytest.approx(round(float(eq.max()), 2))
    assert min(data["equity"]["v"]) == pytest.approx(round(float(eq.min()), 2))


def test_a_real_eurusd_backtest_report_draws_in_chromium(tmp_path: Path) -> None:
    """The report of `sidecar backtest` on backtesting.py's EURUSD H1, opened as a trader would."""
    from backtesting.test import EURUSD

    from sidecar.backtest.data import load_backtesting_frame
    from sidecar.backtest.model import AccountSpec
    from sidecar.backtest.runner import Backtest, Market
    from sidecar.backtest.symbols import resolve_instrument
    from sidecar.config import load_config
    from sidecar.engine.strategies import strategy_problems

    config = load_config(None, env={}, extra_checks=strategy_problems)
    market = Market(
        load_backtesting_frame(EURUSD, "EURUSD", "H1"), resolve_instrument("EURUSD", None)
    )
    result = Backtest(config, AccountSpec(leverage=500), [market]).run()
    r = render_in_chromium(result, tmp_path)
    assert 'data-render="ok"' in r.dom and js_errors(r.dom) == ""
    assert console_errors(r.log) == []
    assert re.search(rf'id="render-status"[^>]*>charts=2 trades={len(result.trades)}<', r.dom)
    img = np.asarray(Image.open(io.BytesIO(r.png.read_bytes())).convert("RGB"))
    x, y, w, h = chart_rect(r.dom, "chart-equity")
    assert img[y : y + h, x : x + w].std() > 10, "the equity chart is blank"
