"""Alert relay: Alertmanager webhooks (version 4) to DingTalk robots and Slack incoming webhooks.

Served at `POST /alerts/alertmanager` (every target) and `POST /alerts/alertmanager/<name>` (one
target) by `sidecar serve` when `[alerts]` has targets, or alone by `sidecar alert-relay`.

- Each alert is announced once per state change, per target, by fingerprint: a firing alert
  when first seen (or with a new `startsAt`), again only after `alerts.repeat_hours` if still
  firing, and once when resolved. Alertmanager's replays (retries, whole groups re-sent,
  `repeat_interval`, HA peers) send nothing.
- A target gets at most `max_per_minute` messages in any 60 s (20, DingTalk's limit): what
  does not fit waits in the outbox and goes out merged into the next message the window allows,
  so a burst costs a few messages and no alert is dropped.
- What was decided is written to SQLite (`alerts.db`) before anything is sent, and a row leaves
  the outbox only once the robot accepted a message naming it: a restart neither repeats nor
  loses an announcement.
- Answers to Alertmanager: 400 for a body that is not a v4 payload, 404 for an unknown target,
  503 when no target is configured or when sending failed in a way worth retrying (unreachable,
  timeout, HTTP 5xx, DingTalk busy): Alertmanager retries, and the retry sends what is still
  pending, once. Otherwise 200: sent, a replay, queued behind the rate limit (the relay sends it
  itself), or refused by the target (a wrong secret: logged with DingTalk's errcode, counted as
  `rejected`, and retried every 10 minutes, so a fixed configuration delivers it).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from starlette.concurrency import run_in_threadpool

from sidecar.config import AlertsConfig, Config, DingTalkTarget, SlackTarget
from sidecar.service.alerts_delivery import RESULTS, DingTalkSender, Outcome, SlackSender
from sidecar.service.alerts_format import (
    Message,
    PayloadError,
    dingtalk_messages,
    parse_payload,
    slack_messages,
)
from sidecar.service.alerts_store import AlertStore, Pending
from sidecar.service.logs import event

log = logging.getLogger("sidecar.alerts")

PATH = "/alerts/alertmanager"
MAX_BODY_BYTES = 8 * 1024 * 1024  # Alertmanager sends every alert of a group
RETRY_ERROR_S = (5.0, 15.0, 60.0, 300.0)  # the relay's own retries after an `error`
RETRY_THROTTLED_S = 60.0  # DingTalk throttles a robot for up to 10 minutes: we ask each minute
RETRY_REJECTED_S = 600.0
GIVE_UP_S = 24 * 3600.0  # announcements older than this are dropped (logged and counted)
FORGET_S = 30 * 24 * 3600.0  # announcements not refreshed in this long are forgotten
Clock = Callable[[], float]


class RelayMetrics:
    """`sidecar_alert_deliveries_total{target, result}` and `sidecar_alert_queue{target}`,
    registered on the sidecar's registry (or the relay's own when it runs alone). Labels are
    bounded: target names come from the configuration, results from a fixed list."""

    def __init__(self, registry: CollectorRegistry, relay: AlertRelay) -> None:
        self.deliveries = Counter(
            "sidecar_alert_deliveries",
            "Alert relay messages posted to a target, by result (ok, error, rate_limited, "
            "rejected; dropped: announcements given up after a day)",
            ["target", "result"],
            registry=registry,
        )
        self.queue = Gauge(
            "sidecar_alert_queue",
            "Alert announcements waiting to be sent, by target",
            ["target"],
            registry=registry,
        )
        for name in relay.targets:
            for result in RESULTS:
                self.deliveries.labels(name, result)
            self.queue.labels(name).set_function(
                lambda name=name: float(relay.store.pending_count(name))
            )


@dataclass
class Target:
    name: str
    kind: str  # dingtalk | slack
    max_per_minute: int
    sender: DingTalkSender | SlackSender
    mentions: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self, items: list[Pending]) -> list[Message]:
        if self.kind == "dingtalk":
            return dingtalk_messages(items, self.mentions)
        return slack_messages(items)


@dataclass
class Flushed:
    sent: int = 0  # messages accepted
    failed: str = ""  # the result of the failed attempt: error, rate_limited, rejected
    waiting: int = 0  # rows left in the outbox


class AlertRelay:
    def __init__(
        self,
        config: AlertsConfig,
        *,
        clock: Clock = time.time,
        registry: CollectorRegistry | None = None,
        wall_ms: Callable[[], int] | None = None,
    ) -> None:
        """`clock` drives the rate window, the repeat interval, retries and expiry (tests pass
        their own); `wall_ms` only times DingTalk signatures (the real clock by default)."""
        self.config = config
        self.clock = clock
        self.store = AlertStore(config.db)
        self.targets: dict[str, Target] = {}
        for d in config.dingtalk:
            self.targets[d.name] = _dingtalk(d, config.timeout_seconds, wall_ms)
        for s in config.slack:
            self.targets[s.name] = _slack(s, config.timeout_seconds)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = RelayMetrics(self.registry, self)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------- Alertmanager's POST

    def receive(self, raw: bytes, target: str | None = None) -> tuple[int, dict[str, Any]]:
        """Handle one webhook body: (HTTP status, JSON answer)."""
        if not self.targets:
            return 503, {"status": "error", "error": _NO_TARGETS}
        if target is not None and target not in self.targets:
            return 404, {
                "status": "error",
                "error": f"target: no alert target named {target[:64]!r}; expected one of "
                f"{', '.join(self.targets)}",
            }
        try:
            alerts, group = parse_payload(raw)
        except PayloadError as exc:
            event(log, "alerts.bad_payload", logging.WARNING, str(exc))
            return 400, {"status": "error", "error": str(exc)}
        names = [target] if target else list(self.targets)
        now = self.clock()
        queued, duplicates = self.store.decide(names, alerts, now, self.config.repeat_hours * 3600)
        fingerprints = [a["fingerprint"] for a in alerts]
        answer: dict[str, Any] = {
            "status": "ok",
            "alerts": len(alerts),
            "new": queued,
            "duplicates": duplicates,
            "targets": {},
        }
        retry = False
        for name in names:
            if not self.store.has_pending(name, fingerprints):
                answer["targets"][name] = "ok"
                continue
            flushed = self.flush(name, on_request=True)
            state = flushed.failed or ("queued" if flushed.waiting else "ok")
            answer["targets"][name] = state
            retry |= flushed.failed == "error"
        if queued or retry:
            event(
                log,
                "alerts.received",
                receiver=group["receiver"],
                alerts=len(alerts),
                new=queued,
                duplicates=duplicates,
                targets=answer["targets"],
            )
        if retry:
            answer["status"] = "retry"
            return 503, answer
        return 200, answer

    # ------------------------------------------------------------------------- sending

    def flush(self, name: str, *, on_request: bool = False) -> Flushed:
        """Send what waits for `name`, merged, as far as its rate window allows. A request
        sends at once (Alertmanager's retry is the back-off); the background loop honours the
        retry times set after a failure."""
        target = self.targets[name]
        out = Flushed()
        with target.lock:
            now = self.clock()
            self._expire(name, now)
            rows = self.store.pending(name)
            if not rows:
                return out
            if not on_request and min(p.next_at for p in rows) > now:
                out.waiting = len(rows)
                return out
            for message in target.messages(rows):
                if self.store.blocked_until(name) > now or (
                    self.store.sends_in_window(name, now) >= target.max_per_minute
                ):
                    break  # the rest waits for the window (sent merged later)
                outcome = target.sender.send(message.body)
                self.store.record_send(name, now)
                self.metrics.deliveries.labels(name, outcome.result).inc()
                if outcome.result == "ok":
                    self.store.delete(message.ids)
                    out.sent += 1
                    event(
                        log,
                        "alerts.delivered",
                        target=name,
                        alerts=len(message.ids),
                        names=sorted(set(message.names))[:20],
                        bytes=message.size(),
                    )
                    continue
                out.failed = outcome.result
                self._failed(name, target, outcome, rows, now)
                break
            out.waiting = self.store.pending_count(name)
        return out

    def _failed(
        self, name: str, target: Target, outcome: Outcome, rows: list[Pending], now: float
    ) -> None:
        attempts = max((p.attempts for p in rows), default=0)
        if outcome.result == "rate_limited":
            wait = RETRY_THROTTLED_S
            self.store.block(name, now + wait)
        elif outcome.result == "rejected":
            wait = RETRY_REJECTED_S
        else:
            wait = RETRY_ERROR_S[min(attempts, len(RETRY_ERROR_S) - 1)]
        self.store.defer(name, now + wait)
        level = logging.ERROR if outcome.result == "rejected" else logging.WARNING
        event(
            log,
            f"alerts.{outcome.result}",
            level,
            f"alert target {name} ({target.kind}): {outcome.detail}; retrying in {wait:.0f} s",
            target=name,
            kind=target.kind,
            result=outcome.result,
            detail=outcome.detail,
            errcode=outcome.errcode,
            pending=len(rows),
            retry_in_s=wait,
        )

    def _expire(self, name: str, now: float) -> None:
        old = self.store.expire(name, now - GIVE_UP_S)
        if old:
            self.metrics.deliveries.labels(name, "dropped").inc(len(old))
            event(
                log,
                "alerts.dropped",
                logging.ERROR,
                f"alert target {name}: gave up on {len(old)} announcement(s) a day old",
                target=name,
                alerts=len(old),
                names=sorted({p.alert["labels"].get("alertname", "?") for p in old})[:20],
            )

    def flush_due(self) -> None:
        """Send what waits and may go now (the background loop; tests call it directly)."""
        now = self.clock()
        self.store.prune(now - max(FORGET_S, 2 * self.config.repeat_hours * 3600))
        for name in self.store.due_targets(now):
            if name in self.targets:
                self.flush(name)

    # ------------------------------------------------------------------- background loop

    def start(self) -> AlertRelay:
        """Run flush_due every second in a daemon thread (outbox rows survive a hard stop)."""
        if self._thread is None and self.targets:
            self._thread = threading.Thread(target=self._loop, name="alert-relay", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.flush_due()
            except Exception as exc:  # keep relaying; say what broke (no secrets: no args)
                event(log, "alerts.loop_error", logging.ERROR, type(exc).__name__)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        for t in self.targets.values():
            t.sender.close()
        self.store.close()


_NO_TARGETS = "alerts: no [[alerts.dingtalk]] or [[alerts.slack]] target is configured"


def _dingtalk(d: DingTalkTarget, timeout: float, wall_ms: Callable[[], int] | None) -> Target:
    return Target(
        d.name,
        "dingtalk",
        d.max_per_minute,
        DingTalkSender(d.webhook, d.secret, timeout, wall_ms),
        dict(d.mentions),
    )


def _slack(s: SlackTarget, timeout: float) -> Target:
    return Target(s.name, "slack", s.max_per_minute, SlackSender(s.webhook, timeout))


# --------------------------------------------------------------------------------- HTTP


def register(app: FastAPI, relay: AlertRelay | None, authorized: Callable[[Request], bool]) -> None:
    """Mount `POST /alerts/alertmanager[/<target>]` on `app`. With a token configured the caller's
    gate already asked for `Authorization: Bearer <token>` (Alertmanager's webhook_configs send
    it with `http_config.authorization`); `authorized` checks again."""

    def answer(status: int, data: dict[str, Any]) -> Response:
        return Response(orjson.dumps(data), status_code=status, media_type="application/json")

    async def relay_post(request: Request, target: str | None) -> Response:
        if not authorized(request):
            return answer(401, {"status": "error", "error": _UNAUTHORIZED})
        if relay is None:
            return answer(503, {"status": "error", "error": _NO_TARGETS})
        raw = await _read(request)
        if raw is None:
            return answer(
                413, {"status": "error", "error": f"body: at most {MAX_BODY_BYTES} bytes"}
            )
        # The relay waits for the robots: in the thread pool, not on the event loop.
        status, data = await run_in_threadpool(relay.receive, raw, target)
        return answer(status, data)

    @app.post(PATH)
    async def alertmanager(request: Request) -> Response:
        return await relay_post(request, None)

    @app.post(PATH + "/{target}")
    async def alertmanager_target(target: str, request: Request) -> Response:
        return await relay_post(request, target)


_UNAUTHORIZED = "Authorization: missing or wrong bearer token"


async def _read(request: Request) -> bytes | None:
    """The body, or None past MAX_BODY_BYTES (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def relay_for(config: Config, registry: CollectorRegistry | None = None) -> AlertRelay | None:
    """The relay `sidecar serve` mounts: None (nothing opened) without a configured target."""
    if not (config.alerts.dingtalk or config.alerts.slack):
        return None
    return AlertRelay(config.alerts, registry=registry).start()


def create_relay_app(relay: AlertRelay, token: str = "") -> FastAPI:
    """The app of `sidecar alert-relay`: the relay's POST routes, `/health` and `/metrics`."""
    app = FastAPI(title="MT5 Sidecar alert relay", docs_url=None, redoc_url=None)

    def authorized(request: Request) -> bool:
        if not token:
            return True
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        return hmac.compare_digest(given.encode(), token.encode())

    register(app, relay, authorized)

    @app.get("/health")
    def health() -> Response:
        queue = {name: relay.store.pending_count(name) for name in relay.targets}
        return Response(
            orjson.dumps({"status": "ok", "targets": list(relay.targets), "queue": queue}),
            media_type="application/json",
        )

    @app.get("/metrics")
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(generate_latest(relay.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def run(config: Config) -> int:
    """`sidecar alert-relay`: serve the relay alone on `alerts.http` until stopped."""
    import uvicorn

    from sidecar.config import parse_http
    from sidecar.service.logs import setup_logging, stop_logging
    from sidecar.service.runner import (
        EXIT_CONFIG,
        StartError,
        _run_uvicorn,
        bind_http,
        start_failed,
    )

    setup_logging(config.logging.level)
    try:
        if not (config.alerts.dingtalk or config.alerts.slack):
            return start_failed("alerts", "", _NO_TARGETS.removeprefix("alerts: "), EXIT_CONFIG)
        try:
            sock = bind_http(config.alerts.http, config.server.token)
        except StartError as exc:
            return start_failed(
                exc.component.replace("server.http", "alerts.http"), exc.address, exc.error
            )
        try:
            relay = AlertRelay(config.alerts)
        except Exception as exc:
            sock.close()
            return start_failed("alerts.db", config.alerts.db, f"{type(exc).__name__}: {exc}")
        relay.start()
        host, port = parse_http(config.alerts.http)
        event(
            log,
            "alerts.start",
            http=config.alerts.http,
            db=config.alerts.db,
            targets=list(relay.targets),
            token_required=bool(config.server.token),
        )
        server = uvicorn.Server(
            uvicorn.Config(
                create_relay_app(relay, config.server.token),
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        try:
            return _run_uvicorn(server, sock)
        finally:
            relay.close()
            event(log, "alerts.stop")
    finally:
        stop_logging()
