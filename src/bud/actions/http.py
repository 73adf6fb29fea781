"""The ``http_request`` action, and URL helpers shared with the notification action."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from bud import outbound
from bud.actions.base import ActionContext, ActionError, RetryPolicy, action

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
MAX_BODY_CHARS = 64 * 1024
# Read at most this much of a response: enough to parse a sizeable JSON document, bounded so
# a runaway endpoint cannot exhaust the worker's memory.
MAX_READ_BYTES = 4 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 30.0
MASK = "***"
# Query parameter names (substrings, lower case) whose values are credentials.
_SECRET_QUERY_PARTS = ("token", "secret", "pass", "key", "sig", "auth")


def redact_url(url: str) -> str:
    """The URL with any password and credential-like query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
        path = parts.path
        # A Slack incoming-webhook URL carries its secret as the last path segment.
        if parts.hostname and parts.hostname.endswith("slack.com") and "/services/" in path:
            head, _, _ = path.rstrip("/").rpartition("/")
            path = f"{head}/{MASK}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [
                    (k, MASK if any(s in k.lower() for s in _SECRET_QUERY_PARTS) else v)
                    for k, v in pairs
                ],
                safe="*",
            )
        return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))
    except ValueError:
        return "<unparseable url>"


def is_retryable_status(status_code: int) -> bool:
    """4xx means the request itself is wrong, except timeouts (408) and rate limits (429)."""
    return not (400 <= status_code < 500) or status_code in (408, 429)


def describe_exception(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_http_url(url: str, what: str) -> None:
    """Reject anything but an absolute http(s) URL, as a non-retryable error."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ActionError(f"{what} is not a valid URL: {exc}", retryable=False) from None
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "(none)"
        raise ActionError(
            f"{what} must be an http:// or https:// URL, got scheme {scheme!r}",
            retryable=False,
        )
    if not parts.hostname:
        raise ActionError(f"{what} has no host: {redact_url(url)}", retryable=False)


@action(
    "http_request",
    description="Send an HTTP request and return the response status, headers and body.",
    params={
        "type": "object",
        "required": ["url"],
        "properties": {
            "url": {"type": "string", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"},
            "method": {"type": "string", "enum": METHODS},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "json": {},
            "body": {"type": "string"},
            "query": {
                "type": "object",
                "additionalProperties": {
                    "type": ["string", "number", "boolean", "array"],
                    "items": {"type": ["string", "number", "boolean"]},
                },
            },
            "timeout_seconds": {"type": "number", "exclusiveMinimum": 0},
            "expected_status": {
                "type": "array",
                "items": {"type": "integer", "minimum": 100, "maximum": 599},
                "minItems": 1,
            },
            "fail_on_status": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
    outputs={
        "status_code": "the response status",
        "headers": "response headers (lower-case names)",
        "body": "response text, truncated to 64 KiB",
        "json": "the parsed body when the response is JSON, else null",
        "elapsed_ms": "time from sending the request to reading the body",
    },
    timeout_seconds=60,
    retry=RetryPolicy(max_attempts=3, backoff_seconds=1.0),
    idempotent=False,
)
async def http_request_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Send an HTTP request; fail on an unexpected status unless fail_on_status is false."""
    url = str(params["url"])
    check_http_url(url, "params.url")
    method = str(params.get("method", "GET")).upper()
    if "json" in params and "body" in params:
        raise ActionError("give params.json or params.body, not both", retryable=False)
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    # The same key on every attempt lets a receiver drop duplicates caused by our retries.
    if not any(k.lower() == "idempotency-key" for k in headers):
        headers["Idempotency-Key"] = ctx.idempotency_key
    timeout = float(params.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
    shown = f"{method} {redact_url(url)}"

    # The outbound policy checks the URL and every redirect (docs/operations.md, Security).
    async with outbound.client(ctx.settings, timeout=timeout, follow_redirects=True) as client:
        try:
            request = client.build_request(
                method,
                url,
                headers=headers,
                params=params.get("query") or None,
                json=params.get("json"),
                content=params.get("body"),
            )
        except (httpx.InvalidURL, ValueError, TypeError) as exc:
            raise ActionError(f"{shown}: invalid request: {exc}", retryable=False) from None
        started = time.perf_counter()
        try:
            response = await client.send(request, stream=True)
            try:
                raw, complete = await _read_limited(response)
            finally:
                await response.aclose()
        except (
            outbound.OutboundRefused,
            httpx.UnsupportedProtocol,
            httpx.LocalProtocolError,
            httpx.TooManyRedirects,
        ) as exc:
            raise ActionError(
                f"{shown} failed: {describe_exception(exc)}", retryable=False
            ) from None
        except httpx.HTTPError as exc:
            raise ActionError(f"{shown} failed: {describe_exception(exc)}") from None
        elapsed_ms = round((time.perf_counter() - started) * 1000)

    text = raw.decode(response.encoding or "utf-8", errors="replace")
    outputs: dict[str, Any] = {
        "status_code": response.status_code,
        "headers": dict(response.headers.items()),
        "body": text[:MAX_BODY_CHARS],
        "json": _parse_json(response, raw) if complete else None,
        "elapsed_ms": elapsed_ms,
    }
    expected = params.get("expected_status")
    ok = (response.status_code in expected) if expected else response.is_success
    if not ok and params.get("fail_on_status", True):
        wanted = ", ".join(str(s) for s in expected) if expected else "2xx"
        snippet = text[:200].strip()
        raise ActionError(
            f"{shown} returned HTTP {response.status_code} (expected {wanted})"
            + (f": {snippet}" if snippet else ""),
            retryable=is_retryable_status(response.status_code),
            outputs=outputs,
        )
    ctx.log(f"{shown} -> HTTP {response.status_code} in {elapsed_ms} ms")
    return outputs


async def _read_limited(response: httpx.Response) -> tuple[bytes, bool]:
    """Up to MAX_READ_BYTES of the body, and whether that is all of it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_READ_BYTES:
            return b"".join(chunks)[:MAX_READ_BYTES], False
    return b"".join(chunks), True


def _parse_json(response: httpx.Response, raw: bytes) -> Any:
    content_type = response.headers.get("content-type", "").lower()
    if "json" not in content_type or not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


HTTP_ACTIONS = [http_request_action]
