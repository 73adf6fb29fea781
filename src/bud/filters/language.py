"""The filter language: its limits and operators, the compiler, and :class:`Filter`.

A filter is validated once and compiled into the nodes of :mod:`bud.filters.clauses`; a
malformed one is refused with a :class:`~bud.errors.FilterError` naming the offending clause.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from bud.errors import FilterError
from bud.filters.clauses import (
    _ORDERING,
    Predicate,
    Test,
    _accepts_types,
    _always,
    _contains_test,
    _eq_test,
    _exists_test,
    _Group,
    _is_str,
    _Leaf,
    _negated_eq_test,
    _Node,
    _ordering_test,
    _string_op_test,
)
from bud.filters.values import _copy_json, _is_number, _json_type, _key

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
# The operators that compare by equality key, and so compile through one path.
_EQUALITY: Final = frozenset({"$eq", "$ne", "$in", "$nin", "$anything_but"})
_COMBINATORS: Final = frozenset({"$and", "$or", "$not"})
_EVENT: Final = "$event"


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
        accepts = _accepts_types(types)
        return self._leaf(op, segs, where, expected, _eq_test(keys), accepts, index_keys=keys)

    def operator(self, op: str, operand: Any, *, segs: tuple[str, ...], where: str) -> _Leaf:
        self._count(where)
        if op in _EQUALITY:
            if op in ("$in", "$nin") or (op == "$anything_but" and isinstance(operand, list)):
                values = self._scalar_list(operand, where=where, what=f"{op} operand")
            else:
                self._scalar(operand, where)
                values = [operand]
            keys = frozenset(_key(v) for v in values)
            expected = values if op in ("$in", "$nin") else operand
            if op in ("$eq", "$in"):
                return self._eq_leaf(op, segs, where, expected, keys)
            return self._negated_eq(op, segs, where, expected, keys)
        if op in _ORDERING:
            if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
                raise FilterError(
                    f"{op} needs a number or a string (strings such as ISO-8601 timestamps "
                    f"compare lexicographically), got {_json_type(operand)}",
                    path=where,
                )
            self._scalar(operand, where)  # refuses non-finite numbers
            accepts = _is_str if isinstance(operand, str) else _is_number
            return self._leaf(op, segs, where, operand, _ordering_test(op, operand), accepts)
        if op == "$exists":
            if not isinstance(operand, bool):
                raise FilterError(
                    f"$exists needs true or false, got {_json_type(operand)}", path=where
                )
            return self._leaf(op, segs, where, operand, _exists_test(operand), _always)
        if op in ("$prefix", "$suffix", "$eq_ignore_case", "$wildcard"):
            if not isinstance(operand, str):
                raise FilterError(f"{op} needs a string, got {_json_type(operand)}", path=where)
            if op == "$wildcard":
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
            return self._leaf(op, segs, where, operand, _string_op_test(op, operand), _is_str)
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
        index_keys: frozenset[Any] | None = None,
    ) -> _Leaf:
        return _Leaf(
            op=op,
            segs=segs,
            clause=where,
            expected=operand,
            test=test,
            accepts=accepts,
            index_keys=index_keys,
        )

    def _negated_eq(
        self, op: str, segs: tuple[str, ...], where: str, expected: Any, keys: frozenset[Any]
    ) -> _Leaf:
        test = _negated_eq_test(op, keys)
        return self._leaf(op, segs, where, expected, test, _always)


def _single(nodes: list[_Node], path: str) -> _Node:
    """One node for a list of conjuncts: the leaf itself, or an ``$and`` group."""
    if len(nodes) == 1:
        return nodes[0]
    return _Group("$and", path, tuple(nodes))


# ---------------------------------------------------------------------------------------------
# Public API


class Filter:
    """An immutable compiled filter. Build one with :func:`compile_filter`."""

    __slots__ = ("_fn", "_root", "source")

    source: dict[str, Any]
    _root: _Group
    # Built on the first ``matches``: a filter that is only explained, or only indexed (the
    # index builds its own residual predicates), never pays for it.
    _fn: Predicate | None

    def __init__(self, source: Mapping[str, Any] | None = None) -> None:
        if source is not None and not isinstance(source, Mapping):
            raise FilterError(f"must be a JSON object, got {_json_type(source)}")
        src: dict[str, Any] = _copy_json(source) if source else {}
        conjuncts = tuple(_Compiler().obj(src, segs=None, where="", depth=1))
        root = _Group("$and", "", conjuncts)
        object.__setattr__(self, "source", src)
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_fn", None)

    @property
    def _conjuncts(self) -> tuple[_Node, ...]:
        return self._root.children

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
        fn = self._fn
        if fn is None:
            fn = self._root.predicate()
            object.__setattr__(self, "_fn", fn)
        return fn(event)

    def explain(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The verdict tree: every clause with its path, expected and actual value, outcome."""
        return self._root.verdict(event)


def compile_filter(filter: Mapping[str, Any] | Filter | None) -> Filter:
    """Validate and compile a filter; raises :class:`~bud.errors.FilterError` with the path."""
    if isinstance(filter, Filter):
        return filter
    return Filter(filter)


def matches(filter: Mapping[str, Any] | Filter | None, event: Mapping[str, Any]) -> bool:
    """Compile ``filter`` and test one event (compile once and reuse for many events)."""
    return compile_filter(filter).matches(event)
