"""JSON values as the filter language sees them, and paths into events.

A path that does not exist resolves to :data:`MISSING`; arrays met on the way fan out over
their elements. Equality goes through :func:`_key`, so 1 and 1.0 are one value and True is not 1.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

Getter = Callable[[Mapping[str, Any]], Any]
_T = TypeVar("_T")


class _Interned(Generic[_T]):
    """A bounded cache of shared immutable pieces (paths, getters, tests, predicates).

    Thousands of triggers repeat the same paths and the same clauses, so each distinct piece
    is built once and shared. The cache is emptied when it fills up: it never grows without
    bound, and pieces already handed out stay valid (only future sharing is lost).
    """

    __slots__ = ("items", "limit")

    def __init__(self, limit: int = 4096) -> None:
        self.items: dict[Hashable, _T] = {}
        self.limit = limit

    def get(self, key: Hashable, make: Callable[[], _T]) -> _T:
        found = self.items.get(key)
        if found is None:
            if len(self.items) >= self.limit:
                self.items.clear()
            found = self.items[key] = make()
        return found


class _Missing:
    """The value of a path that does not exist in the event."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class _Marker:
    """A hashable stand-in for a value that must never equal anything else."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


# Booleans get their own keys because in Python True == 1 and hash(True) == hash(1), and the
# language wants them to stay distinct in sets and index buckets.
_TRUE: Final = _Marker("true")
_FALSE: Final = _Marker("false")
_NO_KEY: Final = _Marker("unhashable")


def _key(value: Any) -> Any:
    """The equality key of a JSON scalar: 1 and 1.0 share one, True and 1 do not."""
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return _TRUE if value else _FALSE
    if t is int:
        return value
    if t is float:
        return int(value) if value.is_integer() else value
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return _TRUE if value else _FALSE
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else float(value)
    return _NO_KEY


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data, much cheaper than ``copy.deepcopy``."""
    if isinstance(value, Mapping):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Path resolution


def _resolve(obj: Any, segs: Sequence[str]) -> Any:
    """The value at ``segs`` under ``obj``; arrays met on the way fan out over their elements."""
    cur = obj
    for i, seg in enumerate(segs):
        if type(cur) is dict or isinstance(cur, Mapping):
            cur = cur.get(seg, MISSING)
            if cur is MISSING:
                return MISSING
        elif isinstance(cur, (list, tuple)):
            if seg.isascii() and seg.isdigit():
                idx = int(seg)
                if idx >= len(cur):
                    return MISSING
                cur = cur[idx]
            else:
                return _fan_out(cur, segs[i:])
        else:
            return MISSING
    return cur


def _fan_out(items: Sequence[Any], rest: Sequence[str]) -> Any:
    found: list[Any] = []
    for item in items:
        value = _resolve(item, rest)
        if value is MISSING:
            continue
        if isinstance(value, (list, tuple)):
            found.extend(value)
        else:
            found.append(value)
    return found if found else MISSING


_SEGS: Final[_Interned[tuple[str, ...]]] = _Interned()
_GETTERS: Final[_Interned[Getter]] = _Interned()


def _intern_segs(segs: tuple[str, ...]) -> tuple[str, ...]:
    """One shared tuple (and strings) per distinct path."""
    return _SEGS.get(segs, lambda: segs)


def _make_getter(segs: tuple[str, ...]) -> Getter:
    """The shared getter of an envelope-rooted path."""
    return _GETTERS.get(segs, lambda: _new_getter(_intern_segs(segs)))


def _new_getter(segs: tuple[str, ...]) -> Getter:
    """A getter for an envelope-rooted path, with a fast path for ``data.<key>``."""
    if len(segs) == 1:
        k0 = segs[0]

        def get1(event: Mapping[str, Any]) -> Any:
            return event.get(k0, MISSING)

        return get1
    if len(segs) == 2:
        k0, k1 = segs

        def get2(event: Mapping[str, Any]) -> Any:
            inner = event.get(k0)
            if type(inner) is dict:
                return inner.get(k1, MISSING)
            return _resolve(event, segs)

        return get2

    def get_n(event: Mapping[str, Any]) -> Any:
        return _resolve(event, segs)

    return get_n
