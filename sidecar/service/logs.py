"""Logging: one JSON object per line with a stable `event` field; secrets never appear.

Records are formatted and written by a listener thread (QueueHandler), so a slow console never
stalls the verdict path.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import re
import sys
import threading
import time
from typing import Any, TextIO

import orjson

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_SECRET_KEYS = {"token", "api_token", "authorization", "secret", "password"}
_SECRET_IN_TEXT = re.compile(r"(api_token=|token=|Bearer\s+)[^&\s\"']+", re.I)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if k.lower() in _SECRET_KEYS else _clean(v)) for k, v in value.items()}
    if isinstance(value, str):
        return _SECRET_IN_TEXT.sub(r"\1***", value)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", record.name),
            "msg": _clean(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STD and key != "event":
                out[key] = "***" if key.lower() in _SECRET_KEYS else _clean(value)
        if record.exc_info:
            out["exc"] = _clean(self.formatException(record.exc_info))
        return orjson.dumps(out, default=str).decode()


_listener: logging.handlers.QueueListener | None = None


def setup_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route the `sidecar` logger tree to JSON lines on `stream` (stderr by default)."""
    global _listener
    stop_logging()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    q: queue.Queue[logging.LogRecord] = queue.Queue(-1)
    root = logging.getLogger("sidecar")
    root.handlers = [_PassThroughQueueHandler(q)]
    root.setLevel(level)
    root.propagate = False
    _listener = logging.handlers.QueueListener(q, handler, respect_handler_level=False)
    _listener.start()


def stop_logging() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


class _PassThroughQueueHandler(logging.handlers.QueueHandler):
    # The default prepare() formats in the caller's thread; keep the record intact instead and
    # let the listener's JSON formatter do the work.
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def event(
    logger: logging.Logger, name: str, level: int = logging.INFO, msg: str = "", **fields: Any
) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, msg or name, extra={"event": name, **fields})


class RateLimitedEvents:
    """At most `lines` log lines per `seconds` for one kind of event a stranger can trigger at
    will (an invalid request): a flood of garbage must not flood the log or the disk. The rest
    are counted, and one `<name>_suppressed` line at the end of the interval says how many."""

    def __init__(self, logger: logging.Logger, name: str, lines: int, seconds: float) -> None:
        self.logger, self.name = logger, name
        self.lines, self.seconds = lines, seconds
        self._lock = threading.Lock()
        self._window = -seconds
        self._logged = 0
        self._suppressed = 0
        self._timer: threading.Timer | None = None

    def __call__(self, level: int, msg: str, **fields: Any) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._window >= self.seconds:
                self._window, self._logged = now, 0
            if self._logged >= self.lines:
                self._suppressed += 1
                if self._timer is None:
                    self._timer = threading.Timer(self._window + self.seconds - now, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._logged += 1
        event(self.logger, self.name, level, msg, **fields)

    def flush(self) -> None:
        """Write the count of lines left out (also called at shutdown)."""
        with self._lock:
            count, self._suppressed = self._suppressed, 0
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if count:
            event(
                self.logger,
                f"{self.name}_suppressed",
                logging.WARNING,
                f"{count} more {self.name} lines were left out (at most {self.lines} per "
                f"{self.seconds:g} s)",
                suppressed=count,
            )
