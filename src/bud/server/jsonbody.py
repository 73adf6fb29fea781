"""The JSON contract, checked once at the request boundary for every route.

Both stores must keep exactly what the API accepted, so a request is refused (with the path of
the value) when it holds something either store cannot keep or give back:

- a NUL character in any string or object key (PostgreSQL ``text``/``jsonb`` cannot hold it),
- a lone UTF-16 surrogate (``"\\ud800"``: not UTF-8, so no store can write it),
- an integer outside the signed 64-bit range,
- a non-finite number: ``NaN``, ``Infinity`` or a literal that overflows a double (``1e400``),
- nesting deeper than :data:`MAX_DEPTH` objects and arrays.

The same checks apply to the path and the query string (NUL, invalid text). The rules are
documented in docs/api.md.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bud.errors import BadRequestError, BudError, ValidationError
from bud.jsoncontract import INT_MAX, INT_MIN, MAX_DEPTH, Refused, find_problem, text_problem
from bud.server.middleware import send_error

__all__ = ["MAX_DEPTH", "JsonContract", "check", "find_problem", "parse"]

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _constant(name: str) -> Refused:
    return Refused(f"{name} is not a finite number; JSON numbers must be finite")


def _float(text: str) -> float | Refused:
    value = float(text)
    if not math.isfinite(value):
        return Refused(f"{text} is beyond the range of a 64-bit float")
    return value


def _int(text: str) -> int | Refused:
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        return Refused(f"{text} is beyond the signed 64-bit integer range")
    return value


def parse(body: bytes) -> Any:
    """Parse a request body under the contract; the error names the path of the bad value."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(
            f"request body is not valid UTF-8 (byte {exc.start})", details={"path": "body"}
        ) from exc
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError as exc:
        raise ValidationError(
            f"body: nested deeper than {MAX_DEPTH} levels",
            details={"path": "body", "limit": MAX_DEPTH},
        ) from exc
    except ValueError as exc:  # json.JSONDecodeError, or an int of more than 4300 digits
        raise BadRequestError(
            f"request body is not valid JSON: {exc}", details={"path": "body"}
        ) from exc
    check(value)
    return value


def check(value: Any, where: str = "body") -> None:
    """Raise ValidationError naming the first value that breaks the contract."""
    problem = find_problem(value, where)
    if problem is not None:
        path, reason = problem
        details: dict[str, Any] = {"path": path}
        if reason.startswith("nested deeper"):
            details["limit"] = MAX_DEPTH
        raise ValidationError(f"{path}: {reason}", details=details)


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return True  # FastAPI reads a body without a content type as JSON
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class JsonContract:
    """ASGI middleware: apply the contract to the path, the query string and JSON bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_target(scope)
        except BudError as exc:
            await send_error(send, exc)
            return
        content_type = None
        for name, value in scope.get("headers", []):
            if name == b"content-type":
                content_type = value
        if scope["method"] not in BODY_METHODS or not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                parse(body)
            except BudError as exc:
                await send_error(send, exc)
                return
        replay = iter(messages)

        async def replayed() -> Message:
            for message in replay:
                return message
            return await receive()

        await self.app(scope, replayed, send)


def _check_target(scope: Scope) -> None:
    path = scope.get("path", "")
    reason = text_problem(path)
    if reason:
        raise BadRequestError(f"the request path {reason}", details={"path": "path"})
    raw = scope.get("query_string", b"")
    if not raw:
        return
    try:
        pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequestError(
            "the query string is not valid UTF-8", details={"path": "query"}
        ) from exc
    for name, value in pairs:
        for text in (name, value):
            reason = text_problem(text)
            if reason:
                raise BadRequestError(f"query parameter {name!r} {reason}", details={"path": name})
