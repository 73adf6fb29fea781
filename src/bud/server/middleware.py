"""ASGI middleware: request size limit and API-key authentication."""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bud.errors import AuthenticationError, BudError, PayloadTooLargeError


async def _send_error(send: Send, exc: BudError) -> None:
    body = orjson.dumps(exc.to_dict())
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before reading them whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLargeError(
            f"request body is over the limit of {self.limit} bytes (BUD_MAX_REQUEST_BYTES)",
            details={"limit": self.limit},
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_error(send, too_large)
                return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracking_send)
        except _TooLarge:
            if not started:
                await _send_error(send, too_large)


class ApiKeyAuth:
    """When API keys are configured, every /v1/ request must carry one."""

    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]

    def _ok(self, scope: Scope) -> bool:
        headers: dict[bytes, Any] = dict(scope.get("headers", []))
        token = headers.get(b"x-api-key")
        auth = headers.get(b"authorization", b"")
        if auth.lower().startswith(b"bearer "):
            token = auth[7:].strip()
        return token is not None and any(hmac.compare_digest(token, k) for k in self.keys)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.keys
            and scope["type"] == "http"
            and scope["path"].startswith("/v1/")
            and not self._ok(scope)
        ):
            await _send_error(
                send,
                AuthenticationError(
                    "a valid API key is required: send 'Authorization: Bearer <key>'"
                ),
            )
            return
        await self.app(scope, receive, send)
