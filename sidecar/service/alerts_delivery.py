"""Posting a message to a DingTalk robot or a Slack incoming webhook, and what the answer means.

Results (the `result` label of `sidecar_alert_deliveries_total`):
- `ok`: accepted (DingTalk: HTTP 200 and `errcode` 0; Slack: HTTP 200).
- `error`: worth retrying soon: unreachable, a timeout, HTTP 5xx, DingTalk `errcode` -1 (busy).
- `rate_limited`: the service throttles the robot (DingTalk 130101/410100, HTTP 429): wait.
- `rejected`: retrying the same request will not help: a wrong secret or token, a bad
  message (DingTalk 310000, 300001, 460101..., HTTP 4xx).
- `dropped`: the relay gave up on announcements a day old (not an answer; see alerts.py).

Nothing here puts the webhook URL, its access token, the signature or the signing secret in a
result, a log line or an exception text: a failed connection is described by its exception's
class name only (requests puts the URL in its messages).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson
import requests

RESULTS = ("ok", "error", "rate_limited", "rejected", "dropped")
DINGTALK_BUSY = {-1}
DINGTALK_THROTTLED = {130101, 410100}


@dataclass(frozen=True)
class Outcome:
    result: str  # one of RESULTS
    detail: str  # safe to log: never the URL or a secret
    errcode: int | None = None


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")),
    URL-encoded once (quote_plus), as it goes in the query string."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    if not secret:
        return webhook
    sep = "&" if "?" in webhook else "?"
    return f"{webhook}{sep}timestamp={timestamp_ms}&sign={dingtalk_sign(secret, timestamp_ms)}"


_IN_URL = re.compile(r"((?:access_token|sign|timestamp)=)[^&\s\"']+|(/services/)[^\s\"'?]+")


def redact(text: str) -> str:
    """A text with the secrets a webhook URL carries replaced by ***."""
    return _IN_URL.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class _RedactFilter(logging.Filter):
    """urllib3 logs request lines ("POST /robot/send?access_token=... HTTP/1.1") at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


_FILTER = _RedactFilter()


class _Poster:
    def __init__(self, timeout: float) -> None:
        lg = logging.getLogger("urllib3.connectionpool")
        if _FILTER not in lg.filters:
            lg.addFilter(_FILTER)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment sees the access token

    def post(self, url: str, body: dict[str, Any]) -> requests.Response | Outcome:
        try:
            return self.session.post(
                url,
                data=orjson.dumps(body),
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=(min(self.timeout, 5.0), self.timeout),
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            return Outcome("error", f"timeout ({type(exc).__name__})")
        except requests.RequestException as exc:
            return Outcome("error", f"unreachable ({type(exc).__name__})")

    def close(self) -> None:
        self.session.close()


def _http_outcome(status: int) -> Outcome:
    if status == 429:
        return Outcome("rate_limited", "HTTP 429")
    if status >= 500:
        return Outcome("error", f"HTTP {status}")
    return Outcome("rejected", f"HTTP {status}")


class DingTalkSender(_Poster):
    def __init__(self, webhook: str, secret: str, timeout: float, wall_ms: Any = None) -> None:
        super().__init__(timeout)
        self._webhook = webhook
        self._secret = secret
        # The signature's timestamp must be DingTalk's clock within an hour: the real one.
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))

    def send(self, body: dict[str, Any]) -> Outcome:
        answer = self.post(signed_url(self._webhook, self._secret, self._wall_ms()), body)
        if isinstance(answer, Outcome):
            return answer
        if answer.status_code != 200:
            return _http_outcome(answer.status_code)
        try:
            data = orjson.loads(answer.content)
            code = int(data.get("errcode"))
            message = str(data.get("errmsg", ""))[:200]
        except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
            return Outcome("error", "HTTP 200 without a DingTalk errcode")
        if code == 0:
            return Outcome("ok", "errcode 0", 0)
        detail = f"errcode {code}: {message}"
        if code in DINGTALK_BUSY:
            return Outcome("error", detail, code)
        if code in DINGTALK_THROTTLED:
            return Outcome("rate_limited", detail, code)
        return Outcome("rejected", detail, code)


class SlackSender(_Poster):
    def __init__(self, webhook: str, timeout: float) -> None:
        super().__init__(timeout)
        self._webhook = webhook

    def send(self, body: dict[str, Any]) -> Outcome:
        answer = self.post(self._webhook, body)
        if isinstance(answer, Outcome):
            return answer
        text = answer.text[:100].strip()
        if answer.status_code == 200:
            return Outcome("ok", text or "ok")
        outcome = _http_outcome(answer.status_code)
        return Outcome(outcome.result, f"{outcome.detail}: {text}" if text else outcome.detail)
