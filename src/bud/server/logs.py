"""Logging: text or JSON lines, a request id on every line of a request, one access line each.

``configure`` sets up the root logger once for ``bud serve`` (uvicorn's loggers propagate to
it). ``RequestContext`` is the ASGI middleware that gives every HTTP request an id: the
incoming ``X-Request-ID`` when it is a sane token, else a new one; the id is echoed in the
response's ``X-Request-ID`` header, stored in a context variable that the log filter adds to
every record logged while the request is handled, and written in the access line
(``bud.access`` logger, info level: method, path, status, duration, request id).
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import sys
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestContext", "configure", "request_id"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bud_request_id", default=None
)
access_log = logging.getLogger("bud.access")

_SANE_ID = re.compile(rb"^[A-Za-z0-9._:@/+=\-]{1,128}$")
# Attributes every LogRecord has; anything else was passed through ``extra=`` and is kept.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (None outside a request) so both formats can show it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", None)
        return f"{line} [request_id={rid}]" if rid else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure(level: str = "info", fmt: str = "text") -> None:
    """Route every logger (ours and uvicorn's) to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = logging.DEBUG if level == "trace" else getattr(logging, level.upper(), logging.INFO)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


class RequestContext:
    """Request id in, request id out, and one access log line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value if _SANE_ID.match(value) else None
                break
        if rid is None:
            rid = f"req_{secrets.token_hex(8)}".encode()
        token = request_id.set(rid.decode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                _access(scope, status, round((time.perf_counter() - started) * 1000, 2))
            request_id.reset(token)


def _access(scope: Scope, status: int, duration_ms: float) -> None:
    method, path = scope.get("method", ""), scope.get("path", "")
    # makeRecord + handle is what ``info()`` does, less the search for the caller's frame
    # (always this function), which is a fifth of the cost of a line on the request path.
    record = access_log.makeRecord(
        access_log.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %s %.2fms",
        (method, path, status, duration_ms),
        None,
        extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms},
    )
    access_log.handle(record)
