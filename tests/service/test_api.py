"""The operator API over real HTTP: /health, the decision journal, trades, stats and resume.

A real `Sidecar` on a real SQLite file behind `create_app`, served by uvicorn on loopback (and a
real `sidecar serve` process for the default install's /health). Clients speak plain HTTP.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from sidecar.config import Config
from sidecar.engine import kelly
from sidecar.service.handler import Sidecar
from sidecar.service.http_app import create_app
from sidecar.store import Store
from sidecar.testing import messages as M
from sidecar.testing.client import HttpClient
from sidecar.testing.server import SidecarProcess, free_port

ROWS = M.eurusd_rows()[:311]  # bar 310 closes with an SMA cross: the tick on it opens
T0 = int(ROWS[310][0]) + 7 * 86400  # the plain session, a week after 7002 opens (GMT = server)
HOLDS = 20  # plain holds before the drawdown halts login 7001
HALTED_TICKS = 6
DAY = 86400


class Live:
    """create_app on a real store, served by uvicorn in a thread."""

    def __init__(self, tmp: Path, **sections: Any) -> None:
        config = Config.model_validate({"server": {"db": str(tmp / "s.sqlite")}, **sections})
        self.sidecar = Sidecar(config, Store(config.server.db))
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_app(self.sidecar),
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
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        self.http = HttpClient("127.0.0.1", self.port)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
        """(status, JSON or text body, content type)."""
        self.http._conn.request("GET", path, headers=headers or {})
        resp = self.http._conn.getresponse()
        body = resp.read()
        ctype = resp.getheader("content-type", "")
        data = json.loads(body) if ctype.startswith("application/json") else body.decode()
        return resp.status, data, ctype

    def header(self, path: str, name: str) -> str | None:
        self.http._conn.request("GET", path)
        resp = self.http._conn.getresponse()
        resp.read()
        return resp.getheader(name)

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        status, raw = self.http.request("POST", path, json.dumps(body).encode())
        return status, json.loads(raw)

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)
        self.sidecar.close()


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _session(live: Live) -> None:
    """Login 7001: holds, a halt, a resume, holds again. Login 7002: an open, then the same
    signal refused while its position is open. Deals: 7003 with an edge, 7004 three losses."""
    send = live.http.send
    assert send(M.hello(login=7001, bars=ROWS[:50], server=T0))["ok"]
    for i in range(HOLDS):
        v = send(M.tick(server=T0 + 1 + i, bid=1.1, login=7001, msg_id=f"a-{i}"))
        assert v["action"] == "hold" and v["mode"] == "active"
    for i in range(HALTED_TICKS):
        v = send(M.tick(server=T0 + 100 + i, bid=1.1, login=7001, equity=8400.0, msg_id=f"b-{i}"))
        assert v["mode"] == "halted"
    status, body = live.post("/v1/resume", {"login": 7001, "reason": "checked"})
    assert status == 200 and body["mode"] == "active"
    for i in range(3):
        v = send(M.tick(server=T0 + 200 + i, bid=1.1, login=7001, equity=8400.0, msg_id=f"c-{i}"))
        assert v["mode"] == "active"

    t = ROWS[309][0] + 3600
    assert send(M.hello(login=7002, bars=ROWS[:310], server=t))["ok"]
    bid = ROWS[310][4]
    v = send(M.tick(server=t + 3600, bid=bid, ask=bid + 7e-5, login=7002, bars=[ROWS[310]]))
    assert v["action"] == "open", v
    pos = M.position(ticket=1, side=v["open"]["side"], price_open=bid)
    for i in range(3):
        v = send(
            M.tick(
                server=t + 3601 + i,
                bid=bid,
                ask=bid + 7e-5,
                login=7002,
                positions=[pos],
                msg_id=f"r-{i}",
            )
        )
        assert v["action"] == "hold" and v["reasons"][0].startswith("RISK_"), v

    deal = 100
    for login, results in ((7003, (200.0, -100.0, 200.0, 200.0, -100.0)), (7004, (-50.0,) * 3)):
        for n, profit in enumerate(results):
            when = T0 - 3 * DAY + n * DAY  # one position a day
            for entry, p, sym in (("in", 0.0, "EURUSD"), ("out", profit, "EURUSD")):
                deal += 1
                ack = send(
                    M.trade(
                        deal,
                        login=login,
                        entry=entry,
                        profit=p,
                        time=when + (60 if entry == "out" else 0),
                        position=login * 10 + n,
                        symbol=sym,
                        commission=-1.0 if entry == "in" else 0.0,
                    )
                )
                assert ack["type"] == "ack"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    server = Live(
        tmp_path_factory.mktemp("api"),
        sizing={"kelly_min_trades": 4, "kelly_trades": 50},
    )
    try:
        _session(server)
        yield server
    finally:
        server.close()


def _error(body: Any, code: str = "BAD_REQUEST") -> str:
    assert body["v"] == 1 and body["type"] == "error" and body["ok"] is False, body
    assert body["error"]["code"] == code, body
    return body["error"]["message"]


# ------------------------------------------------------------------ /health


def test_health_of_a_default_install_is_ok_with_optional_sources_disabled(tmp_path: Path) -> None:
    with SidecarProcess(tmp_path / "d.sqlite", env={"EODHD_API_TOKEN": ""}) as proc:
        status, health = proc.http().get("/health")
    assert status == 200 and health["status"] == "ok", health
    assert health["problems"] == [] and health["ready"] is True
    assert health["sources"]["eodhd"]["status"] == "disabled"
    assert "EODHD_API_TOKEN" in health["sources"]["eodhd"]["reason"]
    assert health["sources"]["mt5_calendar"]["status"] == "disabled"
    assert health["news"]["enabled"] is False


def test_health_degrades_only_for_a_stale_ea_and_is_down_without_a_database(
    tmp_path: Path,
) -> None:
    server = Live(tmp_path)
    try:
        assert server.http.send(M.hello(login=1, server=T0))["ok"]
        status, health, _ = server.get("/health")
        assert status == 200 and health["status"] == "ok" and health["problems"] == []
        assert health["eas"][0]["stale"] is False
        # The EA went quiet: its last heartbeat is older than heartbeat_stale_seconds.
        server.sidecar.heartbeats[(1, "EURUSD")].received -= 1000
        status, health, _ = server.get("/health")
        assert status == 200 and health["status"] == "degraded"
        assert health["problems"] == [health["problems"][0]]
        assert health["problems"][0].startswith("ea 1/EURUSD: no heartbeat for 10")
        server.sidecar.store._conn.close()  # the database stops answering
        status, health, _ = server.get("/health")
        assert status == 503 and health["status"] == "down" and health["ready"] is False
    finally:
        server.server.should_exit = True
        server.thread.join(10)


# ------------------------------------------------------------------ /v1/decisions


def _all(live: Live, query: str) -> list[dict[str, Any]]:
    status, body, _ = live.get(f"/v1/decisions?{query}")
    assert status == 200, body
    return body["decisions"]


def test_holds_are_runs_and_changes_refusals_locks_and_opens_are_kept(live: Live) -> None:
    rows = _all(live, "login=7001&limit=1000")
    kinds = [(r["kind"], r["mode"], r["count"]) for r in reversed(rows)]
    # The drawdown also turns the leverage regime defensive (and back after the resume).
    assert kinds == [
        ("hold", "active", HOLDS),
        ("mode", "halted", 1),
        ("regime", "halted", 1),
        ("lock", "halted", HALTED_TICKS),
        ("mode", "active", 1),
        ("regime", "active", 1),
        ("lock", "active", 3),  # the 16% loss of the day still locks entries
    ], kinds
    first = rows[-1]
    assert first["gmt"] == T0 + 1 and first["last_gmt"] == T0 + HOLDS
    assert first["gmt_iso"] == _iso(T0 + 1) and first["last_gmt_iso"] == _iso(T0 + HOLDS)
    assert first["request_id"] == "a-0" and first["last_request_id"] == f"a-{HOLDS - 1}"
    assert first["codes"][0] == "DATA_WARMUP" and first["reasons"][0].startswith("DATA_WARMUP")
    assert first["verdict"]["valid_until_iso"] == _iso(first["verdict"]["valid_until"])
    assert rows[-2]["detail"] == {"from": "active", "to": "halted"}
    assert rows[-3]["detail"] == {"from": "normal", "to": "defensive"}
    lock = rows[-4]
    assert lock["codes"][0] == "MODE_HALTED" and lock["last_reasons"][0].startswith("MODE_HALTED")
    assert rows[-5]["detail"] == {"from": "halted", "to": "active"}
    assert rows[-6]["detail"] == {"from": "defensive", "to": "normal"}
    assert rows[0]["codes"][0] == "RISK_DAILY_LOSS"

    opened = _all(live, "login=7002&limit=1000")
    assert [r["kind"] for r in reversed(opened)][-2:] == ["verdict", "refusal"]
    refusal = opened[0]
    assert refusal["count"] == 3 and refusal["action"] == "hold"
    assert any(c.startswith("SIGNAL_") and c != "SIGNAL_NONE" for c in refusal["codes"])
    assert opened[1]["action"] == "open" and opened[1]["verdict"]["open"]["volume"] > 0


def test_filters_by_login_symbol_action_kind_reason_and_time(live: Live) -> None:
    assert [r["action"] for r in _all(live, "action=open")] == ["open"]
    assert [r["kind"] for r in _all(live, "reason=MODE_HALTED&kind=lock")] == ["lock"]
    # The halt's mode and regime change rows and the lock run carry MODE_HALTED.
    assert [r["kind"] for r in _all(live, "reason=mode_halted")] == ["lock", "regime", "mode"]
    assert _all(live, "symbol=GBPUSD") == []
    assert {r["login"] for r in _all(live, "symbol=EURUSD")} == {7001, 7002}
    # A run matches a time range it overlaps: the first run spans T0+1 .. T0+20.
    inside = _all(live, f"login=7001&from={_iso(T0 + 10)}&to={T0 + 11}")
    assert [(r["kind"], r["count"]) for r in inside] == [("hold", HOLDS)]
    iso_offset = datetime.fromtimestamp(T0 + 100, UTC).astimezone().isoformat()
    halted = _all(live, f"login=7001&from={T0 + 100}&to={iso_offset.replace('+', '%2B')}")
    assert [r["kind"] for r in halted] == ["lock", "regime", "mode"]
    naive = datetime.fromtimestamp(T0 + 200, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert [r["kind"] for r in _all(live, f"login=7001&from={naive}")] == ["lock", "regime", "mode"]


def test_pages_follow_the_cursor_to_the_end(live: Live) -> None:
    every = _all(live, "limit=1000")
    seen: list[int] = []
    query = "limit=2"
    while True:
        status, body, _ = live.get(f"/v1/decisions?{query}")
        assert status == 200 and body["count"] == len(body["decisions"]) <= 2
        seen += [r["id"] for r in body["decisions"]]
        if body["next"] is None:
            break
        query = f"limit=2&cursor={body['next']}"
    assert seen == [r["id"] for r in every] and len(seen) == len(set(seen)) > 4


def test_csv_export_by_format_or_accept_header(live: Live) -> None:
    status, text, ctype = live.get("/v1/decisions?login=7001&format=csv")
    assert status == 200 and ctype.startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["count"]) for r in rows] == [3, 1, 1, HALTED_TICKS, 1, 1, HOLDS]
    assert rows[-1]["gmt_iso"] == _iso(T0 + 1) and rows[-1]["codes"].startswith("DATA_WARMUP")
    status, text2, ctype = live.get("/v1/decisions?login=7001", {"Accept": "text/csv"})
    assert ctype.startswith("text/csv") and text2 == text
    nxt = live.header("/v1/decisions?login=7001&format=csv&limit=2", "X-Next-Cursor")
    assert nxt is not None and nxt.isdigit()
    status, text, _ = live.get("/v1/trades?login=7004&format=csv")
    trades = list(csv.DictReader(io.StringIO(text)))
    assert len(trades) == 6 and trades[0]["received_gmt_iso"].endswith("Z")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=abc", "limit: expected an integer 1..1000, got 'abc'"),
        ("limit=0", "limit: expected an integer 1..1000, got '0'"),
        ("limit=1001", "limit: expected an integer 1..1000, got '1001'"),
        ("limit=1&limit=2", "limit: given 2 times"),
        ("symbl=EURUSD", "symbl: unknown query parameter"),
        ("login=-1", "login: expected an account number"),
        ("login=99999999999999999999", "login: expected an account number"),
        ("action=buy", "action: expected one of open|hold|close|reduce, got 'buy'"),
        ("kind=x", "kind: expected one of verdict|hold|refusal|lock|mode|regime"),
        ("reason=not%20a%20code", "reason: expected a reason code"),
        ("from=yesterday", "from: expected a time as ISO 8601"),
        ("to=2024-13-01", "to: expected a time as ISO 8601"),
        ("from=99999999999999", "from: expected a time as ISO 8601"),
        ("from=2024-05-02&to=2024-05-01", "from: must be <= to"),
        ("cursor=abc", "cursor: expected the `next` of a previous reply"),
        ("format=xml", "format: expected one of json|csv, got 'xml'"),
        ("symbol=%00", "symbol: expected a symbol name"),
    ],
)
def test_bad_queries_are_400_in_the_protocol_error_shape(
    live: Live, query: str, message: str
) -> None:
    status, body, ctype = live.get(f"/v1/decisions?{query}")
    assert status == 400 and ctype.startswith("application/json"), body
    assert _error(body).startswith(message), body


def test_the_exact_error_body_of_a_bad_limit(live: Live) -> None:
    status, body, _ = live.get("/v1/decisions?limit=abc")
    assert status == 400
    assert body == {
        "v": 1,
        "type": "error",
        "id": None,
        "ok": False,
        "error": {
            "code": "BAD_REQUEST",
            "message": "limit: expected an integer 1..1000, got 'abc'",
        },
    }


# ------------------------------------------------------------------ /v1/trades


def test_trades_filter_page_and_give_iso_times(live: Live) -> None:
    status, body, _ = live.get("/v1/trades?login=7003&action=close")
    assert status == 200 and body["count"] == 5 and body["next"] is None
    assert all(t["entry"] == "out" for t in body["trades"])
    assert [t["profit"] for t in body["trades"]] == [-100.0, 200.0, 200.0, -100.0, 200.0]
    first = body["trades"][0]
    assert first["time_server_iso"] == _iso(first["time"])[:-1]
    assert first["received_gmt_iso"] == _iso(first["received_gmt"])
    day2 = T0 - 3 * DAY + DAY
    status, body, _ = live.get(f"/v1/trades?login=7003&from={day2}&to={_iso(day2 + 60)}")
    assert [(t["entry"], t["profit"]) for t in body["trades"]] == [("out", -100.0), ("in", 0.0)]
    seen, query = [], "login=7003&limit=3"
    while query:
        status, body, _ = live.get(f"/v1/trades?{query}")
        seen += [t["deal"] for t in body["trades"]]
        query = f"login=7003&limit=3&cursor={body['next']}" if body["next"] else ""
    assert len(seen) == len(set(seen)) == 10
    assert live.get("/v1/trades?side=buy&entry=in&symbol=EURUSD")[1]["count"] == 8
    for bad in ("reason=RISK_COOLDOWN", "action=hold", "cursor=12", "entry=x", "limit=x"):
        status, body, _ = live.get(f"/v1/trades?{bad}")
        assert status == 400 and _error(body).startswith(bad.split("=")[0]), body


# ------------------------------------------------------------------ /v1/stats


def test_stats_of_an_account_with_an_edge_use_kelly(live: Live) -> None:
    status, s, _ = live.get("/v1/stats?login=7003")
    assert status == 200, s
    # Results include the entry's commission: +199, -101, +199, +199, -101.
    results = [199.0, -101.0, 199.0, 199.0, -101.0]
    pos = s["positions"]
    assert (pos["closed"], pos["wins"], pos["losses"]) == (5, 3, 2)
    assert pos["win_rate"] == pytest.approx(0.6)
    assert pos["payoff"] == pytest.approx(199 / 101)
    assert pos["profit_factor"] == pytest.approx(597 / 202)
    assert pos["expectancy"] == pytest.approx(sum(results) / 5)
    est = kelly.estimate(results, 10.0)
    k = s["kelly"]
    assert k["in_use"] is True and k["n"] == 5
    assert k["f"] == pytest.approx(est.f, abs=1e-6) and k["b"] == pytest.approx(est.b, abs=1e-6)
    assert k["why"].startswith("SIZE_KELLY") and k["risk_pct"] > 0
    assert s["pnl_by_symbol"] == [{"symbol": "EURUSD", "pnl": 395.0, "deals": 10}]
    status, recent, _ = live.get("/v1/stats?login=7003&days=1")
    assert recent["pnl_by_day"] == []  # the deals are years old
    assert s["loss_streak"]["losses"] == 1 and s["cooldown"]["active"] is False


def test_stats_report_a_loss_streak_and_cooldown(live: Live) -> None:
    status, s, _ = live.get("/v1/stats?login=7004&days=3660")
    assert status == 200
    assert s["positions"]["win_rate"] == 0.0 and s["positions"]["payoff"] is None
    assert s["positions"]["profit_factor"] == 0.0
    assert s["loss_streak"] == {"losses": 3, "cooldown_after": 3}
    last_out = T0 - 3 * DAY + 2 * DAY + 60
    assert s["cooldown"]["until_server"] == last_out + 3600
    assert s["cooldown"]["until_server_iso"] == _iso(last_out + 3600)[:-1]
    assert s["kelly"]["in_use"] is False and "kelly_min_trades (4)" in s["kelly"]["why"]
    days = [d["date"] for d in s["pnl_by_day"]]
    assert days == [_iso(T0 - 3 * DAY + n * DAY)[:10] for n in range(3)]
    assert [d["pnl"] for d in s["pnl_by_day"]] == [-51.0, -51.0, -51.0]


def test_stats_of_an_unknown_or_missing_login(live: Live) -> None:
    status, body, _ = live.get("/v1/stats?login=424242")
    assert status == 404 and "424242" in _error(body, "NOT_FOUND")
    status, body, _ = live.get("/v1/stats")
    assert status == 400 and _error(body).startswith("login: required")
    status, body, _ = live.get("/v1/stats?login=abc")
    assert status == 400 and _error(body).startswith("login:")
    status, body, _ = live.get("/v1/stats?login=7001&extra=1")
    assert status == 400 and _error(body).startswith("extra: unknown query parameter")
    status, s, _ = live.get("/v1/stats?login=7001")  # a state, no deals
    assert status == 200 and s["positions"]["closed"] == 0 and s["positions"]["win_rate"] is None


# ------------------------------------------------------------------ /v1/resume, /v1/state


def test_resume_of_an_account_that_is_not_halted_is_409(live: Live) -> None:
    status, body = live.post("/v1/resume", {"login": 7001, "reason": "again"})
    assert status == 409
    message = _error(body, "NOT_HALTED")
    assert "7001 is active" in message and "nothing to resume" in message
    status, body = live.post("/v1/resume", {"login": 31337, "reason": "x"})
    assert status == 404 and _error(body, "NOT_FOUND").startswith("login:")


def test_state_rejects_bad_parameters_in_the_error_shape(live: Live) -> None:
    status, body, _ = live.get("/v1/state?tester=maybe")
    assert status == 400 and _error(body).startswith("tester:")
    assert live.get("/v1/state?tester=true")[0] == 200
