"""Compiled clauses: one test per operator, and the nodes a filter compiles into.

A :class:`_Leaf` is one clause (path, operator, operand); a :class:`_Group` is ``$and``,
``$or`` or ``$not`` over child nodes. Each node turns into a predicate (a closure over the
event) for matching, and into a verdict tree for explanations.

Tests, leaf predicates and combinations of predicates are interned (see
:class:`~bud.filters.values._Interned`): many triggers repeat the same clause on the same
path, and each distinct one is built once and shared. They are pure functions of their key.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from bud.filters.values import (
    MISSING,
    _copy_json,
    _intern_segs,
    _Interned,
    _is_array,
    _is_number,
    _json_type,
    _key,
    _make_getter,
)

Test = Callable[[Any], bool]
Predicate = Callable[[Mapping[str, Any]], bool]

_TESTS: Final[_Interned[Test]] = _Interned()
_ACCEPTS: Final[_Interned[Test]] = _Interned(256)
_PREDICATES: Final[_Interned[Predicate]] = _Interned()


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
    """The shared test of "some element's equality key is in ``keys``"."""
    return _TESTS.get(("eq", keys), lambda: _new_eq_test(keys))


def _new_eq_test(keys: frozenset[Any]) -> Test:
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
    return _TESTS.get((op, type(operand), operand), lambda: _new_ordering_test(op, operand))


def _new_ordering_test(op: str, operand: Any) -> Test:
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
    return _TESTS.get(("$contains", type(operand), operand), lambda: _new_contains_test(operand))


def _new_contains_test(operand: Any) -> Test:
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


def _bound_startswith(prefix: str) -> Callable[[str], bool]:
    return lambda s: s.startswith(prefix)


def _bound_endswith(suffix: str) -> Callable[[str], bool]:
    return lambda s: s.endswith(suffix)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _always(value: Any) -> bool:
    return True


def _string_op_test(op: str, operand: str) -> Test:
    """The shared test of ``$prefix`` / ``$suffix`` / ``$eq_ignore_case`` / ``$wildcard``."""
    return _TESTS.get((op, operand), lambda: _string_test(_string_fn(op, operand)))


def _string_fn(op: str, operand: str) -> Callable[[str], bool]:
    if op == "$prefix":
        return _bound_startswith(operand)
    if op == "$suffix":
        return _bound_endswith(operand)
    if op == "$eq_ignore_case":
        folded = operand.casefold()
        return lambda s: s.casefold() == folded
    return _glob(operand)


def _exists(value: Any) -> bool:
    return value is not MISSING


def _absent(value: Any) -> bool:
    return value is MISSING


def _exists_test(want: bool) -> Test:
    return _exists if want else _absent


def _negated_eq_test(op: str, keys: frozenset[Any]) -> Test:
    """``$ne`` / ``$nin`` (a missing field is "not equal") or ``$anything_but`` (it must exist)."""
    return _TESTS.get((op, keys), lambda: _new_negated_eq_test(op, keys))


def _new_negated_eq_test(op: str, keys: frozenset[Any]) -> Test:
    eq = _eq_test(keys)
    if op == "$anything_but":
        # EventBridge semantics: the field must be present.
        return lambda v: v is not MISSING and not eq(v)
    # MongoDB semantics: a missing field is "not equal".
    return lambda v: not eq(v)


def _accepts_types(types: frozenset[str]) -> Test:
    """Whether a value has one of the JSON ``types`` (shared per set of types)."""

    def make() -> Test:
        return lambda v: _json_type(v) in types

    return _ACCEPTS.get(types, make)


def _leaf_predicate(segs: tuple[str, ...], test: Test) -> Predicate:
    """The shared predicate ``test(value at segs)``."""

    def make() -> Predicate:
        get = _make_getter(segs)
        return lambda event: test(get(event))

    return _PREDICATES.get((segs, test), make)


def _true(event: Mapping[str, Any]) -> bool:
    return True


# ---------------------------------------------------------------------------------------------
# Compiled nodes


class _Leaf:
    """One clause: a path, an operator and an operand."""

    __slots__ = ("accepts", "clause", "expected", "get", "index_keys", "op", "segs", "test")

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
        self.segs = segs = _intern_segs(segs)
        self.clause = clause
        self.expected = expected
        self.test = test
        # Whether an actual value has a type this operator can compare at all; only used to
        # tell "type_mismatch" from "value_differs" in explanations.
        self.accepts = accepts
        self.index_keys = index_keys
        self.get = _make_getter(segs)

    @property
    def path(self) -> str:
        return ".".join(self.segs)

    def predicate(self) -> Predicate:
        return _leaf_predicate(self.segs, self.test)

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

    def verdict(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """This clause's verdict: path, expected and actual value, outcome."""
        value = self.get(event)
        outcome = self.outcome(value)
        return {
            "path": self.path,
            "op": self.op,
            "expected": _copy_json(self.expected),
            "actual": None if value is MISSING else value,
            "outcome": outcome,
            "matched": outcome == "matched",
            "clause": self.clause,
        }


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
            return _PREDICATES.get(("$not", inner), lambda: lambda event: not inner(event))
        if self.op == "$or":
            return _any_of(preds)
        return _all_of(preds)

    def verdict(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The children's verdicts, and whether they combine into a match."""
        children = [c.verdict(event) for c in self.children]
        if self.op == "$not":
            matched = not children[0]["matched"]
        elif self.op == "$or":
            matched = any(c["matched"] for c in children)
        else:
            matched = all(c["matched"] for c in children)
        return {"op": self.op, "path": self.path, "matched": matched, "children": children}


_Node = _Leaf | _Group


def _all_of(preds: list[Predicate]) -> Predicate:
    if not preds:
        return _true
    if len(preds) == 1:
        return preds[0]
    key = ("$and", *preds)
    return _PREDICATES.get(key, lambda: _new_all_of(preds))


def _new_all_of(preds: list[Predicate]) -> Predicate:
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
    key = ("$or", *preds)
    return _PREDICATES.get(key, lambda: _new_any_of(preds))


def _new_any_of(preds: list[Predicate]) -> Predicate:
    frozen = tuple(preds)

    def any_of(event: Mapping[str, Any]) -> bool:
        for pred in frozen:  # noqa: SIM110
            if pred(event):
                return True
        return False

    return any_of
