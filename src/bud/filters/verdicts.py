"""Verdicts: why an event did or did not match, for the API and for humans.

:func:`explain` gives the verdict tree of a filter for one event; :func:`first_failure` and
:func:`summarize` read such a tree (also one stored earlier as JSON).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bud.filters.language import Filter, compile_filter
from bud.filters.values import _json_type


def explain(filter: Mapping[str, Any] | Filter | None, event: Mapping[str, Any]) -> dict[str, Any]:
    """Compile ``filter`` and return the verdict tree for one event."""
    return compile_filter(filter).explain(event)


def _failures(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes responsible for a failed verdict: failing leaves, or a ``$not`` that failed."""
    if node.get("matched", False):
        return []
    if "children" not in node:
        return [node]
    if node.get("op") == "$not":
        return [node]
    out: list[dict[str, Any]] = []
    for child in node["children"]:
        out.extend(_failures(child))
    return out


def first_failure(verdict: dict[str, Any]) -> dict[str, Any] | None:
    """The first failing leaf of a verdict (or the failing ``$not`` node), or None if matched."""
    found = _failures(verdict)
    return found[0] if found else None


def _count_leaves(node: dict[str, Any]) -> int:
    if "children" not in node:
        return 1
    return sum(_count_leaves(c) for c in node["children"])


def _fmt(value: Any, limit: int = 80) -> str:
    text = _fmt_inner(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt_inner(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt_inner(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_fmt_inner(k)}: {_fmt_inner(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _expectation(leaf: dict[str, Any]) -> str:
    op, expected = leaf.get("op"), leaf.get("expected")
    if op == "$eq":
        return _fmt(expected)
    if op == "$in":
        return f"one of {_fmt(expected)}"
    return f"{op} {_fmt(expected)}"


def _not_at(node: dict[str, Any]) -> str:
    return f"$not at {node.get('path') or 'the top level'}"


def _detail(node: dict[str, Any]) -> str:
    if "children" in node:
        return f"{_not_at(node)}: the negated clauses matched"
    outcome = node.get("outcome")
    expectation = _expectation(node)
    if outcome == "path_missing":
        return f"expected {expectation}, path missing"
    actual = _fmt(node.get("actual"))
    if outcome == "type_mismatch":
        return f"expected {expectation}, got {actual} ({_json_type(node.get('actual'))})"
    return f"expected {expectation}, got {actual}"


def _short(node: dict[str, Any]) -> str:
    if "children" in node:
        return f"{_not_at(node)} (negated clauses matched)"
    reason = str(node.get("outcome", "")).replace("_", " ")
    return f"{node.get('path')} ({reason})"


def summarize(verdict: dict[str, Any]) -> str:
    """One line for humans: ``matched``, ``failed only on data.x: ...`` or a list of failures."""
    if verdict.get("matched"):
        return "matched"
    failing = _failures(verdict)
    if not failing:
        return "failed"
    if len(failing) == 1:
        node = failing[0]
        only = " only" if _count_leaves(verdict) > 1 else ""
        if "children" in node:
            return f"failed{only} on {_detail(node)}"
        return f"failed{only} on {node.get('path')}: {_detail(node)}"
    listed = ", ".join(_short(n) for n in failing)
    return f"failed on {len(failing)} clauses: {listed}"
