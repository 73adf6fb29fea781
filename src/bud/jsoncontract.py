"""The JSON contract: which values both stores can keep and give back unchanged.

A value breaks the contract when it holds a NUL character or a lone UTF-16 surrogate in a
string or object key, an integer outside the signed 64-bit range, a non-finite float, or
objects and arrays nested deeper than :data:`MAX_DEPTH` levels. The API refuses such input at
the request boundary (``bud.server.jsonbody``); the rules are listed in docs/api.md.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["INT_MAX", "INT_MIN", "MAX_DEPTH", "find_problem", "scrub_text", "text_problem"]

MAX_DEPTH = 64
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1
REPLACEMENT = "\ufffd"


class Refused:
    """Stands in a parsed document for a number the contract refuses (see jsonbody.parse)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def find_problem(value: Any, where: str = "body") -> tuple[str, str] | None:
    """(path, reason) of the first value both stores could not keep, else None."""
    return _walk(value, where, 0)


def _walk(value: Any, path: str, depth: int) -> tuple[str, str] | None:
    if isinstance(value, str):
        reason = text_problem(value)
        return (path, reason) if reason else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Refused):
        return path, value.reason
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            return path, f"{value} is beyond the signed 64-bit integer range"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"{value} is not a finite number")
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        return path, f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            inner = f"{path}.{key_text}"
            reason = text_problem(key_text)
            if reason:
                return inner, f"the key {reason}"
            found = _walk(item, inner, depth + 1)
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _walk(item, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored, or None."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone UTF-16 surrogate, which is not valid Unicode text"
    return None


def scrub_text(text: str) -> str:
    """``text`` with NUL characters and lone surrogates replaced by U+FFFD (for messages)."""
    if text_problem(text) is None:
        return text
    return "".join(REPLACEMENT if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
