"""The status page: `GET /` serves one self-contained HTML page that polls the operator API.

The page (inline CSS and JS from `status_assets/`, no CDN, no external font: it works on an
offline VPS) fetches `/v1/state`, `/health`, `/v1/limits`, `/v1/decisions?limit=20` and
`/v1/trades?limit=20` every 5 s and draws the accounts (mode, locks, equity, drawdown and daily
P/L against their limits, leverage cap), the EAs and their heartbeats, the feeds, the next
high-impact events and the latest decisions and trades with their reasons.

The page itself holds no data, so it is served without the token; every fetch it makes goes
through the API's own bearer check. With `server.token` set, the page asks for the token, keeps
it in the tab's sessionStorage and sends it as `Authorization: Bearer ...`. Every string from
the API is set with `textContent`, and a Content-Security-Policy allowing only the page's own
inline script and style (by hash) and same-origin fetches backs that up.

`GET /v1/limits` (token-checked like `/v1/*`) gives the configured thresholds the page draws
the figures against; `/v1/state` reports values, not limits.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from importlib import resources
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from sidecar.page_errors import ERROR_HOOK
from sidecar.protocol import UNAUTHORIZED, encode, error_reply
from sidecar.service.handler import Sidecar

REFRESH_SECONDS = 5


_BODY = """\
<header class="top">
  <div class="row">
    <h1>MT5 Sidecar</h1>
    <span id="health" class="pill unknown">&mdash;</span>
    <div id="facts" class="facts">
      <span><b>Uptime</b><span id="uptime">&mdash;</span></span>
      <span><b>Database</b><span id="database">&mdash;</span></span>
    </div>
    <span class="grow"></span>
    <span class="live">
      <span id="live-dot" class="dot"></span><span id="live-text">loading</span>
    </span>
    <button id="forget" type="button" hidden>Forget token</button>
  </div>
</header>
<main>
  <div id="js-errors" class="errors" hidden></div>
  <div id="banner" class="banner" hidden></div>
  <section id="auth" class="auth panel" hidden>
    <h2>Token required</h2>
    <p>This sidecar has <code>server.token</code> set. Enter it to see its state; it is kept in
    this browser tab only (sessionStorage) and sent as a bearer token.</p>
    <form id="token-form" autocomplete="off">
      <input id="token-input" type="password" placeholder="token" aria-label="token">
      <button type="submit">Show status</button>
    </form>
    <div id="auth-msg" class="msg" role="alert" hidden></div>
  </section>
  <div id="content" hidden>
    <section class="panel">
      <h2>Accounts <span id="accounts-hint" class="hint"></span></h2>
      <div id="accounts" class="accounts"></div>
    </section>
    <div class="grid2">
      <section class="panel">
        <h2>Expert Advisors <span class="hint">heartbeat age as seen by the sidecar</span></h2>
        <div id="eas"></div>
      </section>
      <section class="panel">
        <h2>Feeds</h2>
        <div id="feeds"></div>
      </section>
    </div>
    <section class="panel">
      <h2>Next high-impact events <span class="hint">the news blackout windows</span></h2>
      <div id="events"></div>
    </section>
    <section class="panel">
      <h2>Latest decisions <span class="hint">newest first, the last 20 journal entries</span></h2>
      <div id="decisions"></div>
    </section>
    <section class="panel">
      <h2>Latest trades <span class="hint">newest first, the last 20 deals</span></h2>
      <div id="trades"></div>
    </section>
    <footer>Times are UTC unless marked server time (the broker's clock). The page refreshes
    every 5 s from /v1/state, /health, /v1/limits, /v1/decisions and /v1/trades.</footer>
  </div>
</main>
"""


def _asset(name: str) -> str:
    return (resources.files("sidecar.service") / "status_assets" / name).read_text("utf-8")


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_page() -> tuple[str, str]:
    """The page's HTML and the Content-Security-Policy that admits exactly its inline parts."""
    css = "\n" + _asset("status.css")
    js = "\n" + _asset("status.js")
    html = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="referrer" content="no-referrer">',
            "<title>MT5 Sidecar status</title>",
            f"<style>{css}</style>",
            f"<script>{ERROR_HOOK}</script>",
            "</head>",
            "<body>",
            _BODY,
            f"<script>{js}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src {_sha256(ERROR_HOOK)} {_sha256(js)}",
            f"style-src {_sha256(css)}",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        ]
    )
    return html, csp


def limits_report(sidecar: Sidecar) -> dict[str, Any]:
    """The configured thresholds the page draws the account figures against."""
    cfg = sidecar.config
    risk = cfg.risk
    return {
        "risk": {
            "daily_loss_pct": risk.daily_loss_pct,
            "floating_loss_pct": risk.floating_loss_pct,
            "drawdown_defensive_pct": risk.drawdown_defensive_pct,
            "drawdown_reducing_pct": risk.drawdown_reducing_pct,
            "drawdown_halted_pct": risk.drawdown_halted_pct,
            "reducing_resume_pct": risk.reducing_resume_pct,
            "halt_resume_pct": risk.halt_resume_pct,
            "max_positions": risk.max_positions,
            "loss_streak": risk.loss_streak,
            "cooldown_minutes": risk.cooldown_minutes,
        },
        "leverage": {
            "defensive": cfg.leverage.defensive,
            "normal": cfg.leverage.normal,
            "profit": cfg.leverage.profit,
        },
        "heartbeat_stale_seconds": cfg.server.heartbeat_stale_seconds,
        "broker": {"day_offset_hours": cfg.broker.day_offset_hours},
        "refresh_seconds": REFRESH_SECONDS,
    }


def register(app: FastAPI, sidecar: Sidecar, authorized: Callable[[Request], bool]) -> None:
    """Add `GET /` (the page) and `GET /v1/limits` (token-checked) to `app`."""
    html, csp = render_page()
    page = html.encode("utf-8")
    headers = {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }

    @app.get("/", include_in_schema=False)
    async def status_page() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=headers)

    @app.get("/v1/limits")
    async def limits(request: Request) -> Response:
        if not authorized(request):
            return Response(
                encode(
                    error_reply(UNAUTHORIZED, "Authorization: missing or wrong bearer token", None)
                ),
                status_code=401,
                media_type="application/json",
            )
        return Response(orjson.dumps(limits_report(sidecar)), media_type="application/json")
