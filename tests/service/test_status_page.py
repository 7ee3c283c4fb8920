"""The status page (`GET /`), opened in real headless Chromium against a real sidecar.

A Sidecar on a real SQLite file, with its news service, behind the app `create_app` builds,
served by uvicorn on loopback. A
short session over HTTP (hello with bars, a tick that opens, the entry and exit deals, a losing
tick that sets the daily-loss lock, a heartbeat, a calendar push), then Chromium loads `/` and
the figures it shows are compared with `/v1/state`, `/v1/decisions` and `/health` fetched here.

Chromium is required (Debian package `chromium`; CI installs it): without it these tests FAIL.
Set CHROMIUM=/path/to/binary to use another build. The screenshot is kept at
`<pytest tmp dir>/status/status.png` and its path is printed (run with -s to see it).
"""

from __future__ import annotations

import io
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from PIL import Image

from sidecar.config import Config
from sidecar.service.feeds import FeedService
from sidecar.service.handler import Sidecar
from sidecar.service.http_app import create_app
from sidecar.store import Store
from sidecar.testing import browser, messages
from sidecar.testing.client import HttpClient
from sidecar.testing.server import free_port

ROWS = messages.eurusd_rows()[:311]  # bar 310 closes with an SMA cross: the tick opens
LOGIN = 4242
LOGIN2 = 5151
TOKEN = "s3cret-token"
EVIL = "<img src=x onerror=document.body.dataset.pwned=1>"  # fits the 64-char comment
EVIL_EVENT = "<script>document.body.dataset.pwned=1</script>Rate <b>decision</b>"
WINDOW = (1440, 1700)
MINUS = "\u2212"


# --------------------------------------------------------------------------- a live sidecar


class LiveSidecar:
    """create_app (+ the status page) on a real store, served by uvicorn in a thread."""

    def __init__(self, tmp: Path, token: str = "") -> None:
        config = Config.model_validate({"server": {"token": token, "db": str(tmp / "s.sqlite")}})
        self.sidecar = Sidecar(config, Store(config.server.db))
        self.feeds = FeedService(self.sidecar).start()
        self.app = app = create_app(self.sidecar)
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                _with_seed_route(app),
                host="127.0.0.1",
                port=self.port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn stopped during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        self.token = token or None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> HttpClient:
        return HttpClient("127.0.0.1", self.port, self.token)

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path)
        if token or self.token:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.feeds.stop()
        self.sidecar.close()


def _with_seed_route(app: FastAPI) -> Any:
    """Test only: `app` behind a same-origin page at /__test/seed that puts a token in
    sessionStorage (as the page's form does) and goes on to `/` in the same tab, so Chromium
    opens the page with that token. Served outside the app, so its token gate does not see it."""

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/__test/seed":
            await app(scope, receive, send)
            return
        token = dict(urllib.parse.parse_qsl(scope["query_string"].decode())).get("token", "")
        key, value = json.dumps("sidecar.status.token"), json.dumps(token).replace("<", "\\u003c")
        page = HTMLResponse(
            f"<!DOCTYPE html><script>sessionStorage.setItem({key}, {value});"
            'location.replace("/");</script>'
        )
        await page(scope, receive, send)

    return asgi


def drive_session(live: LiveSidecar) -> dict[str, Any]:
    """hello, an opening tick, the entry deal, a losing exit, a losing tick, a heartbeat and a
    calendar push; returns the opening verdict."""
    c = live.client()
    t_open = int(ROWS[310][0]) + 3600
    ack = c.send(messages.hello(login=LOGIN, bars=ROWS[:310], server=int(ROWS[309][0]) + 3600))
    assert ack["ok"], ack
    bar = ROWS[310]
    verdict = c.send(
        messages.tick(server=t_open, bid=bar[4], ask=bar[4] + 0.00007, login=LOGIN, bars=[bar])
    )
    assert verdict["action"] == "open", verdict
    assert c.send(messages.trade(1, login=LOGIN, time=t_open, comment=EVIL, position=77))["ok"]
    out = messages.trade(2, login=LOGIN, entry="out", profit=-340.0, time=t_open + 60)
    out["position"] = 77
    out["comment"] = "[sl 1.13000]"
    assert c.send(out)["ok"]
    # Equity 9,655.25: drawdown 3.45 % and a day's loss past the 3 % limit (the lock).
    v = c.send(messages.tick(server=t_open + 90, bid=bar[4], login=LOGIN, equity=9655.25))
    assert v["type"] == "verdict", v
    # A second account, on USDJPY, down 13 % from its high: reducing.
    t2 = t_open + 30
    spec = messages.USDJPY_SPEC
    assert c.send(messages.hello(login=LOGIN2, spec=spec, server=t2, msg_id="h-2"))["ok"]
    for i, equity in enumerate((10000.0, 8700.0)):
        tick = messages.tick(t2 + 10 * i, 150.0, 150.01, login=LOGIN2, symbol="USDJPY")
        tick["account"]["equity"] = tick["account"]["free_margin"] = equity
        assert c.send(tick)["type"] == "verdict"
    hb = {"v": 1, "type": "heartbeat", "id": "hb-1", "login": LOGIN, "symbol": "EURUSD"}
    hb["time"] = {"server": t_open + 95, "gmt": t_open + 95}
    assert c.send(hb)["ok"]
    now = int(time.time())
    events = [
        ("nfp", now + 2 * 3600, "USD", "high", "Non-Farm Payrolls"),
        ("ecb", now + 26 * 3600, "EUR", "high", EVIL_EVENT),
        ("pmi", now + 3 * 3600, "EUR", "low", "Low-impact PMI"),
    ]
    cal = {"v": 1, "type": "calendar", "id": "cal-1", "login": LOGIN, "source": "mt5"}
    cal["events"] = [
        {"id": i, "time_gmt": t, "currency": ccy, "importance": imp, "name": name}
        for i, t, ccy, imp, name in events
    ]
    assert c.send(cal)["ok"]
    c.close()
    return verdict


# --------------------------------------------------------------------------- chromium


def run_chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # the fetches complete within 3 s of virtual time; the 5 s refresh does not fire
    return browser.run_chromium(url, profile, *args, window=WINDOW, budget_ms=3000)


def console_problems(log: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if ("CONSOLE" in line and ("Uncaught" in line or "Error" in line))
        or "Content Security Policy" in line
    ]


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def walk(self) -> Iterator[Node]:
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.walk()

    def find_all(self, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.walk()
            if all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, **attrs: str) -> Node:
        found = self.find_all(**attrs)
        assert len(found) == 1, f"expected one element with {attrs}, found {len(found)}"
        return found[0]

    def field(self, key: str) -> Node:
        return self.find(data_k=key)


VOID = {"meta", "link", "input", "br", "img", "hr", "col", "source", "area", "base", "wbr"}


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#root", {}, None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.node)
        self.node.children.append(node)
        if tag not in VOID:
            self.node = node

    def handle_endtag(self, tag: str) -> None:
        n: Node | None = self.node
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.node = n.parent

    def handle_data(self, data: str) -> None:
        self.node.children.append(data)


def parse(dom: str) -> Node:
    tree = _Tree()
    tree.feed(dom)
    return tree.root


@dataclass
class Page:
    dom: str
    root: Node
    log: str

    @property
    def html(self) -> Node:
        return next(n for n in self.root.walk() if n.tag == "html")

    def errors(self) -> str:
        return self.root.find(id="js-errors").text.strip()


def open_page(url: str, out: Path, name: str) -> Page:
    proc = run_chromium(url, out / f"profile-{name}", "--dump-dom")
    return Page(proc.stdout, parse(proc.stdout), proc.stderr)


def num(x: float, digits: int = 2) -> str:
    """The page's number format: thousands commas, a real minus sign."""
    s = f"{abs(x):,.{digits}f}"
    return (MINUS if x < 0 and float(s.replace(",", "")) != 0 else "") + s


def signed(x: float, digits: int = 2) -> str:
    s = num(x, digits)
    return "+" + s if x > 0 and float(s.replace(",", "")) != 0 else s


# --------------------------------------------------------------------------- fixtures


@dataclass
class Session:
    live: LiveSidecar
    opened: dict[str, Any]
    state: dict[str, Any]
    health: dict[str, Any]
    decisions: list[dict[str, Any]]
    page: Page
    png: Path


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    out = tmp_path_factory.mktemp("status")
    live = LiveSidecar(out)
    try:
        opened = drive_session(live)
        _, state = live.get("/v1/state")
        _, health = live.get("/health")
        _, decisions = live.get("/v1/decisions?limit=20")
        page = open_page(live.url + "/", out, "dom")
        png = out / "status.png"
        shot = run_chromium(live.url + "/", out / "profile-shot", f"--screenshot={png}")
        assert png.exists(), shot.stderr[-2000:]
        print(f"\nstatus page screenshot: {png}")
        yield Session(live, opened, state, health, decisions["decisions"], page, png)
    finally:
        live.close()


# --------------------------------------------------------------------------- tests


def test_page_loads_without_errors(session: Session) -> None:
    page = session.page
    assert page.html.attrs.get("data-loaded") == "1", "the page never rendered its data"
    assert "data-js-errors" not in page.html.attrs, page.errors()
    assert page.errors() == ""
    assert console_problems(page.log) == []
    assert page.root.find(id="content").attrs.get("hidden") is None
    assert page.root.find(id="auth").attrs.get("hidden") is not None
    assert page.root.find(id="banner").attrs.get("hidden") is not None


def test_account_figures_match_v1_state(session: Session) -> None:
    acct, other = session.state["accounts"]
    assert acct["login"] == LOGIN and acct["mode"] == "active"
    assert acct["equity"] == 9655.25 and acct["drawdown_pct"] == 3.4475
    card = session.page.root.find(data_login=str(LOGIN))
    assert card.field("mode").text == acct["mode"]
    equity = card.field("equity")
    assert equity.text == num(acct["equity"]) == "9,655.25"
    assert float(equity.attrs["data-value"]) == acct["equity"]
    dd = card.field("drawdown_pct")
    assert float(dd.attrs["data-value"]) == acct["drawdown_pct"]
    assert dd.text == f"{num(acct['drawdown_pct'])}% of 15.0% halt"
    pnl = card.field("daily_pnl")
    assert pnl.text == signed(acct["daily_pnl"]) == f"{MINUS}344.75"
    assert "neg" in pnl.attrs["class"].split()
    day = card.field("daily_pnl_pct")
    assert day.text == f"{signed(acct['daily_pnl_pct'])}% (limit {MINUS}3.0%)"
    assert card.field("hwm").text == num(acct["anchors"]["high_water_mark"])
    assert card.field("loss_streak").text == str(acct["loss_streak"]) == "1"
    # The daily-loss lock with its end (server time), as /v1/state reports it.
    locks = card.find_all(data_k="lock")
    assert [lk["lock"] for lk in acct["locks"]] == ["daily_loss"]
    assert len(locks) == 1
    until = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(acct["locks"][0]["until_server"]))
    assert locks[0].text == f"Daily-loss lock until {until} server time"
    # The leverage cap of the account's newest verdict (and its regime from LEVERAGE_CAP).
    newest = next(d for d in session.decisions if d["login"] == LOGIN)
    cap = newest["verdict"]["leverage_cap"]
    assert card.field("leverage_cap").text.startswith(f"1:{cap} (")
    # The second account, reducing after a 13 % drawdown.
    assert other["login"] == LOGIN2 and other["mode"] == "reducing"
    card2 = session.page.root.find(data_login=str(LOGIN2))
    assert card2.field("mode").text == "reducing"
    assert "mode-reducing" in card2.attrs["class"].split()
    assert card2.field("equity").text == num(other["equity"]) == "8,700.00"
    assert card2.field("drawdown_pct").text == f"{num(other['drawdown_pct'])}% of 15.0% halt"
    assert other["mode_reason"] and other["mode_reason"] in card2.text


def test_ea_feed_and_news_match_health_and_state(session: Session) -> None:
    root = session.page.root
    ea = next(e for e in session.health["eas"] if e["login"] == LOGIN)
    row = root.find(data_ea=f"{LOGIN}/EURUSD")
    assert row.field("symbol").text == ea["symbol"] == "EURUSD"
    assert root.find(data_ea=f"{LOGIN2}/USDJPY").field("symbol").text == "USDJPY"
    sym = next(s for s in session.state["symbols"] if s["login"] == LOGIN)
    assert [c.text for c in row.children if isinstance(c, Node)][2:5] == [
        sym["timeframe"],
        str(sym["bars"]),
        "warm" if sym["warm"] else "warming up",
    ]
    assert root.find(data_feed="mt5_calendar").text.endswith("fresh")
    # The next high-impact events, soonest first; the low-impact one is not listed.
    shown = [n.text for n in root.find_all(data_k="event")]
    expected = sorted(session.state["news"]["high_impact"], key=lambda e: e["time_gmt"])
    assert shown == [e["event"] for e in expected] == ["Non-Farm Payrolls", EVIL_EVENT]


def test_decisions_and_trades_show_their_reasons(session: Session) -> None:
    root = session.page.root
    rows = [n.attrs["data-decision"] for n in root.walk() if "data-decision" in n.attrs]
    assert rows == [str(d["id"]) for d in session.decisions]  # newest first, as the API
    assert len(rows) >= 4
    opened = next(d for d in session.decisions if d["action"] == "open")
    assert opened["verdict"]["reasons"] == session.opened["reasons"]
    for d in session.decisions:
        row = root.find(data_decision=str(d["id"]))
        chips = [n.text for n in row.field("reasons").children if isinstance(n, Node)]
        assert chips == d.get("reasons", d["verdict"]["reasons"]), d["id"]
        assert row.field("kind").text.startswith(d.get("kind", "verdict"))
    chips = root.find(data_decision=str(opened["id"])).field("reasons").text
    assert any(r.startswith("SIGNAL_") and r in chips for r in session.opened["reasons"])
    # A change of mode names both ends (a journal that records them: `kind` = "mode").
    for d in session.decisions:
        if d.get("kind") == "mode":
            text = root.find(data_decision=str(d["id"])).field("kind").text
            assert text == f"mode {d['detail']['from']} \u2192 {d['detail']['to']}"
    deals = [n.attrs["data-deal"] for n in root.walk() if "data-deal" in n.attrs]
    assert deals == ["2", "1"]  # newest first
    assert root.find(data_deal="2").field("comment").text == "[sl 1.13000]"
    assert f"{MINUS}340.00" in root.find(data_deal="2").text


def test_api_text_is_escaped(session: Session) -> None:
    root = session.page.root
    assert root.find(data_deal="1").field("comment").text == EVIL
    tags = {n.tag for n in root.walk()}
    assert "img" not in tags and "b" in tags  # <b> only from the page's own markup
    assert not any(n.text == "decision" for n in root.walk() if n.tag == "b")
    scripts = [n for n in root.walk() if n.tag == "script"]
    assert len(scripts) == 2  # the error hook and the page script, nothing injected
    assert all("data-pwned" not in n.attrs for n in root.walk())


def test_screenshot_looks_drawn(session: Session) -> None:
    img = np.asarray(Image.open(io.BytesIO(session.png.read_bytes())).convert("RGB"))
    assert img.shape[:2] == (WINDOW[1], WINDOW[0])
    assert img.std() > 10, "the screenshot is blank"
    dark = (img[:40, :, :].astype(int).sum(axis=2) < 150).mean()
    assert dark > 0.8, "the header bar is missing"


def test_limits_endpoint(session: Session) -> None:
    status, limits = session.live.get("/v1/limits")
    assert status == 200
    assert limits["risk"]["drawdown_halted_pct"] == 15.0
    assert limits["risk"]["daily_loss_pct"] == 3.0


def test_page_headers(session: Session) -> None:
    with urllib.request.urlopen(session.live.url + "/", timeout=5) as resp:
        assert resp.headers["content-type"].startswith("text/html")
        csp = resp.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert resp.headers["cache-control"] == "no-store"


# --------------------------------------------------------------------------- with a token


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSidecar]:
    live = LiveSidecar(tmp_path_factory.mktemp("guarded"), token=TOKEN)
    try:
        drive_session(live)
        yield live
    finally:
        live.close()


def _no_data(page: Page) -> None:
    root = page.root
    assert page.html.attrs.get("data-loaded") is None
    assert root.find(id="content").attrs.get("hidden") is not None
    assert root.find(id="auth").attrs.get("hidden") is None
    assert root.find(id="token-form").tag == "form"
    for box in ("accounts", "eas", "feeds", "events", "decisions", "trades"):
        assert root.find(id=box).children == [], f"#{box} holds data without the token"
    assert "9,655.25" not in page.dom and "EURUSD" not in page.dom
    assert page.errors() == ""
    assert console_problems(page.log) == []


def test_token_page_without_token_shows_the_form_and_no_data(
    guarded: LiveSidecar, tmp_path: Path
) -> None:
    assert guarded.get("/v1/limits", token="wrong")[0] == 401
    page = open_page(guarded.url + "/", tmp_path, "none")
    _no_data(page)
    assert page.html.attrs.get("data-auth") == "needed"
    assert page.root.find(id="auth-msg").attrs.get("hidden") is not None


def test_token_page_with_a_wrong_token_says_so(guarded: LiveSidecar, tmp_path: Path) -> None:
    page = open_page(guarded.url + "/__test/seed?token=wrong", tmp_path, "wrong")
    _no_data(page)
    assert page.html.attrs.get("data-auth") == "refused"
    msg = page.root.find(id="auth-msg")
    assert msg.attrs.get("hidden") is None
    assert "refused this token" in msg.text


def test_token_page_with_the_token_shows_the_state(guarded: LiveSidecar, tmp_path: Path) -> None:
    page = open_page(guarded.url + f"/__test/seed?token={TOKEN}", tmp_path, "right")
    assert page.html.attrs.get("data-loaded") == "1", page.errors()
    assert page.errors() == ""
    card = page.root.find(data_login=str(LOGIN))
    assert card.field("equity").text == "9,655.25"
    assert page.root.find(id="forget").attrs.get("hidden") is None
