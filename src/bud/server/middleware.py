"""ASGI middleware: browser checks (Host, Origin, content type), size limit, API keys."""

from __future__ import annotations

import hmac
import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bud.errors import (
    AuthenticationError,
    BadRequestError,
    BudError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from bud.services.keys import KeyService
from bud.services.keys import Scope as KeyScope

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNSPECIFIED_HOSTS = frozenset({"0.0.0.0", "::", "[::]", ""})


async def send_error(send: Send, exc: BudError) -> None:
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
                await send_error(send, too_large)
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
                await send_error(send, too_large)


# Which scope each request needs: the first rule whose methods and path match decides.
# Paths no rule matches (the UI, /healthz, the OpenAPI document) need no key.
_ANY = None  # every method, known or not
_READING = frozenset({"GET", "HEAD", "OPTIONS"})
METRICS = "metrics"  # any valid key, or the metrics_token
OPEN = "open"  # no key: the request carries its own credential (a hook's HMAC signature)
SCOPE_RULES: tuple[tuple[frozenset[str] | None, re.Pattern[str], KeyScope | str], ...] = (
    (frozenset({"POST"}), re.compile(r"^/v1/hooks/[^/]+$"), OPEN),
    (_ANY, re.compile(r"^/v1/hooks(/|$)"), KeyScope.ADMIN),  # creating one shows its secret
    (_ANY, re.compile(r"^/v1/(api-keys|secrets|channels)(/|$)"), KeyScope.ADMIN),
    # POSTs that change nothing: they explain, render or validate
    (frozenset({"POST"}), re.compile(r"^/v1/pipelines/validate$"), KeyScope.READ),
    (frozenset({"POST"}), re.compile(r"^/v1/pipelines/[^/]+/dry-run$"), KeyScope.READ),
    (frozenset({"POST"}), re.compile(r"^/v1/event-triggers/backtest$"), KeyScope.READ),
    (frozenset({"POST"}), re.compile(r"^/v1/event-triggers/[^/]+/(backtest|test)$"), KeyScope.READ),
    (_READING, re.compile(r"^/v1/"), KeyScope.READ),
    (_ANY, re.compile(r"^/v1/"), KeyScope.WRITE),
    (_READING, re.compile(r"^/metrics$"), METRICS),
)


def required_scope(method: str, path: str) -> KeyScope | str | None:
    """The scope a request needs (``METRICS`` for /metrics), or None for an open path."""
    for methods, pattern, scope in SCOPE_RULES:
        if (methods is None or method in methods) and pattern.match(path):
            return None if scope == OPEN else scope
    return None


def presented_key(scope: Scope) -> str | None:
    """The key a request carries: ``X-API-Key``, or ``Authorization: Bearer <key>``."""
    name: bytes
    value: bytes
    for name, value in scope.get("headers", []):
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].decode("latin-1").strip()
    return None


class ApiKeyAuth:
    """Every request to a path in ``SCOPE_RULES`` needs a key of the scope its rule names.

    Keys are needed once any is configured (the ``api_keys`` setting, or a stored key that is
    not revoked). ``/metrics`` takes any valid key, or the ``metrics_token`` setting.
    """

    def __init__(self, app: ASGIApp, keys: KeyService, metrics_token: str | None = None) -> None:
        self.app = app
        self.keys = keys
        self.metrics_token = metrics_token.encode() if metrics_token else None

    async def _refusal(self, scope: Scope) -> BudError | None:
        method, path = scope["method"], scope["path"]
        needed = required_scope(method, path)
        if needed is None:
            return None
        token = presented_key(scope)
        if needed == METRICS:
            if self.metrics_token is not None and token is not None:
                if hmac.compare_digest(token.encode(), self.metrics_token):
                    return None
            elif self.metrics_token is None and not await self.keys.enabled():
                return None
            needed = KeyScope.READ
        elif not await self.keys.enabled():
            return None
        if not token:
            return AuthenticationError(
                "a valid API key is required: send 'X-API-Key: <key>' "
                "(or 'Authorization: Bearer <key>')"
            )
        has = await self.keys.scope_of(token)
        if has is None:
            return AuthenticationError("this API key is not valid (unknown or revoked)")
        assert isinstance(needed, KeyScope)
        if has < needed:
            return PermissionDeniedError(
                f"this API key has scope {has.label}; {method} {path} needs {needed.label}",
                details={"scope": has.label, "required": needed.label},
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = await self._refusal(scope)
            if refusal is not None:
                await send_error(send, refusal)
                return
        await self.app(scope, receive, send)


class UnsupportedMediaTypeError(BadRequestError):
    """State-changing requests carry JSON."""

    status_code = 415
    code = "unsupported_media_type"


def host_name(value: str) -> str:
    """The host part of a ``Host``/``Origin`` authority, lower case, IPv6 without brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def allowed_host_names(bind_host: str, extra: tuple[str, ...]) -> frozenset[str] | None:
    """The names the server answers to, or None for any (bound to every interface, no list)."""
    extra_names = {host_name(h) for h in extra if h.strip()}
    if "*" in extra_names:
        return None
    if bind_host.strip() in UNSPECIFIED_HOSTS and not extra_names:
        return None
    return frozenset(
        {host_name(bind_host), "localhost", "127.0.0.1", "::1", *extra_names}
        - {host_name(h) for h in UNSPECIFIED_HOSTS}
    )


class BrowserGuard:
    """Keep a browser from being used against the server (DNS rebinding, cross-site posts).

    - the ``Host`` header must name the server: its bind host, localhost, 127.0.0.1, [::1] or
      a name in the ``allowed_hosts`` setting (400 otherwise: DNS rebinding);
    - a state-changing request (POST, PUT, PATCH, DELETE) that sends ``Origin`` must come from
      such a host (403), and one with a body must send JSON (415): an HTML form cannot.
    """

    def __init__(self, app: ASGIApp, bind_host: str, allowed_hosts: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = allowed_host_names(bind_host, allowed_hosts)

    def _refusal(self, scope: Scope) -> BudError | None:
        headers: dict[bytes, bytes] = {}
        for name, value in scope.get("headers", []):
            headers.setdefault(name, value)
        host = headers.get(b"host", b"").decode("latin-1")
        if self.allowed is not None and host_name(host) not in self.allowed:
            return BadRequestError(
                f"Host {host!r} is not a name this server answers to; add it to the "
                "allowed_hosts setting (BUD_ALLOWED_HOSTS) if it should be",
                details={"path": "headers.host", "host": host},
            )
        if scope["method"] not in STATE_CHANGING:
            return None
        origin = headers.get(b"origin")
        if origin is not None:
            text = origin.decode("latin-1")
            authority = text.split("://", 1)[1] if "://" in text else ""
            name = host_name(authority)
            same = name == host_name(host) or (self.allowed is not None and name in self.allowed)
            if not authority or not same:
                return PermissionDeniedError(
                    f"cross-origin {scope['method']} from Origin {text!r} refused",
                    details={"path": "headers.origin", "origin": text},
                )
        content_type = headers.get(b"content-type")
        if content_type is not None:
            media = content_type.split(b";", 1)[0].strip().lower()
            if media != b"application/json" and not media.endswith(b"+json"):
                return UnsupportedMediaTypeError(
                    f"{scope['method']} needs Content-Type: application/json, got "
                    f"{content_type.decode('latin-1')!r}",
                    details={"path": "headers.content-type"},
                )
        elif _has_body(headers):
            return UnsupportedMediaTypeError(
                f"{scope['method']} with a body needs Content-Type: application/json",
                details={"path": "headers.content-type"},
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self._refusal(scope)
            if refusal is not None:
                await send_error(send, refusal)
                return
        await self.app(scope, receive, send)


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length", b"0").strip()
    return b"transfer-encoding" in headers or (length.isdigit() and int(length) > 0)
