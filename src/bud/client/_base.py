"""What the sync and async clients share: configuration, request bodies, error mapping."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import httpx
from pydantic import BaseModel

from bud.errors import BudError, FilterError, TransportError, error_for_code

__all__ = [
    "DEFAULT_URL",
    "NOT_GIVEN",
    "PAGE_SIZE",
    "NotGiven",
    "WaitTimeout",
    "auth_headers",
    "compact",
    "error_from_response",
    "iso",
    "resolve_api_key",
    "resolve_base_url",
    "transport_error",
]

DEFAULT_URL: Final = "http://127.0.0.1:8010"
PAGE_SIZE: Final = 100
FINAL_STATUSES: Final = frozenset({"succeeded", "failed", "cancelled"})

M = TypeVar("M", bound=BaseModel)


class NotGiven:
    """Marks an argument the caller left out, so ``None`` and ``{}`` can still be sent."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()


class WaitTimeout(BudError, TimeoutError):
    """The execution did not reach a final status in time."""

    status_code = 0
    code = "wait_timeout"


def resolve_base_url(base_url: str | None) -> str:
    """The explicit URL, else ``BUD_URL``, else the local default; without a trailing slash."""
    url = base_url or os.environ.get("BUD_URL") or DEFAULT_URL
    return url.rstrip("/")


def resolve_api_key(api_key: str | None) -> str | None:
    """The explicit key, else ``BUD_API_KEY``, else none."""
    return api_key or os.environ.get("BUD_API_KEY") or None


def auth_headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def compact(**fields: Any) -> dict[str, Any]:
    """The fields that were given: drops ``None`` and ``NOT_GIVEN``."""
    return {k: v for k, v in fields.items() if v is not None and v is not NOT_GIVEN}


def iso(value: datetime | str | None) -> str | None:
    """An ISO 8601 UTC string for the API; naive datetimes are taken as UTC."""
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def envelope(event: dict[str, Any]) -> dict[str, Any]:
    """A publishable copy of an envelope dict (datetimes become ISO strings)."""
    out = dict(event)
    if isinstance(out.get("timestamp"), datetime):
        out["timestamp"] = iso(out["timestamp"])
    return out


def trigger_test_event(event: dict[str, Any]) -> dict[str, Any]:
    """The ``event`` of a trigger test: an envelope, or bare data wrapped as ``{"data": ...}``."""
    if "data" in event or "event_type" in event:
        return envelope(event)
    return {"data": event}


def list_params(**filters: Any) -> dict[str, Any]:
    """Query parameters for a list call: booleans as ``true``/``false``, datetimes as ISO."""
    params: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        if isinstance(value, bool):
            params[key] = "true" if value else "false"
        elif isinstance(value, datetime):
            params[key] = iso(value)
        else:
            params[key] = value
    return params


def parse_items(payload: Any, model: type[M]) -> tuple[list[M], str | None]:
    """The items and next cursor of a list answer (``{"items", "next_cursor"}``)."""
    if not isinstance(payload, dict):
        raise BudError(f"unexpected list answer from the server: {type(payload).__name__}")
    items = [model.model_validate(item) for item in payload.get("items") or []]
    cursor = payload.get("next_cursor")
    return items, (str(cursor) if cursor else None)


def error_from_response(response: httpx.Response) -> BudError:
    """The typed exception for a non-2xx answer, with the server's message and details."""
    status = response.status_code
    code: str | None = None
    message = ""
    details: dict[str, Any] = {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code") if isinstance(err.get("code"), str) else None
        message = str(err.get("message") or "")
        if isinstance(err.get("details"), dict):
            details = err["details"]
    elif isinstance(body, dict) and "detail" in body:
        # A framework-level answer (e.g. an unknown route) rather than one of ours.
        message = str(body["detail"])
    if not message:
        text = response.text.strip()
        message = text[:500] if text else f"HTTP {status} {response.reason_phrase}".strip()
    cls = error_for_code(code, status)
    # FilterError's own __init__ formats a fresh message; the server's is already final.
    exc = cls.__new__(cls)
    BudError.__init__(exc, message, details=details)
    if isinstance(exc, FilterError):
        exc.path = str(details.get("path", ""))
    return exc


def transport_error(base_url: str, exc: httpx.TransportError) -> TransportError:
    """A TransportError naming the URL, with a hint on how to start a server."""
    if isinstance(exc, httpx.TimeoutException):
        what = f"request to Bud at {base_url} timed out ({type(exc).__name__})"
    else:
        reason = str(exc) or type(exc).__name__
        what = f"could not reach Bud at {base_url}: {reason}"
    hint = "is the server running? Start one with `bud serve`, or set BUD_URL / --url"
    return TransportError(f"{what}; {hint}", details={"url": base_url})
