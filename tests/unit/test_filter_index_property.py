"""Property tests: the index, the compiled filters and a plain reference evaluator agree.

The reference evaluator below interprets the filter dict clause by clause, written from the
documented semantics (docs/filters.md) without sharing code with ``bud.filters``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bud.filters import TriggerIndex, compile_filter

# --- reference evaluator --------------------------------------------------------------------------

_ABSENT = object()


def ref_lookup(node: Any, path: list[str]) -> Any:
    if not path:
        return node
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return ref_lookup(node[head], rest) if head in node else _ABSENT
    if isinstance(node, list):
        if head.isdigit():
            return ref_lookup(node[int(head)], rest) if int(head) < len(node) else _ABSENT
        collected: list[Any] = []
        for element in node:
            found = ref_lookup(element, path)
            if found is _ABSENT:
                continue
            collected.extend(found if isinstance(found, list) else [found])
        return collected if collected else _ABSENT
    return _ABSENT


def ref_norm(value: Any) -> tuple[Any, ...]:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("num", value)
    if isinstance(value, str):
        return ("str", value)
    if value is None:
        return ("null",)
    return ("other", id(value))


def ref_same(a: Any, b: Any) -> bool:
    return ref_norm(a) == ref_norm(b)


def ref_elements(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def ref_is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def ref_in(value: Any, options: list[Any]) -> bool:
    if value is _ABSENT:
        return False
    return any(ref_same(e, o) for e in ref_elements(value) for o in options)


def ref_op(op: str, operand: Any, value: Any) -> bool:
    present = value is not _ABSENT
    if op == "$exists":
        return present is operand
    if op == "$eq":
        return ref_in(value, [operand])
    if op == "$in":
        return ref_in(value, operand)
    if op == "$ne":
        return not ref_in(value, [operand])
    if op == "$nin":
        return not ref_in(value, operand)
    if op == "$anything_but":
        options = operand if isinstance(operand, list) else [operand]
        return present and not ref_in(value, options)
    if not present:
        return False
    if op == "$contains":
        if isinstance(value, str):
            return isinstance(operand, str) and operand in value
        if isinstance(value, list):
            return any(ref_same(e, operand) for e in value)
        return False
    for element in ref_elements(value):
        if op in ("$gt", "$gte", "$lt", "$lte"):
            comparable = (ref_is_num(element) and ref_is_num(operand)) or (
                isinstance(element, str) and isinstance(operand, str)
            )
            if not comparable:
                continue
            if (
                (op == "$gt" and element > operand)
                or (op == "$gte" and element >= operand)
                or (op == "$lt" and element < operand)
                or (op == "$lte" and element <= operand)
            ):
                return True
        elif isinstance(element, str):
            if op == "$prefix" and element.startswith(operand):
                return True
            if op == "$suffix" and element.endswith(operand):
                return True
            if op == "$eq_ignore_case" and element.casefold() == operand.casefold():
                return True
            if op == "$wildcard":
                regex = ".*".join(re.escape(part) for part in operand.split("*"))
                if re.fullmatch(regex, element, re.DOTALL):
                    return True
    return False


def ref_object(obj: dict[str, Any], base: list[str] | None, event: dict[str, Any]) -> bool:
    for key, value in obj.items():
        if key == "$and":
            ok = all(ref_object(sub, base, event) for sub in value)
        elif key == "$or":
            ok = any(ref_object(sub, base, event) for sub in value)
        elif key == "$not":
            ok = not ref_object(value, base, event)
        elif key == "$event":
            ok = ref_value(value, [], event)
        elif key.startswith("$event."):
            ok = ref_value(value, key.split(".")[1:], event)
        elif key.startswith("$"):
            assert base
            ok = ref_op(key, value, ref_lookup(event, base))
        else:
            path = (base if base is not None else ["data"]) + key.split(".")
            ok = ref_value(value, path, event)
        if not ok:
            return False
    return True


def ref_value(spec: Any, path: list[str], event: dict[str, Any]) -> bool:
    if isinstance(spec, dict):
        return ref_object(spec, path, event)
    if isinstance(spec, list):
        return ref_op("$in", spec, ref_lookup(event, path))
    return ref_op("$eq", spec, ref_lookup(event, path))


def ref_matches(flt: dict[str, Any] | None, event: dict[str, Any]) -> bool:
    return ref_object(flt or {}, None, event)


# --- strategies -----------------------------------------------------------------------------------

SCALARS = st.sampled_from(["x", "y", "xy", "X", "", 0, 1, 1.0, 2, 2.5, True, False, None])
STRINGS = st.sampled_from(["x", "y", "xy", "X", "", "2024-01", "2024-02-01"])
NUMBERS = st.sampled_from([0, 1, 1.0, 2, 2.5, -1])
DATA_PATHS = st.sampled_from(["a", "b", "tags", "meta.region", "items.name", "tags.0"])

OPERAND: dict[str, st.SearchStrategy[Any]] = {
    "$eq": SCALARS,
    "$ne": SCALARS,
    "$in": st.lists(SCALARS, min_size=1, max_size=3),
    "$nin": st.lists(SCALARS, min_size=1, max_size=3),
    "$gt": st.one_of(NUMBERS, STRINGS),
    "$gte": st.one_of(NUMBERS, STRINGS),
    "$lt": st.one_of(NUMBERS, STRINGS),
    "$lte": st.one_of(NUMBERS, STRINGS),
    "$exists": st.booleans(),
    "$prefix": STRINGS,
    "$suffix": STRINGS,
    "$contains": SCALARS,
    "$wildcard": st.sampled_from(["x*", "*y", "*", "x*y", "*x*", "2024-*-01", "xy"]),
    "$anything_but": st.one_of(SCALARS, st.lists(SCALARS, min_size=1, max_size=3)),
    "$eq_ignore_case": STRINGS,
}


@st.composite
def operator_objects(draw: st.DrawFn) -> dict[str, Any]:
    ops = draw(st.lists(st.sampled_from(sorted(OPERAND)), min_size=1, max_size=2, unique=True))
    return {op: draw(OPERAND[op]) for op in ops}


VALUE_SPECS = st.one_of(SCALARS, st.lists(SCALARS, min_size=1, max_size=3), operator_objects())


@st.composite
def leaf_filters(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["data", "data", "data", "nested", "event"]))
    spec = draw(VALUE_SPECS)
    if kind == "nested":
        return {"meta": {"region": spec}}
    if kind == "event":
        return {draw(st.sampled_from(["$event.source", "$event.depth"])): spec}
    return {draw(DATA_PATHS): spec}


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    return merged


FILTERS: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.lists(leaf_filters(), min_size=1, max_size=3).map(_merge),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda fs: {"$and": fs}),
        inner.map(lambda f: {"$not": f}),
        st.tuples(leaf_filters(), inner).map(lambda p: {**p[1], **p[0]}),
    ),
    max_leaves=6,
)
MAYBE_FILTERS = st.one_of(st.none(), st.just({}), FILTERS)

# Filters with a required equality clause, so that most triggers land in index buckets.
EQUALITY_FILTERS = st.one_of(
    st.dictionaries(
        st.sampled_from(["a", "b", "tags", "meta.region", "$event.source", "items.name"]),
        st.one_of(SCALARS, st.lists(SCALARS, min_size=1, max_size=3)),
        min_size=1,
        max_size=2,
    ),
    st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["$eq", "$in"]), SCALARS).map(
        lambda t: {t[0]: {t[1]: [t[2]] if t[1] == "$in" else t[2]}}
    ),
)
# Filters guarded by a prefix or a bound rather than an equality.
# Globs with a literal head, which the index uses as a prefix (a hit proves nothing more).
HEADED_GLOBS = st.sampled_from(["x*y", "2024-*-01", "x*", "xy"])
SHAPED_OPERAND = {**OPERAND, "$wildcard": HEADED_GLOBS}
SHAPED_FILTERS = st.tuples(
    st.sampled_from(["a", "b", "tags", "items.name"]),
    st.sampled_from(["$prefix", "$wildcard", "$wildcard", "$gt", "$gte", "$lt", "$lte"]),
).flatmap(lambda t: SHAPED_OPERAND[t[1]].map(lambda v: {t[0]: {t[1]: v}}))
TRIGGER_FILTERS = st.one_of(
    MAYBE_FILTERS,
    EQUALITY_FILTERS,
    SHAPED_FILTERS,
    st.tuples(st.one_of(EQUALITY_FILTERS, SHAPED_FILTERS), FILTERS).map(lambda p: {**p[1], **p[0]}),
    st.lists(st.one_of(EQUALITY_FILTERS, SHAPED_FILTERS), min_size=1, max_size=3).map(
        lambda fs: {"$or": fs}
    ),
)

EVENT_VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(st.just("k"), SCALARS, max_size=1)
)
# Fields are present most of the time so that clauses have something to bite on.
MOSTLY = st.sampled_from([True, True, True, False])


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in ("a", "b", "tags"):
        if draw(MOSTLY):
            data[key] = draw(EVENT_VALUES)
    if draw(MOSTLY):
        meta: dict[str, Any] = {}
        if draw(MOSTLY):
            meta["region"] = draw(EVENT_VALUES)
        data["meta"] = draw(st.one_of(st.just(meta), EVENT_VALUES))
    if draw(st.booleans()):
        names = st.lists(
            st.one_of(st.fixed_dictionaries({"name": EVENT_VALUES}), SCALARS), max_size=3
        )
        data["items"] = draw(names)
    event: dict[str, Any] = {
        "event_type": draw(st.sampled_from(["t1", "t1", "t2", "t3"])),
        "source": draw(st.sampled_from(["x", "y", "budmodel"])),
        "data": data,
    }
    if draw(st.booleans()):
        event["depth"] = draw(st.sampled_from([0, 1, 2, True]))
    return event


# --- properties -----------------------------------------------------------------------------------

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(flt=MAYBE_FILTERS, event=events())
def test_compiled_filter_agrees_with_reference(
    flt: dict[str, Any] | None, event: dict[str, Any]
) -> None:
    compiled = compile_filter(flt)
    expected = ref_matches(flt, event)
    assert compiled.matches(event) is expected
    verdict = compiled.explain(event)
    assert verdict["matched"] is expected
    json.dumps(verdict)


Operation = tuple[str, str, str, dict[str, Any] | None]


def operations(filters: st.SearchStrategy[dict[str, Any] | None]) -> st.SearchStrategy[Any]:
    return st.lists(
        st.tuples(
            st.sampled_from(["put", "put", "put", "remove"]),
            st.sampled_from([f"trig_{i}" for i in range(12)]),
            st.sampled_from(["t1", "t2"]),
            filters,
        ),
        min_size=3,
        max_size=30,
    )


# Only prefix, glob and bound guards (alone, merged, or-ed), so those index structures and
# their removal get exercised as much as the equality buckets.
GUARDED_FILTERS = st.one_of(
    SHAPED_FILTERS,
    st.tuples(SHAPED_FILTERS, SHAPED_FILTERS).map(lambda p: {**p[0], **p[1]}),
    st.tuples(SHAPED_FILTERS, FILTERS).map(lambda p: {**p[1], **p[0]}),
    st.lists(SHAPED_FILTERS, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
)


def check_index(ops: list[Operation], probes: list[dict[str, Any]]) -> None:
    index = TriggerIndex()
    # A dict keeps first-insertion order on replacement, like the index promises.
    registered: dict[str, tuple[str, dict[str, Any] | None]] = {}
    for action, trigger_id, event_type, flt in ops:
        if action == "put":
            index.put(trigger_id, event_type, flt)
            registered[trigger_id] = (event_type, flt)
        else:
            index.remove(trigger_id)
            registered.pop(trigger_id, None)
    assert len(index) == len(registered)
    for trigger_id in registered:
        assert trigger_id in index
    for probe in probes:
        by_type = [tid for tid, (et, _) in registered.items() if et == probe["event_type"]]
        assert index.candidates(probe["event_type"]) == by_type
        scanned = [tid for tid in by_type if compile_filter(registered[tid][1]).matches(probe)]
        assert index.match(probe) == scanned
        assert scanned == [tid for tid in by_type if ref_matches(registered[tid][1], probe)]


PROBES = st.lists(events(), min_size=2, max_size=6)


@SETTINGS
@given(ops=operations(TRIGGER_FILTERS), probes=PROBES)
def test_index_matches_exactly_what_a_full_scan_matches(
    ops: list[Operation], probes: list[dict[str, Any]]
) -> None:
    check_index(ops, probes)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations(GUARDED_FILTERS), probes=PROBES)
def test_prefix_and_bound_guards_match_exactly_what_a_full_scan_matches(
    ops: list[Operation], probes: list[dict[str, Any]]
) -> None:
    check_index(ops, probes)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations(TRIGGER_FILTERS), probes=PROBES)
def test_index_is_exact_when_the_shared_piece_caches_keep_emptying(
    ops: list[Operation], probes: list[dict[str, Any]]
) -> None:
    from bud.filters import clauses, values

    caches: list[values._Interned[Any]] = [
        values._SEGS,
        values._GETTERS,
        clauses._TESTS,
        clauses._ACCEPTS,
        clauses._PREDICATES,
    ]
    limits = [cache.limit for cache in caches]
    try:
        for cache in caches:
            cache.limit = 1
        check_index(ops, probes)
    finally:
        for cache, limit in zip(caches, limits, strict=True):
            cache.limit = limit


@SETTINGS
@given(flt=MAYBE_FILTERS, event=events())
def test_a_matcher_view_reads_its_filter_back_unchanged(
    flt: dict[str, Any] | None, event: dict[str, Any]
) -> None:
    from bud.engine.matcher import Matcher

    matcher = Matcher()
    row = {"id": "t", "pipeline_id": "p", "event_type": "t1", "enabled": True, "filter": flt}
    matcher.put(row)
    view = matcher.get("t")
    assert view is not None
    compiled = compile_filter(flt)
    assert view.filter == compiled
    assert view.filter.explain(event) == compiled.explain(event)
