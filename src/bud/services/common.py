"""Helpers the services share: row serialisation and cursor pages."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from bud.errors import BadRequestError, ValidationError
from bud.timeutil import to_iso

MAX_LIMIT = 500
CHOSEN_ID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def iso_times(row: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    out = dict(row)
    for key in keys:
        if key in out:
            out[key] = to_iso(out[key])
    return out


def check_limit(limit: int | None) -> int:
    if limit is None:
        return 50
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be from 1 to {MAX_LIMIT}", details={"path": "limit"})
    return limit


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: type = str) -> Any:
    # Strict base64, an id-shaped value, and exactly what encode_cursor
    # gives back; anything else is a 400 (lenient decoding turned garbage into a page).
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        value = kind(raw.decode())
        if not CHOSEN_ID_RE.match(str(value)) or encode_cursor(value) != cursor:
            raise ValueError(cursor)
        return value
    except Exception as exc:
        raise BadRequestError(
            f"cursor {cursor!r} is not valid: pass the next_cursor of a previous page",
            details={"path": "cursor"},
        ) from exc


def check_choice(value: str | None, allowed: Iterable[str], path: str) -> str | None:
    """A filter value that must be one of ``allowed`` (400 otherwise); None passes.

    One rule for status filters on every list endpoint.
    """
    choices = list(allowed)
    if value is not None and value not in choices:
        raise BadRequestError(
            f"{path}: unknown value {value!r}; must be one of {', '.join(choices)}",
            details={"path": path, "allowed": choices},
        )
    return value


def page(items: list[dict[str, Any]], limit: int, key: str) -> dict[str, Any]:
    """A page of ``limit`` items from ``limit + 1`` fetched rows, with the next cursor."""
    more = len(items) > limit
    items = items[:limit]
    return {
        "items": items,
        "next_cursor": encode_cursor(items[-1][key]) if more and items else None,
    }


def strip(row: Mapping[str, Any], drop: Iterable[str]) -> dict[str, Any]:
    dropped = set(drop)
    return {k: v for k, v in row.items() if k not in dropped}


def check_chosen_id(value: Any, path: str) -> None:
    """A caller-chosen id (``pipe_abc123``): 1-64 letters, digits, ``_ . -``."""
    if value is not None and (not isinstance(value, str) or not CHOSEN_ID_RE.match(value)):
        raise ValidationError(
            f"{path}: {value!r} is not a valid id: 1-64 letters, digits, _ . -",
            details={"path": path},
        )
