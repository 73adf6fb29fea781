"""The trigger filter language: validation, compiled matching, explanations and an index.

A filter is a JSON object whose keys are paths into the event's ``data`` (dots for nesting)
and whose values say what the value there must be::

    {"model_source": "hugging_face", "auto_deploy": true}        # equality, AND of keys
    {"environment": ["production", "staging"]}                   # any-of
    {"replicas": {"$gt": 2, "$lte": 10}}                         # operators
    {"$or": [{"meta.region": "eu"}, {"$event.source": "budmodel"}]}

Filters are validated and compiled once (:func:`compile_filter`) into closures, so matching
never interprets the JSON again. :class:`TriggerIndex` keeps many compiled filters per event
type and only evaluates the ones whose most selective equality clause can hold for the event.
The full grammar and semantics are in ``docs/filters.md``.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from bud.errors import FilterError

__all__ = [
    "MAX_ANY_OF",
    "MAX_CLAUSES",
    "MAX_DEPTH",
    "MAX_WILDCARD_LENGTH",
    "MAX_WILDCARD_STARS",
    "OPERATORS",
    "Filter",
    "TriggerIndex",
    "compile_filter",
    "explain",
    "first_failure",
    "matches",
    "summarize",
]

MAX_DEPTH: Final = 10
MAX_CLAUSES: Final = 256
MAX_ANY_OF: Final = 1000
MAX_WILDCARD_STARS: Final = 4
MAX_WILDCARD_LENGTH: Final = 256

OPERATORS: Final = frozenset(
    {
        "$eq",
        "$ne",
        "$in",
        "$nin",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$exists",
        "$prefix",
        "$suffix",
        "$contains",
        "$wildcard",
        "$anything_but",
        "$eq_ignore_case",
    }
)
_COMBINATORS: Final = frozenset({"$and", "$or", "$not"})
_EVENT: Final = "$event"

Getter = Callable[[Mapping[str, Any]], Any]
Test = Callable[[Any], bool]
Predicate = Callable[[Mapping[str, Any]], bool]


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


def _make_getter(segs: tuple[str, ...]) -> Getter:
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


# ---------------------------------------------------------------------------------------------
# Per-operator tests. Each takes the resolved value (MISSING, a scalar, or an array whose
# elements are tried one by one) and answers whether the clause holds.


def _any_element(scalar_test: Test) -> Test:
    def test(value: Any) -> bool:
        if value is MISSING:
            return False
        if type(value) is list or isinstance(value, (list, tuple)):
            for item in value:  # noqa: SIM110 - a loop beats any(genexpr) on this hot path
                if scalar_test(item):
                    return True
            return False
        return scalar_test(value)

    return test


def _eq_test(keys: frozenset[Any]) -> Test:
    if len(keys) == 1:
        (only,) = keys
        if type(only) is str:
            # The common case, a string literal: skip the key normalisation entirely.
            def test_str(value: Any) -> bool:
                if type(value) is str:
                    return bool(value == only)
                if value is MISSING:
                    return False
                if isinstance(value, (list, tuple)):
                    for item in value:  # noqa: SIM110
                        if _key(item) == only:
                            return True
                    return False
                return bool(_key(value) == only)

            return test_str

    def test(value: Any) -> bool:
        if type(value) is str:
            return value in keys
        if value is MISSING:
            return False
        if isinstance(value, (list, tuple)):
            for item in value:  # noqa: SIM110
                if _key(item) in keys:
                    return True
            return False
        return _key(value) in keys

    return test


_ORDERING: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def _ordering_test(op: str, operand: Any) -> Test:
    cmp = _ORDERING[op]
    if isinstance(operand, str):

        def scalar_str(value: Any) -> bool:
            return isinstance(value, str) and cmp(value, operand)

        return _any_element(scalar_str)

    def scalar_num(value: Any) -> bool:
        return _is_number(value) and cmp(value, operand)

    return _any_element(scalar_num)


def _glob(pattern: str) -> Callable[[str], bool]:
    """Match ``*`` globs without regexes: the parts between stars are found left to right."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return lambda s: s == pattern
    head, middle, tail = parts[0], parts[1:-1], parts[-1]
    fixed = len(head) + len(tail)

    def match(s: str) -> bool:
        if len(s) < fixed or not s.startswith(head) or not s.endswith(tail):
            return False
        pos, end = len(head), len(s) - len(tail)
        for part in middle:
            found = s.find(part, pos, end)
            if found < 0:
                return False
            pos = found + len(part)
        return True

    return match


def _string_test(fn: Callable[[str], bool]) -> Test:
    def scalar(value: Any) -> bool:
        return isinstance(value, str) and fn(value)

    return _any_element(scalar)


def _contains_test(operand: Any) -> Test:
    key = _key(operand)
    is_str = isinstance(operand, str)

    def test(value: Any) -> bool:
        if isinstance(value, str):
            return is_str and operand in value
        if isinstance(value, (list, tuple)):
            for item in value:
                if _key(item) == key:
                    return True
        return False

    return test


# ---------------------------------------------------------------------------------------------
# Compiled nodes


class _Leaf:
    """One clause: a path, an operator and an operand."""

    __slots__ = ("accepts", "clause", "expected", "get", "index_keys", "op", "path", "segs", "test")

    def __init__(
        self,
        *,
        op: str,
        segs: tuple[str, ...],
        clause: str,
        expected: Any,
        test: Test,
        accepts: Callable[[Any], bool],
        index_keys: frozenset[Any] | None = None,
    ) -> None:
        self.op = op
        self.segs = segs
        self.path = ".".join(segs)
        self.clause = clause
        self.expected = expected
        self.test = test
        # Whether an actual value has a type this operator can compare at all; only used to
        # tell "type_mismatch" from "value_differs" in explanations.
        self.accepts = accepts
        self.index_keys = index_keys
        self.get = _make_getter(segs)

    def predicate(self) -> Predicate:
        get, test = self.get, self.test
        return lambda event: test(get(event))

    def outcome(self, value: Any) -> str:
        if self.test(value):
            return "matched"
        if self.op == "$exists":
            return "path_missing" if value is MISSING else "value_differs"
        if value is MISSING:
            return "path_missing"
        if self.op in ("$ne", "$nin", "$anything_but"):
            return "value_differs"
        if _is_array(value):
            if not value or self.op == "$contains" or any(self.accepts(v) for v in value):
                return "value_differs"
            return "type_mismatch"
        return "value_differs" if self.accepts(value) else "type_mismatch"


class _Group:
    """``$and`` / ``$or`` / ``$not`` over child nodes."""

    __slots__ = ("children", "op", "path")

    def __init__(self, op: str, path: str, children: tuple[_Node, ...]) -> None:
        self.op = op
        self.path = path
        self.children = children

    def predicate(self) -> Predicate:
        preds = [c.predicate() for c in self.children]
        if self.op == "$not":
            (inner,) = preds
            return lambda event: not inner(event)
        if self.op == "$or":
            return _any_of(preds)
        return _all_of(preds)


_Node = _Leaf | _Group


def _all_of(preds: list[Predicate]) -> Predicate:
    if not preds:
        return lambda event: True
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda event: a(event) and b(event)
    frozen = tuple(preds)

    def all_of(event: Mapping[str, Any]) -> bool:
        for pred in frozen:  # noqa: SIM110 - no generator frame per event
            if not pred(event):
                return False
        return True

    return all_of


def _any_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    frozen = tuple(preds)

    def any_of(event: Mapping[str, Any]) -> bool:
        for pred in frozen:  # noqa: SIM110
            if pred(event):
                return True
        return False

    return any_of


# ---------------------------------------------------------------------------------------------
# Compiler


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


class _Compiler:
    def __init__(self) -> None:
        self.clauses = 0

    def _count(self, where: str) -> None:
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise FilterError(
                f"too complex: more than {MAX_CLAUSES} clauses (limit {MAX_CLAUSES})", path=where
            )

    # -- objects -------------------------------------------------------------------------------

    def obj(
        self,
        obj: Mapping[Any, Any],
        *,
        segs: tuple[str, ...] | None,
        where: str,
        depth: int,
    ) -> list[_Node]:
        """Compile an object into the list of its conjuncts.

        ``segs`` is the envelope path the object sits at, or None at the top of the filter
        (and directly inside top-level combinators), where data paths and ``$event`` start.
        """
        if depth > MAX_DEPTH:
            raise FilterError(
                f"too complex: nested deeper than {MAX_DEPTH} levels (limit {MAX_DEPTH})",
                path=where,
            )
        out: list[_Node] = []
        for key, value in obj.items():
            if not isinstance(key, str) or not key:
                raise FilterError(f"keys must be non-empty strings, got {key!r}", path=where)
            here = _join(where, key)
            if key == "$and" or key == "$or":
                children = self._combinator_list(key, value, segs=segs, where=here, depth=depth)
                if key == "$and":
                    # Explicit $and is flattened into the enclosing conjunction so the index
                    # sees its clauses as required ones.
                    for child in children:
                        out.extend(child)
                else:
                    nodes = tuple(
                        _single(child, f"{here}[{i}]") for i, child in enumerate(children)
                    )
                    out.append(_Group("$or", here, nodes))
            elif key == "$not":
                if not isinstance(value, Mapping) or not value:
                    raise FilterError(
                        f"$not needs a non-empty object, got {_json_type(value)}", path=here
                    )
                inner = self.obj(value, segs=segs, where=here, depth=depth + 1)
                out.append(_Group("$not", here, (_single(inner, here),)))
            elif key == _EVENT or key.startswith(_EVENT + "."):
                if segs is not None:
                    raise FilterError(
                        "$event paths are only allowed at the top level of a filter "
                        "(or directly inside top-level $and/$or/$not)",
                        path=here,
                    )
                rest = key[len(_EVENT) + 1 :]
                env_segs = self._segments(rest, here) if rest else ()
                if not env_segs and not isinstance(value, Mapping):
                    raise FilterError(
                        "$event needs an object of envelope fields, e.g. "
                        '{"$event": {"source": "budmodel"}}',
                        path=here,
                    )
                out.extend(self.value(value, segs=env_segs, where=here, depth=depth))
            elif key.startswith("$"):
                if key not in OPERATORS:
                    known = ", ".join(sorted(OPERATORS | _COMBINATORS))
                    raise FilterError(f"unknown operator {key!r} (known: {known})", path=here)
                if not segs:
                    raise FilterError(
                        f'operator {key} needs a field, e.g. {{"replicas": {{"{key}": ...}}}}',
                        path=here,
                    )
                out.append(self.operator(key, value, segs=segs, where=here))
            else:
                base = segs if segs is not None else ("data",)
                full = base + self._segments(key, here)
                out.extend(self.value(value, segs=full, where=here, depth=depth))
        return out

    def _segments(self, key: str, where: str) -> tuple[str, ...]:
        parts = tuple(key.split("."))
        for part in parts:
            if not part:
                raise FilterError(f"path {key!r} has an empty segment", path=where)
            if part.startswith("$"):
                raise FilterError(
                    f"path {key!r} has a segment starting with '$' "
                    "(operators go inside an object value)",
                    path=where,
                )
        return parts

    def _combinator_list(
        self, op: str, value: Any, *, segs: tuple[str, ...] | None, where: str, depth: int
    ) -> list[list[_Node]]:
        if not isinstance(value, list) or not value:
            raise FilterError(
                f"{op} needs a non-empty list of objects, got {_json_type(value)}"
                + (" (empty)" if isinstance(value, list) else ""),
                path=where,
            )
        children: list[list[_Node]] = []
        for i, item in enumerate(value):
            at = f"{where}[{i}]"
            if not isinstance(item, Mapping) or not item:
                raise FilterError(
                    f"{op} items must be non-empty objects, got {_json_type(item)}", path=at
                )
            children.append(self.obj(item, segs=segs, where=at, depth=depth + 1))
        return children

    def value(self, value: Any, *, segs: tuple[str, ...], where: str, depth: int) -> list[_Node]:
        """Compile the value found under a field key."""
        if isinstance(value, Mapping):
            if not value:
                raise FilterError(
                    'empty object has no clauses (use {"$exists": true} to require a field)',
                    path=where,
                )
            return self.obj(value, segs=segs, where=where, depth=depth + 1)
        if not segs:
            raise FilterError("an envelope path is needed after $event", path=where)
        if isinstance(value, list):
            values = self._scalar_list(value, where=where, what="an any-of list")
            self._count(where)
            keys = frozenset(_key(v) for v in values)
            return [self._eq_leaf("$in", segs, where, list(values), keys)]
        self._scalar(value, where)
        self._count(where)
        return [self._eq_leaf("$eq", segs, where, value, frozenset({_key(value)}))]

    # -- leaves --------------------------------------------------------------------------------

    def _scalar(self, value: Any, where: str) -> None:
        if value is None or isinstance(value, (str, bool, int)):
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                raise FilterError(f"numbers must be finite, got {value!r}", path=where)
            return
        raise FilterError(
            f"expected a string, number, boolean or null, got {_json_type(value)}", path=where
        )

    def _scalar_list(self, value: Any, *, where: str, what: str) -> list[Any]:
        if not isinstance(value, list):
            raise FilterError(f"{what} must be a list, got {_json_type(value)}", path=where)
        if not value:
            raise FilterError(f"{what} must not be empty", path=where)
        if len(value) > MAX_ANY_OF:
            raise FilterError(
                f"too complex: {what} has {len(value)} values (limit {MAX_ANY_OF})", path=where
            )
        for i, item in enumerate(value):
            self._scalar(item, f"{where}[{i}]")
        return list(value)

    def _eq_leaf(
        self, op: str, segs: tuple[str, ...], where: str, expected: Any, keys: frozenset[Any]
    ) -> _Leaf:
        types = frozenset(_json_type(v) for v in (expected if op == "$in" else [expected]))
        return _Leaf(
            op=op,
            segs=segs,
            clause=where,
            expected=expected,
            test=_eq_test(keys),
            accepts=lambda v: _json_type(v) in types,
            index_keys=keys,
        )

    def operator(self, op: str, operand: Any, *, segs: tuple[str, ...], where: str) -> _Leaf:
        self._count(where)
        if op in ("$eq", "$ne"):
            self._scalar(operand, where)
            keys = frozenset({_key(operand)})
            if op == "$eq":
                return self._eq_leaf(op, segs, where, operand, keys)
            return self._negated_eq(op, segs, where, operand, keys)
        if op in ("$in", "$nin"):
            values = self._scalar_list(operand, where=where, what=f"{op} operand")
            keys = frozenset(_key(v) for v in values)
            if op == "$in":
                return self._eq_leaf(op, segs, where, values, keys)
            return self._negated_eq(op, segs, where, values, keys)
        if op == "$anything_but":
            if isinstance(operand, list):
                values = self._scalar_list(operand, where=where, what="$anything_but operand")
            else:
                self._scalar(operand, where)
                values = [operand]
            return self._negated_eq(op, segs, where, operand, frozenset(_key(v) for v in values))
        if op in _ORDERING:
            if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
                raise FilterError(
                    f"{op} needs a number or a string (strings such as ISO-8601 timestamps "
                    f"compare lexicographically), got {_json_type(operand)}",
                    path=where,
                )
            if isinstance(operand, float) and not math.isfinite(operand):
                raise FilterError(f"numbers must be finite, got {operand!r}", path=where)
            if isinstance(operand, str):
                return self._leaf(op, segs, where, operand, _ordering_test(op, operand), _is_str)
            return self._leaf(op, segs, where, operand, _ordering_test(op, operand), _is_number)
        if op == "$exists":
            if not isinstance(operand, bool):
                raise FilterError(
                    f"$exists needs true or false, got {_json_type(operand)}", path=where
                )
            want = operand
            return self._leaf(
                op, segs, where, operand, lambda v: (v is not MISSING) == want, _always
            )
        if op in ("$prefix", "$suffix", "$eq_ignore_case", "$wildcard"):
            if not isinstance(operand, str):
                raise FilterError(f"{op} needs a string, got {_json_type(operand)}", path=where)
            fn: Callable[[str], bool]
            if op == "$prefix":
                fn = _bound_startswith(operand)
            elif op == "$suffix":
                fn = _bound_endswith(operand)
            elif op == "$eq_ignore_case":
                folded = operand.casefold()
                fn = lambda s: s.casefold() == folded  # noqa: E731
            else:
                stars = operand.count("*")
                if stars > MAX_WILDCARD_STARS:
                    raise FilterError(
                        f"too complex: $wildcard has {stars} '*' (limit {MAX_WILDCARD_STARS})",
                        path=where,
                    )
                if len(operand) > MAX_WILDCARD_LENGTH:
                    raise FilterError(
                        f"too complex: $wildcard is {len(operand)} characters long "
                        f"(limit {MAX_WILDCARD_LENGTH})",
                        path=where,
                    )
                fn = _glob(operand)
            return self._leaf(op, segs, where, operand, _string_test(fn), _is_str)
        # $contains is the only operator left.
        self._scalar(operand, where)
        return self._leaf(op, segs, where, operand, _contains_test(operand), _is_str)

    def _leaf(
        self,
        op: str,
        segs: tuple[str, ...],
        where: str,
        operand: Any,
        test: Test,
        accepts: Callable[[Any], bool],
    ) -> _Leaf:
        return _Leaf(op=op, segs=segs, clause=where, expected=operand, test=test, accepts=accepts)

    def _negated_eq(
        self, op: str, segs: tuple[str, ...], where: str, expected: Any, keys: frozenset[Any]
    ) -> _Leaf:
        eq = _eq_test(keys)
        test: Test
        if op == "$anything_but":
            # EventBridge semantics: the field must be present.
            test = lambda v: v is not MISSING and not eq(v)  # noqa: E731
        else:
            # MongoDB semantics: a missing field is "not equal".
            test = lambda v: not eq(v)  # noqa: E731
        return _Leaf(op=op, segs=segs, clause=where, expected=expected, test=test, accepts=_always)


def _bound_startswith(prefix: str) -> Callable[[str], bool]:
    return lambda s: s.startswith(prefix)


def _bound_endswith(suffix: str) -> Callable[[str], bool]:
    return lambda s: s.endswith(suffix)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _always(value: Any) -> bool:
    return True


def _single(nodes: list[_Node], path: str) -> _Node:
    """One node for a list of conjuncts: the leaf itself, or an ``$and`` group."""
    if len(nodes) == 1:
        return nodes[0]
    return _Group("$and", path, tuple(nodes))


# ---------------------------------------------------------------------------------------------
# Public API


class Filter:
    """An immutable compiled filter. Build one with :func:`compile_filter`."""

    __slots__ = ("_conjuncts", "_fn", "_root", "source")

    source: dict[str, Any]
    _root: _Group
    _conjuncts: tuple[_Node, ...]
    _fn: Predicate

    def __init__(self, source: Mapping[str, Any] | None = None) -> None:
        if source is not None and not isinstance(source, Mapping):
            raise FilterError(f"must be a JSON object, got {_json_type(source)}")
        src: dict[str, Any] = _copy_json(source) if source else {}
        conjuncts = tuple(_Compiler().obj(src, segs=None, where="", depth=1))
        root = _Group("$and", "", conjuncts)
        object.__setattr__(self, "source", src)
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_conjuncts", conjuncts)
        object.__setattr__(self, "_fn", root.predicate())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Filter is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Filter is immutable")

    def __repr__(self) -> str:
        return f"Filter({self.source!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Filter):
            return NotImplemented
        return self.source == other.source

    __hash__ = None  # type: ignore[assignment]

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether the event satisfies every clause."""
        return self._fn(event)

    def explain(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The verdict tree: every clause with its path, expected and actual value, outcome."""
        return _explain_node(self._root, event)


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data, much cheaper than ``copy.deepcopy``."""
    if isinstance(value, Mapping):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _explain_node(node: _Node, event: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(node, _Leaf):
        value = node.get(event)
        outcome = node.outcome(value)
        return {
            "path": node.path,
            "op": node.op,
            "expected": _copy_json(node.expected),
            "actual": None if value is MISSING else value,
            "outcome": outcome,
            "matched": outcome == "matched",
            "clause": node.clause,
        }
    children = [_explain_node(c, event) for c in node.children]
    if node.op == "$not":
        matched = not children[0]["matched"]
    elif node.op == "$or":
        matched = any(c["matched"] for c in children)
    else:
        matched = all(c["matched"] for c in children)
    return {"op": node.op, "path": node.path, "matched": matched, "children": children}


def compile_filter(filter: Mapping[str, Any] | Filter | None) -> Filter:
    """Validate and compile a filter; raises :class:`~bud.errors.FilterError` with the path."""
    if isinstance(filter, Filter):
        return filter
    return Filter(filter)


def matches(filter: Mapping[str, Any] | Filter | None, event: Mapping[str, Any]) -> bool:
    """Compile ``filter`` and test one event (compile once and reuse for many events)."""
    return compile_filter(filter).matches(event)


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


def _detail(node: dict[str, Any]) -> str:
    if "children" in node:
        return f"$not at {node.get('path') or 'the top level'}: the negated clauses matched"
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
        return f"$not at {node.get('path') or 'the top level'} (negated clauses matched)"
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


# ---------------------------------------------------------------------------------------------
# Index
#
# Each trigger gets a *guard*: a few terms such that whenever its filter matches an event, at
# least one term is hit by that event. A term is an equality on a path (dict buckets), a string
# prefix on a path (buckets per prefix length) or a numeric/string bound on a path (a sorted
# list searched with bisect). Matching collects the triggers of every hit term and runs only
# their compiled filters; triggers without a guard are scanned on every event.

_EQ: Final = "eq"
_PREFIX: Final = "prefix"
_RANGE: Final = "range"
# A bound term is chosen only when no equality or prefix term is about as narrow, since it
# hits every event on the satisfied side of the bound.
_RANGE_BASE_COST: Final = 4.0
_NEW_PATH_COST: Final = 0.5

_Term = tuple[str, tuple[str, ...], Any]


class _Entry:
    __slots__ = ("event_type", "fn", "seq", "terms", "trigger_id")

    def __init__(self, trigger_id: str, seq: int, event_type: str, flt: Filter) -> None:
        self.trigger_id = trigger_id
        self.seq = seq
        self.event_type = event_type
        self.fn = flt._fn
        self.terms: tuple[_Term, ...] = ()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


class _EqIndex:
    """path value -> triggers, with 1 and 1.0 in one bucket and True apart from 1."""

    __slots__ = ("buckets", "get")

    def __init__(self, segs: tuple[str, ...]) -> None:
        self.get = _make_getter(segs)
        self.buckets: dict[Any, dict[str, _Entry]] = {}

    def crowd(self, keys: frozenset[Any]) -> int:
        return sum(len(self.buckets.get(k, ())) for k in keys)

    def add(self, keys: frozenset[Any], entry: _Entry) -> None:
        for key in keys:
            self.buckets.setdefault(key, {})[entry.trigger_id] = entry

    def discard(self, keys: frozenset[Any], entry: _Entry) -> None:
        for key in keys:
            bucket = self.buckets.get(key)
            if bucket is not None:
                bucket.pop(entry.trigger_id, None)
                if not bucket:
                    del self.buckets[key]

    def __bool__(self) -> bool:
        return bool(self.buckets)

    def collect(self, event: Mapping[str, Any], out: dict[str, _Entry]) -> None:
        value = self.get(event)
        if value is MISSING:
            return
        buckets = self.buckets
        if isinstance(value, (list, tuple)):
            for item in value:
                bucket = buckets.get(_key(item))
                if bucket:
                    out.update(bucket)
        else:
            bucket = buckets.get(value if type(value) is str else _key(value))
            if bucket:
                out.update(bucket)


class _PrefixIndex:
    """prefix -> triggers; an event string is cut at each registered prefix length."""

    __slots__ = ("buckets", "get", "lengths", "sorted_lengths")

    def __init__(self, segs: tuple[str, ...]) -> None:
        self.get = _make_getter(segs)
        self.buckets: dict[str, dict[str, _Entry]] = {}
        self.lengths: dict[int, int] = {}
        self.sorted_lengths: tuple[int, ...] = ()

    def crowd(self, prefix: str) -> int:
        return len(self.buckets.get(prefix, ()))

    def add(self, prefix: str, entry: _Entry) -> None:
        bucket = self.buckets.setdefault(prefix, {})
        if entry.trigger_id in bucket:
            return
        bucket[entry.trigger_id] = entry
        size = len(prefix)
        self.lengths[size] = self.lengths.get(size, 0) + 1
        if self.lengths[size] == 1:
            self.sorted_lengths = tuple(sorted(self.lengths))

    def discard(self, prefix: str, entry: _Entry) -> None:
        bucket = self.buckets.get(prefix)
        if bucket is None or bucket.pop(entry.trigger_id, None) is None:
            return
        if not bucket:
            del self.buckets[prefix]
        size = len(prefix)
        self.lengths[size] -= 1
        if not self.lengths[size]:
            del self.lengths[size]
            self.sorted_lengths = tuple(sorted(self.lengths))

    def __bool__(self) -> bool:
        return bool(self.buckets)

    def collect(self, event: Mapping[str, Any], out: dict[str, _Entry]) -> None:
        value = self.get(event)
        if value is MISSING:
            return
        buckets = self.buckets
        for text in _strings(value):
            size = len(text)
            for cut in self.sorted_lengths:
                if cut > size:
                    break
                bucket = buckets.get(text[:cut])
                if bucket:
                    out.update(bucket)


class _Bounds:
    """One operator's bounds on one path, sorted, each with its trigger."""

    __slots__ = ("bounds", "entries")

    def __init__(self) -> None:
        self.bounds: list[Any] = []
        self.entries: list[_Entry] = []

    def add(self, bound: Any, entry: _Entry) -> None:
        at = bisect.bisect_right(self.bounds, bound)
        self.bounds.insert(at, bound)
        self.entries.insert(at, entry)

    def discard(self, bound: Any, entry: _Entry) -> None:
        at = bisect.bisect_left(self.bounds, bound)
        end = bisect.bisect_right(self.bounds, bound)
        for i in range(at, end):
            if self.entries[i] is entry:
                del self.bounds[i]
                del self.entries[i]
                return

    def satisfied_by(self, op: str, value: Any) -> list[_Entry]:
        """The entries whose bound ``value`` satisfies under ``op``."""
        if op == "$gt":  # bound < value
            return self.entries[: bisect.bisect_left(self.bounds, value)]
        if op == "$gte":  # bound <= value
            return self.entries[: bisect.bisect_right(self.bounds, value)]
        if op == "$lt":  # value < bound
            return self.entries[bisect.bisect_right(self.bounds, value) :]
        return self.entries[bisect.bisect_left(self.bounds, value) :]  # $lte: value <= bound


class _RangeIndex:
    """(operator, number-or-string) -> sorted bounds on one path."""

    __slots__ = ("get", "lists")

    def __init__(self, segs: tuple[str, ...]) -> None:
        self.get = _make_getter(segs)
        self.lists: dict[tuple[str, bool], _Bounds] = {}

    def crowd(self, op: str, bound: Any) -> int:
        found = self.lists.get((op, isinstance(bound, str)))
        return len(found.bounds) if found is not None else 0

    def add(self, op: str, bound: Any, entry: _Entry) -> None:
        key = (op, isinstance(bound, str))
        found = self.lists.get(key)
        if found is None:
            found = self.lists[key] = _Bounds()
        found.add(bound, entry)

    def discard(self, op: str, bound: Any, entry: _Entry) -> None:
        key = (op, isinstance(bound, str))
        found = self.lists.get(key)
        if found is not None:
            found.discard(bound, entry)
            if not found.bounds:
                del self.lists[key]

    def __bool__(self) -> bool:
        return bool(self.lists)

    def collect(self, event: Mapping[str, Any], out: dict[str, _Entry]) -> None:
        value = self.get(event)
        if value is MISSING:
            return
        items = value if isinstance(value, (list, tuple)) else (value,)
        for item in items:
            if isinstance(item, str):
                text = True
            elif _is_number(item) and not (isinstance(item, float) and math.isnan(item)):
                text = False
            else:
                continue
            for (op, for_text), bounds in self.lists.items():
                if for_text is text:
                    for entry in bounds.satisfied_by(op, item):
                        out[entry.trigger_id] = entry


_Structure = _EqIndex | _PrefixIndex | _RangeIndex


class _TypeIndex:
    __slots__ = ("all", "eq", "prefix", "range", "scan")

    def __init__(self) -> None:
        self.eq: dict[tuple[str, ...], _EqIndex] = {}
        self.prefix: dict[tuple[str, ...], _PrefixIndex] = {}
        self.range: dict[tuple[str, ...], _RangeIndex] = {}
        self.scan: dict[str, _Entry] = {}
        self.all: dict[str, _Entry] = {}

    def _cost(self, term: _Term) -> float:
        kind, segs, payload = term
        if kind == _EQ:
            eq = self.eq.get(segs)
            if eq is None:
                return _NEW_PATH_COST + 0.01 * len(payload)
            return eq.crowd(payload) + 0.01 * len(payload)
        if kind == _PREFIX:
            pre = self.prefix.get(segs)
            return 1.0 + (pre.crowd(payload) if pre is not None else _NEW_PATH_COST)
        rng = self.range.get(segs)
        # Half the bounds on the same side are hit by a typical value.
        crowd = rng.crowd(*payload) / 2 if rng is not None else _NEW_PATH_COST
        return _RANGE_BASE_COST + crowd

    def guard(self, node: _Node) -> tuple[float, list[_Term]] | None:
        """The cheapest guard for a node, with its estimated candidate count."""
        if isinstance(node, _Leaf):
            term = _leaf_term(node)
            return None if term is None else (self._cost(term), [term])
        if node.op == "$not":
            return None
        options = [self.guard(child) for child in node.children]
        if node.op == "$or":
            total, terms = 0.0, []
            for option in options:
                if option is None:
                    return None
                total += option[0]
                terms.extend(option[1])
            return total, terms
        best: tuple[float, list[_Term]] | None = None
        for option in options:
            if option is not None and (best is None or option[0] < best[0]):
                best = option
        return best

    def structure(self, kind: str, segs: tuple[str, ...]) -> _Structure:
        table: dict[tuple[str, ...], Any] = (
            self.eq if kind == _EQ else self.prefix if kind == _PREFIX else self.range
        )
        found = table.get(segs)
        if found is None:
            factory = _EqIndex if kind == _EQ else _PrefixIndex if kind == _PREFIX else _RangeIndex
            found = table[segs] = factory(segs)
        assert isinstance(found, (_EqIndex, _PrefixIndex, _RangeIndex))
        return found

    def link(self, entry: _Entry, root: _Group) -> None:
        self.all[entry.trigger_id] = entry
        found = self.guard(root) if root.children else None
        if found is None:
            self.scan[entry.trigger_id] = entry
            return
        entry.terms = tuple(found[1])
        if len(entry.terms) == 1:
            entry.fn = _residual(root, entry.terms[0])
        for kind, segs, payload in entry.terms:
            where = self.structure(kind, segs)
            if isinstance(where, _RangeIndex):
                where.add(payload[0], payload[1], entry)
            else:
                where.add(payload, entry)

    def unlink(self, entry: _Entry) -> None:
        self.all.pop(entry.trigger_id, None)
        self.scan.pop(entry.trigger_id, None)
        for kind, segs, payload in entry.terms:
            table: dict[tuple[str, ...], Any] = (
                self.eq if kind == _EQ else self.prefix if kind == _PREFIX else self.range
            )
            where = table.get(segs)
            if where is None:
                continue
            if isinstance(where, _RangeIndex):
                where.discard(payload[0], payload[1], entry)
            else:
                where.discard(payload, entry)
            if not where:
                del table[segs]
        entry.terms = ()


def _leaf_term(leaf: _Leaf) -> _Term | None:
    if leaf.index_keys is not None:
        return (_EQ, leaf.segs, leaf.index_keys)
    if leaf.op == "$prefix":
        return (_PREFIX, leaf.segs, leaf.expected)
    if leaf.op == "$wildcard":
        # Every string a glob matches starts with the literal text before its first '*'.
        head = str(leaf.expected).split("*", 1)[0]
        return (_PREFIX, leaf.segs, head) if head else None
    if leaf.op in _ORDERING:
        return (_RANGE, leaf.segs, (leaf.op, leaf.expected))
    return None


def _residual(root: _Group, term: _Term) -> Predicate:
    """The filter without the conjunct that ``term`` stands for, when a hit proves it.

    A candidate reached through an equality, ``$prefix`` or bound term already satisfies that
    clause, so testing it again is wasted work. (A ``$wildcard`` head proves nothing.)
    """
    for i, child in enumerate(root.children):
        if isinstance(child, _Leaf) and child.op != "$wildcard" and _leaf_term(child) == term:
            rest = root.children[:i] + root.children[i + 1 :]
            return _all_of([c.predicate() for c in rest])
    return root.predicate()


def _seq_of(entry: _Entry) -> int:
    return entry.seq


class TriggerIndex:
    """Compiled trigger filters grouped by event type, each reachable through its guard.

    :meth:`match` returns trigger ids in the order they were first put (replacing a trigger
    keeps its place). Not thread-safe: callers serialise :meth:`put` / :meth:`remove` against
    :meth:`match`.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._types: dict[str, _TypeIndex] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, trigger_id: object) -> bool:
        return trigger_id in self._entries

    def put(
        self, trigger_id: str, event_type: str, filter: Filter | Mapping[str, Any] | None
    ) -> None:
        """Add a trigger, or replace the one with the same id."""
        flt = compile_filter(filter)
        old = self._entries.get(trigger_id)
        if old is not None:
            seq = old.seq
            self._unlink(old)
        else:
            self._seq += 1
            seq = self._seq
        tindex = self._types.get(event_type)
        if tindex is None:
            tindex = self._types[event_type] = _TypeIndex()
        entry = _Entry(trigger_id, seq, event_type, flt)
        self._entries[trigger_id] = entry
        tindex.link(entry, flt._root)

    def _unlink(self, entry: _Entry) -> None:
        tindex = self._types.get(entry.event_type)
        if tindex is None:
            return
        tindex.unlink(entry)
        if not tindex.all:
            del self._types[entry.event_type]

    def remove(self, trigger_id: str) -> None:
        """Forget a trigger; unknown ids are ignored."""
        entry = self._entries.pop(trigger_id, None)
        if entry is not None:
            self._unlink(entry)

    def candidates(self, event_type: str) -> list[str]:
        """Every trigger id registered for ``event_type``, in insertion order."""
        tindex = self._types.get(event_type)
        if tindex is None:
            return []
        return [e.trigger_id for e in sorted(tindex.all.values(), key=_seq_of)]

    def match(self, event: Mapping[str, Any]) -> list[str]:
        """Ids of the triggers for ``event["event_type"]`` whose filter matches, in put order."""
        event_type = event.get("event_type")
        if type(event_type) is not str:
            return []
        tindex = self._types.get(event_type)
        if tindex is None:
            return []
        found: dict[str, _Entry] = {}
        for eq in tindex.eq.values():
            eq.collect(event, found)
        if tindex.prefix:
            for pre in tindex.prefix.values():
                pre.collect(event, found)
        if tindex.range:
            for rng in tindex.range.values():
                rng.collect(event, found)
        hits = [entry for entry in found.values() if entry.fn(event)]
        for entry in tindex.scan.values():
            if entry.fn(event):
                hits.append(entry)
        if len(hits) > 1:
            hits.sort(key=_seq_of)
        return [e.trigger_id for e in hits]
