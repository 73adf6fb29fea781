"""The filter language: operators, combinators, validation, explanations and the index."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bud.errors import FilterError
from bud.filters import (
    MAX_ANY_OF,
    MAX_CLAUSES,
    MAX_DEPTH,
    Filter,
    TriggerIndex,
    compile_filter,
    explain,
    first_failure,
    matches,
    summarize,
)


def make_event(data: dict[str, Any] | None = None, **envelope: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_type": "model.added",
        "event_id": "evt_1",
        "timestamp": "2024-01-29T12:00:00Z",
        "source": "budmodel",
        "data": {
            "model_id": "m1",
            "model_name": "Llama-3-8B-instruct",
            "model_source": "hugging_face",
            "auto_deploy": True,
            "replicas": 3,
            "ratio": 0.5,
            "tags": ["a", "b"],
            "meta": {"region": "eu", "zone": None, "labels": ["x", "y"]},
            "created": "2024-01-29T12:00:00Z",
            "nothing": None,
            "items": [{"name": "n1", "size": 1}, {"name": "n2", "size": 5}],
        },
        "correlation_id": "cor_1",
        "causation_id": None,
        "depth": 1,
    }
    if data is not None:
        event["data"] = data
    event.update(envelope)
    return event


EVENT = make_event()


def leaf(flt: dict[str, Any] | None, event: dict[str, Any] = EVENT) -> dict[str, Any]:
    """The only leaf of a one-clause filter's verdict."""
    verdict = explain(flt, event)
    (child,) = verdict["children"]
    assert isinstance(child, dict)
    return child


# --- the product's own form ---------------------------------------------------------------------


def test_spec_form_matches_as_written() -> None:
    flt = {"model_source": "hugging_face", "auto_deploy": True}
    assert matches(flt, EVENT)
    assert not matches(flt, make_event({"model_source": "hugging_face", "auto_deploy": False}))
    assert not matches(flt, make_event({"model_source": "s3", "auto_deploy": True}))


@pytest.mark.parametrize("flt", [None, {}])
def test_empty_filter_matches_everything(flt: dict[str, Any] | None) -> None:
    assert matches(flt, EVENT)
    assert matches(flt, {"event_type": "x"})
    assert explain(flt, EVENT) == {"op": "$and", "path": "", "matched": True, "children": []}


def test_nested_objects_equal_dotted_keys() -> None:
    assert matches({"meta.region": "eu"}, EVENT)
    assert matches({"meta": {"region": "eu"}}, EVENT)
    assert not matches({"meta": {"region": "us"}}, EVENT)
    assert explain({"meta": {"region": "eu"}}, EVENT)["children"][0]["path"] == "data.meta.region"


def test_nested_object_can_mix_fields_and_operators() -> None:
    assert matches({"meta": {"$exists": True, "region": "eu"}}, EVENT)
    assert matches({"meta": {"region": {"$prefix": "e"}}}, EVENT)


def test_multiple_keys_are_and() -> None:
    assert matches({"model_id": "m1", "replicas": 3}, EVENT)
    assert not matches({"model_id": "m1", "replicas": 4}, EVENT)


def test_any_of_list() -> None:
    assert matches({"model_id": ["m0", "m1"]}, EVENT)
    assert not matches({"model_id": ["m0", "m2"]}, EVENT)
    assert leaf({"model_id": ["m0", "m1"]})["op"] == "$in"


# --- equality semantics ---------------------------------------------------------------------------


def test_arrays_in_events_match_any_element() -> None:
    assert matches({"tags": "a"}, EVENT)
    assert matches({"tags": "b"}, EVENT)
    assert not matches({"tags": "c"}, EVENT)
    assert matches({"tags": ["c", "b"]}, EVENT)
    assert matches({"meta.labels": "y"}, EVENT)


def test_paths_fan_out_through_arrays_of_objects() -> None:
    assert matches({"items.name": "n2"}, EVENT)
    assert matches({"items.size": {"$gt": 4}}, EVENT)
    assert not matches({"items.size": {"$gt": 5}}, EVENT)
    assert matches({"items.1.name": "n2"}, EVENT)
    assert not matches({"items.0.name": "n2"}, EVENT)
    assert not matches({"items.7.name": {"$exists": True}}, EVENT)


def test_numbers_compare_numerically() -> None:
    assert matches({"replicas": 3.0}, EVENT)
    assert matches({"ratio": 0.5}, EVENT)
    assert matches({"replicas": [1.0, 3.0]}, EVENT)
    assert matches({"replicas": {"$in": [3.0]}}, EVENT)


@pytest.mark.parametrize(
    ("flt", "data"),
    [
        ({"flag": 1}, {"flag": True}),
        ({"flag": True}, {"flag": 1}),
        ({"flag": 0}, {"flag": False}),
        ({"flag": False}, {"flag": 0.0}),
        ({"n": "1"}, {"n": 1}),
        ({"n": 1}, {"n": "1"}),
        ({"n": None}, {"n": 0}),
        ({"n": None}, {"n": ""}),
        ({"n": [1, 2]}, {"n": True}),
    ],
)
def test_equality_is_type_strict(flt: dict[str, Any], data: dict[str, Any]) -> None:
    assert not matches(flt, make_event(data))


def test_booleans_are_not_numbers_for_ordering() -> None:
    assert not matches({"flag": {"$gt": 0}}, make_event({"flag": True}))
    assert not matches({"flag": {"$gte": 0}}, make_event({"flag": False}))


def test_null_values() -> None:
    assert matches({"nothing": None}, EVENT)
    assert matches({"meta.zone": None}, EVENT)
    assert not matches({"absent": None}, EVENT)  # null does not match a missing path
    assert matches({"nothing": {"$exists": True}}, EVENT)
    assert matches({"nothing": {"$ne": "x"}}, EVENT)
    assert not matches({"nothing": {"$ne": None}}, EVENT)
    assert matches({"absent": {"$ne": None}}, EVENT)
    assert matches({"tags": {"$ne": None}}, EVENT)


def test_missing_path_does_not_match_positive_operators() -> None:
    for op, operand in [
        ("$eq", 1),
        ("$in", [1]),
        ("$gt", 0),
        ("$prefix", ""),
        ("$suffix", ""),
        ("$contains", "a"),
        ("$wildcard", "*"),
        ("$eq_ignore_case", "a"),
        ("$anything_but", "x"),
    ]:
        assert not matches({"absent": {op: operand}}, EVENT), op
    assert not matches({"meta.absent.deeper": 1}, EVENT)
    assert not matches({"model_id.deeper": "m1"}, EVENT)  # a string has no fields


def test_event_without_data_or_with_odd_data() -> None:
    assert not matches({"x": 1}, {"event_type": "t"})
    assert not matches({"x": 1}, {"event_type": "t", "data": "text"})
    assert matches({"x": {"$exists": False}}, {"event_type": "t"})


# --- operators ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ({"$eq": "m1"}, True),
        ({"$eq": "m2"}, False),
        ({"$ne": "m2"}, True),
        ({"$ne": "m1"}, False),
        ({"$in": ["m1", "m2"]}, True),
        ({"$in": ["m3"]}, False),
        ({"$nin": ["m2", "m3"]}, True),
        ({"$nin": ["m1"]}, False),
        ({"$prefix": "m"}, True),
        ({"$prefix": "x"}, False),
        ({"$suffix": "1"}, True),
        ({"$suffix": "m"}, False),
        ({"$contains": "1"}, True),
        ({"$contains": "x"}, False),
        ({"$wildcard": "m*"}, True),
        ({"$wildcard": "*1"}, True),
        ({"$wildcard": "x*"}, False),
        ({"$anything_but": "m2"}, True),
        ({"$anything_but": ["m1", "m2"]}, False),
        ({"$eq_ignore_case": "M1"}, True),
        ({"$eq_ignore_case": "M2"}, False),
        ({"$exists": True}, True),
        ({"$exists": False}, False),
    ],
)
def test_string_operators(clause: dict[str, Any], expected: bool) -> None:
    assert matches({"model_id": clause}, EVENT) is expected


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ({"$gt": 2}, True),
        ({"$gt": 3}, False),
        ({"$gte": 3}, True),
        ({"$gte": 3.5}, False),
        ({"$lt": 4}, True),
        ({"$lt": 3}, False),
        ({"$lte": 3}, True),
        ({"$lte": 2.9}, False),
        ({"$gt": 2, "$lte": 10}, True),
        ({"$gt": 2, "$lte": 2.5}, False),
        ({"$gt": "2"}, False),  # a string operand never compares with a number
    ],
)
def test_ordering_operators(clause: dict[str, Any], expected: bool) -> None:
    assert matches({"replicas": clause}, EVENT) is expected


def test_ordering_on_iso_strings_is_lexicographic() -> None:
    assert matches({"created": {"$gte": "2024-01-01T00:00:00Z"}}, EVENT)
    assert not matches({"created": {"$lt": "2024-01-01"}}, EVENT)
    assert not matches({"replicas": {"$gt": "2024"}}, EVENT)


def test_exists() -> None:
    assert matches({"meta.region": {"$exists": True}}, EVENT)
    assert matches({"absent": {"$exists": False}}, EVENT)
    assert not matches({"absent": {"$exists": True}}, EVENT)
    assert not matches({"meta.region": {"$exists": False}}, EVENT)


def test_contains_substring_and_array_element() -> None:
    assert matches({"model_name": {"$contains": "3-8B"}}, EVENT)
    assert matches({"tags": {"$contains": "a"}}, EVENT)
    assert not matches({"meta.labels": {"$contains": "xy"}}, EVENT)
    assert matches({"nums": {"$contains": 2}}, make_event({"nums": [1, 2.0]}))
    assert not matches({"nums": {"$contains": True}}, make_event({"nums": [1]}))
    assert not matches({"replicas": {"$contains": 3}}, EVENT)


def test_wildcard() -> None:
    name = {"$wildcard": "llama-*-instruct"}
    assert matches({"n": name}, make_event({"n": "llama-3-8b-instruct"}))
    assert matches({"n": name}, make_event({"n": "llama--instruct"}))
    assert not matches({"n": name}, make_event({"n": "llama-instruct"}))
    assert not matches({"n": name}, make_event({"n": "llama-3-instructx"}))
    assert matches({"n": {"$wildcard": "*a*a*"}}, make_event({"n": "banana"}))
    assert not matches({"n": {"$wildcard": "a*a*a"}}, make_event({"n": "aa"}))
    assert matches({"n": {"$wildcard": "exact"}}, make_event({"n": "exact"}))
    assert matches({"n": {"$wildcard": "*"}}, make_event({"n": ""}))
    assert matches({"tags": {"$wildcard": "?*"}}, make_event({"tags": ["x", "?y"]}))


def test_eq_ignore_case() -> None:
    assert matches({"model_source": {"$eq_ignore_case": "HUGGING_Face"}}, EVENT)
    assert matches({"tags": {"$eq_ignore_case": "B"}}, EVENT)
    assert not matches({"replicas": {"$eq_ignore_case": "3"}}, EVENT)


def test_ne_and_nin_match_missing_paths_anything_but_does_not() -> None:
    assert matches({"absent": {"$ne": "x"}}, EVENT)
    assert matches({"absent": {"$nin": ["x"]}}, EVENT)
    assert not matches({"absent": {"$anything_but": "x"}}, EVENT)
    assert matches({"nothing": {"$anything_but": "x"}}, EVENT)


def test_negative_operators_on_arrays_mean_no_element() -> None:
    assert not matches({"tags": {"$ne": "a"}}, EVENT)
    assert matches({"tags": {"$ne": "c"}}, EVENT)
    assert not matches({"tags": {"$nin": ["b"]}}, EVENT)
    assert not matches({"tags": {"$anything_but": ["b", "z"]}}, EVENT)
    assert matches({"tags": {"$anything_but": "z"}}, EVENT)


# --- combinators and envelope ---------------------------------------------------------------------


def test_or_and_not() -> None:
    assert matches({"$or": [{"model_id": "m0"}, {"replicas": 3}]}, EVENT)
    assert not matches({"$or": [{"model_id": "m0"}, {"replicas": 4}]}, EVENT)
    assert matches({"$and": [{"model_id": "m1"}, {"replicas": 3}]}, EVENT)
    assert not matches({"$and": [{"model_id": "m1"}, {"replicas": 4}]}, EVENT)
    assert matches({"$not": {"model_id": "m0"}}, EVENT)
    assert not matches({"$not": {"model_id": "m1", "replicas": 3}}, EVENT)
    assert matches({"$not": {"model_id": "m1", "replicas": 4}}, EVENT)


def test_combinators_nest_at_any_level() -> None:
    assert matches({"meta": {"$or": [{"region": "us"}, {"region": "eu"}]}}, EVENT)
    assert matches({"replicas": {"$or": [{"$lt": 0}, {"$gt": 2}]}}, EVENT)
    assert matches({"replicas": {"$not": {"$gt": 5}}}, EVENT)
    assert matches({"absent": {"$not": {"$gt": 5}}}, EVENT)
    deep = {"$or": [{"$and": [{"model_id": "m1"}, {"$not": {"$or": [{"tags": "z"}]}}]}]}
    assert matches(deep, EVENT)


def test_envelope_fields() -> None:
    assert matches({"$event.source": "budmodel"}, EVENT)
    assert matches({"$event.event_type": {"$prefix": "model."}}, EVENT)
    assert matches({"$event.depth": {"$lt": 3}}, EVENT)
    assert not matches({"$event.depth": {"$lt": 1}}, EVENT)
    assert matches({"$event": {"source": "budmodel", "depth": 1}}, EVENT)
    assert matches({"$event.data.model_id": "m1"}, EVENT)
    assert matches({"$or": [{"$event.source": "other"}, {"$event.correlation_id": "cor_1"}]}, EVENT)
    assert not matches({"source": "budmodel"}, EVENT)  # plain keys address data
    assert leaf({"$event.source": "budmodel"})["path"] == "source"


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flt", "path", "needle"),
    [
        ({"environment": {"$gtx": 1}}, "environment.$gtx", "unknown operator"),
        ({"$where": "x"}, "$where", "unknown operator"),
        ({"environment": {"$gt": True}}, "environment.$gt", "number or a string"),
        ({"environment": {"$gt": [1]}}, "environment.$gt", "number or a string"),
        ({"x": {"$in": "a"}}, "x.$in", "must be a list"),
        ({"x": {"$nin": 1}}, "x.$nin", "must be a list"),
        ({"x": {"$in": []}}, "x.$in", "must not be empty"),
        ({"x": {"$in": [1, {"a": 1}]}}, "x.$in[1]", "expected a string, number"),
        ({"x": {"$exists": "yes"}}, "x.$exists", "true or false"),
        ({"x": {"$prefix": 1}}, "x.$prefix", "needs a string"),
        ({"x": {"$suffix": None}}, "x.$suffix", "needs a string"),
        ({"x": {"$wildcard": 3}}, "x.$wildcard", "needs a string"),
        ({"x": {"$eq_ignore_case": 3}}, "x.$eq_ignore_case", "needs a string"),
        ({"x": {"$eq": [1]}}, "x.$eq", "expected a string, number"),
        ({"x": {"$contains": {}}}, "x.$contains", "expected a string, number"),
        ({"x": {"$anything_but": []}}, "x.$anything_but", "must not be empty"),
        ({"$or": []}, "$or", "non-empty list"),
        ({"$or": {"a": 1}}, "$or", "non-empty list"),
        ({"$and": [{"a": 1}, 3]}, "$and[1]", "non-empty objects"),
        ({"$or": [{"a": 1}, {"region": {"$bad": 1}}]}, "$or[1].region.$bad", "unknown operator"),
        ({"$or": [{"a": 1}, {}]}, "$or[1]", "non-empty objects"),
        ({"$not": [{"a": 1}]}, "$not", "non-empty object"),
        ({"$gt": 1}, "$gt", "needs a field"),
        ({"a..b": 1}, "a..b", "empty segment"),
        ({".a": 1}, ".a", "empty segment"),
        ({"a.": 1}, "a.", "empty segment"),
        ({"": 1}, "", "non-empty strings"),
        ({"a.$gt": 1}, "a.$gt", "starting with '$'"),
        ({"meta": {}}, "meta", "empty object"),
        ({"x": {"$wildcard": "*a*b*c*d*"}}, "x.$wildcard", "limit 4"),
        ({"x": {"$wildcard": "a" * 257}}, "x.$wildcard", "limit 256"),
        ({"x": list(range(MAX_ANY_OF + 1))}, "x", f"limit {MAX_ANY_OF}"),
        ({"x": {"$in": list(range(MAX_ANY_OF + 1))}}, "x.$in", f"limit {MAX_ANY_OF}"),
        ({"x": float("nan")}, "x", "finite"),
        ({"x": {"$gt": float("inf")}}, "x.$gt", "finite"),
        ({"x": (1, 2)}, "x", "expected a string, number"),
        ({"meta": {"$event.source": "a"}}, "meta.$event.source", "top level"),
        ({"$event": "budmodel"}, "$event", "object of envelope fields"),
        ({"$event": {"$gt": 1}}, "$event.$gt", "needs a field"),
    ],
)
def test_validation_errors_carry_the_path(flt: dict[str, Any], path: str, needle: str) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(flt)
    assert info.value.path == path
    prefix = f"filter.{path}: " if path else "filter: "
    assert str(info.value).startswith(prefix)
    assert needle in str(info.value)
    assert info.value.details["path"] == (f"filter.{path}" if path else "filter")


@pytest.mark.parametrize("flt", [[{"a": 1}], "a", 3])
def test_filter_must_be_an_object(flt: Any) -> None:
    with pytest.raises(FilterError, match="must be a JSON object"):
        compile_filter(flt)


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(FilterError, match="non-empty strings"):
        compile_filter({1: "a"})  # type: ignore[dict-item]


def test_depth_limit() -> None:
    ok: dict[str, Any] = {"v": 1}
    for _ in range(MAX_DEPTH - 1):
        ok = {"$not": ok}
    compile_filter(ok)
    with pytest.raises(FilterError, match=f"limit {MAX_DEPTH}") as info:
        compile_filter({"$not": ok})
    assert info.value.path.startswith("$not.$not")


def test_clause_limit() -> None:
    compile_filter({f"k{i}": i for i in range(MAX_CLAUSES)})
    with pytest.raises(FilterError, match=f"limit {MAX_CLAUSES}") as info:
        compile_filter({f"k{i}": i for i in range(MAX_CLAUSES + 1)})
    assert info.value.path == f"k{MAX_CLAUSES}"


def test_filter_is_immutable_and_keeps_its_source() -> None:
    source = {"model_id": "m1"}
    flt = compile_filter(source)
    source["model_id"] = "m2"
    assert flt.source == {"model_id": "m1"}
    assert flt.matches(EVENT)
    with pytest.raises(AttributeError):
        flt.source = {}
    assert compile_filter(flt) is flt
    assert flt == Filter({"model_id": "m1"})


# --- explain, first_failure, summarize ------------------------------------------------------------


@pytest.mark.parametrize(
    ("flt", "outcome", "actual"),
    [
        ({"model_id": "m1"}, "matched", "m1"),
        ({"model_id": "m2"}, "value_differs", "m1"),
        ({"environment": "production"}, "path_missing", None),
        ({"replicas": "3"}, "type_mismatch", 3),
        ({"model_id": {"$gt": 2}}, "type_mismatch", "m1"),
        ({"replicas": {"$gt": 5}}, "value_differs", 3),
        ({"replicas": {"$prefix": "3"}}, "type_mismatch", 3),
        ({"tags": 1}, "type_mismatch", ["a", "b"]),
        ({"tags": "c"}, "value_differs", ["a", "b"]),
        ({"absent": {"$exists": True}}, "path_missing", None),
        ({"model_id": {"$exists": False}}, "value_differs", "m1"),
        ({"model_id": {"$ne": "m1"}}, "value_differs", "m1"),
        ({"absent": {"$anything_but": "x"}}, "path_missing", None),
        ({"nothing": "x"}, "type_mismatch", None),
    ],
)
def test_explain_outcomes(flt: dict[str, Any], outcome: str, actual: Any) -> None:
    node = leaf(flt)
    assert node["outcome"] == outcome
    assert node["matched"] is (outcome == "matched")
    assert node["actual"] == actual
    json.dumps(node)


def test_explain_leaf_shape() -> None:
    node = leaf({"environment": {"$in": ["production", "staging"]}})
    assert node == {
        "path": "data.environment",
        "op": "$in",
        "expected": ["production", "staging"],
        "actual": None,
        "outcome": "path_missing",
        "matched": False,
        "clause": "environment.$in",
    }


def test_explain_tree_shape_for_combinators() -> None:
    flt = {"model_id": "m1", "$or": [{"a": 1, "b": 2}, {"replicas": 3}], "$not": {"tags": "z"}}
    verdict = explain(flt, EVENT)
    assert verdict["op"] == "$and" and verdict["path"] == "" and verdict["matched"]
    or_node = verdict["children"][1]
    assert or_node["op"] == "$or" and or_node["path"] == "$or" and or_node["matched"]
    assert or_node["children"][0]["op"] == "$and"
    assert or_node["children"][0]["path"] == "$or[0]"
    assert not or_node["children"][0]["matched"]
    assert or_node["children"][1]["clause"] == "$or[1].replicas"
    not_node = verdict["children"][2]
    assert not_node["op"] == "$not" and not_node["matched"]
    assert not not_node["children"][0]["matched"]
    json.dumps(verdict)


def test_first_failure() -> None:
    assert first_failure(explain({"model_id": "m1"}, EVENT)) is None
    failing = first_failure(explain({"model_id": "m1", "environment": "prod", "x": 1}, EVENT))
    assert failing is not None
    assert failing["path"] == "data.environment"
    not_failing = first_failure(explain({"$not": {"model_id": "m1"}}, EVENT))
    assert not_failing is not None and not_failing["op"] == "$not"


def test_summarize() -> None:
    assert summarize(explain({"model_id": "m1"}, EVENT)) == "matched"
    env = make_event({"environment": "staging", "model_id": "m1"})
    assert (
        summarize(explain({"environment": "production"}, env))
        == "failed on data.environment: expected 'production', got 'staging'"
    )
    only = summarize(explain({"environment": "production", "model_id": "m1"}, env))
    assert only.startswith("failed only on data.environment")
    two = summarize(explain({"model_id": "m2", "b": 1}, env))
    assert two == "failed on 2 clauses: data.model_id (value differs), data.b (path missing)"
    assert "type mismatch" in summarize(explain({"model_id": 1, "b": 1}, env))
    assert "$not" in summarize(explain({"$not": {"model_id": "m1"}}, env))


# --- the index ------------------------------------------------------------------------------------


def test_index_basic_lifecycle() -> None:
    index = TriggerIndex()
    index.put("t1", "model.added", {"model_id": "m1"})
    index.put("t2", "model.added", None)
    index.put("t3", "model.added", {"model_id": ["m1", "m2"], "replicas": {"$gt": 1}})
    index.put("t4", "model.deleted", {"model_id": "m1"})
    index.put("t5", "model.added", compile_filter({"replicas": {"$gt": 5}}))
    assert len(index) == 5
    assert "t1" in index and "nope" not in index and 3 not in index
    assert index.match(EVENT) == ["t1", "t2", "t3"]
    assert index.candidates("model.added") == ["t1", "t2", "t3", "t5"]
    assert index.candidates("unknown") == []

    index.put("t1", "model.added", {"model_id": "m9"})  # replace keeps its place
    assert index.match(EVENT) == ["t2", "t3"]
    index.put("t1", "model.added", {"tags": "b"})
    assert index.match(EVENT) == ["t1", "t2", "t3"]

    index.remove("t3")
    index.remove("t3")
    assert index.match(EVENT) == ["t1", "t2"]
    index.put("t1", "model.deleted", {"model_id": "m1"})  # move to another type
    assert index.match(EVENT) == ["t2"]
    assert index.candidates("model.deleted") == ["t1", "t4"]
    for tid in ("t1", "t2", "t4", "t5"):
        index.remove(tid)
    assert len(index) == 0
    assert index.match(EVENT) == []


def test_index_invalid_filter_leaves_existing_trigger() -> None:
    index = TriggerIndex()
    index.put("t1", "model.added", {"model_id": "m1"})
    with pytest.raises(FilterError):
        index.put("t1", "model.added", {"model_id": {"$bad": 1}})
    assert index.match(EVENT) == ["t1"]


def test_index_normalises_numbers_and_keeps_booleans_apart() -> None:
    index = TriggerIndex()
    index.put("int", "t", {"n": 1})
    index.put("float", "t", {"n": 1.0})
    index.put("bool", "t", {"n": True})
    index.put("str", "t", {"n": "1"})
    index.put("null", "t", {"n": None})
    assert index.match({"event_type": "t", "data": {"n": 1}}) == ["int", "float"]
    assert index.match({"event_type": "t", "data": {"n": 1.0}}) == ["int", "float"]
    assert index.match({"event_type": "t", "data": {"n": True}}) == ["bool"]
    assert index.match({"event_type": "t", "data": {"n": "1"}}) == ["str"]
    assert index.match({"event_type": "t", "data": {"n": None}}) == ["null"]
    assert index.match({"event_type": "t", "data": {"n": [True, 1, {"a": 1}]}}) == [
        "int",
        "float",
        "bool",
    ]


def test_index_arrays_and_envelope_paths() -> None:
    index = TriggerIndex()
    index.put("a", "t", {"tags": ["x", "y"]})
    index.put("src", "t", {"$event.source": "budmodel"})
    index.put("items", "t", {"items.name": "n2"})
    event = {"event_type": "t", "source": "budmodel", "data": {"tags": ["y", "x"]}}
    assert index.match(event) == ["a", "src"]
    event = {"event_type": "t", "data": {"items": [{"name": "n1"}, {"name": "n2"}]}}
    assert index.match(event) == ["items"]


def test_index_ignores_odd_events() -> None:
    index = TriggerIndex()
    index.put("t", "t", None)
    assert index.match({}) == []
    assert index.match({"event_type": ["t"]}) == []
    assert index.match({"event_type": "t"}) == ["t"]


def test_public_names_are_pinned() -> None:
    import bud.filters

    assert sorted(bud.filters.__all__) == [
        "Filter",
        "MAX_ANY_OF",
        "MAX_CLAUSES",
        "MAX_DEPTH",
        "MAX_WILDCARD_LENGTH",
        "MAX_WILDCARD_STARS",
        "OPERATORS",
        "TriggerIndex",
        "compile_filter",
        "explain",
        "first_failure",
        "matches",
        "summarize",
    ]
    assert all(hasattr(bud.filters, name) for name in bud.filters.__all__)
    # The function, not a submodule of the same name.
    assert callable(bud.filters.explain)


# --- memory: shared pieces, compact entries, lazy views ------------------------------------------


def test_equal_clauses_share_their_compiled_pieces() -> None:
    a = compile_filter({"environment": ["prod", "staging"], "replicas": {"$gte": 1}})._root
    b = compile_filter({"environment": ["staging", "prod"], "replicas": {"$gte": 1}})._root
    for left, right in zip(a.children, b.children, strict=True):
        assert left.segs is right.segs  # type: ignore[union-attr]
        assert left.get is right.get  # type: ignore[union-attr]
        assert left.test is right.test  # type: ignore[union-attr]
        assert left.predicate() is right.predicate()
    assert a.predicate() is b.predicate()
    # Equal keys, different literals: the test is shared, the explanation is not.
    one, one_f = compile_filter({"n": 1}), compile_filter({"n": 1.0})
    assert one._root.children[0].test is one_f._root.children[0].test  # type: ignore[union-attr]
    assert type(explain(one, EVENT)["children"][0]["expected"]) is int
    assert type(explain(one_f, EVENT)["children"][0]["expected"]) is float
    # True and 1 stay apart.
    flag = compile_filter({"n": True})
    assert flag._root.children[0].test is not one._root.children[0].test  # type: ignore[union-attr]


def test_interning_cache_is_bounded() -> None:
    from bud.filters.values import _Interned

    cache: _Interned[str] = _Interned(limit=2)
    assert cache.get("a", lambda: "A") == "A"
    assert cache.get("a", lambda: "other") == "A"
    cache.get("b", lambda: "B")
    cache.get("c", lambda: "C")
    assert len(cache.items) <= 2
    assert cache.get("c", lambda: "other") == "C"


def test_filter_builds_its_predicate_on_first_match() -> None:
    flt = compile_filter({"model_id": "m1"})
    assert flt._fn is None
    assert flt.matches(EVENT)
    assert flt._fn is not None
    assert not flt.matches(make_event({"model_id": "m2"}))


def test_index_buckets_hold_one_entry_then_a_dict_then_one_again() -> None:
    from bud.filters.index import _Entry

    index = TriggerIndex()
    index.put("t1", "model.added", {"model_id": "m1"})
    where = index._types["model.added"].structures[0]
    assert isinstance(where.buckets["m1"], _Entry)  # type: ignore[union-attr]
    index.put("t2", "model.added", {"model_id": ["m1", "m7"]})
    assert isinstance(where.buckets["m1"], dict)  # type: ignore[union-attr]
    index.put("t2", "model.added", {"model_id": ["m1", "m7"]})  # replaced in place
    assert index.match(EVENT) == ["t1", "t2"]
    index.remove("t1")
    assert isinstance(where.buckets["m1"], _Entry)
    assert index.match(EVENT) == ["t2"]
    index.put("t1", "model.added", {"model_id": "m1"})  # back, now after t2
    assert index.match(EVENT) == ["t2", "t1"]
    index.put("p1", "model.added", {"model_name": {"$prefix": "Llama"}})
    index.put("p2", "model.added", {"model_name": {"$prefix": "Llama"}})
    assert index.match(EVENT) == ["t2", "t1", "p1", "p2"]
    for tid in ("t1", "t2", "p1", "p2"):
        index.remove(tid)
    assert len(index) == 0 and index.candidates("model.added") == []
    assert index._types == {}


def test_index_keeps_only_the_residual_of_a_guarded_trigger() -> None:
    index = TriggerIndex()
    index.put("t", "model.added", {"model_id": "m1", "model_source": "hugging_face"})
    entry = index._entries["t"]
    shared = compile_filter({"model_source": "hugging_face"})._root.children[0].predicate()
    assert entry.fn is shared
    assert entry.terms == ("eq", ("data", "model_id"), "m1")


def _row(i: int, flt: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"trig_{i}",
        "pipeline_id": "pipe_1",
        "event_type": "model.added",
        "enabled": True,
        "filter": flt,
        "updated_at": 1.5,
        **extra,
    }


def test_matcher_view_compiles_its_filter_when_read() -> None:
    from dataclasses import FrozenInstanceError

    from bud.engine.matcher import Matcher, TriggerView, explain_decision

    source = {"model_id": "m2", "ratio": 1.0, "n": 10**20, "$or": [{"a": True}, {"b": None}]}
    m = Matcher()
    m.put(_row(1, source, name="one", flow={"dedup": {"key": "x"}}))
    m.put(_row(2, None, enabled=False))
    view = m.get("trig_1")
    assert view is not None
    assert isinstance(view.filter, Filter) and view.filter == Filter(source)
    assert view.filter.source == source and list(view.filter.source) == list(source)
    assert type(view.filter.source["ratio"]) is float
    assert (view.name, view.flow, view.updated_at) == ("one", {"dedup": {"key": "x"}}, 1.5)
    reason, detail = explain_decision(view, EVENT, changed_since=False)
    assert detail is not None and detail["verdict"] == explain(source, EVENT)
    assert reason == summarize(explain(source, EVENT))
    empty = m.get("trig_2")
    assert empty is not None and empty.filter == Filter() and not empty.enabled
    with pytest.raises(FrozenInstanceError):
        view.enabled = False
    m.disable("trig_1")
    disabled = m.get("trig_1")
    assert disabled is not None and not disabled.enabled and disabled.filter == view.filter
    assert disabled != view and disabled == TriggerView(
        "trig_1", "pipe_1", "model.added", False, source, "one", {"dedup": {"key": "x"}}, 1.5
    )
    with pytest.raises(FilterError):
        m.put(_row(1, {"model_id": {"$bad": 1}}))


def test_matcher_memory_per_trigger_stays_small() -> None:
    """DESIGN.md section 6: < 300 MB with 100,000 triggers; the matcher aims at <= 1.5 KB."""
    import gc
    import tracemalloc

    from bud.engine.matcher import Matcher

    n = 5_000
    rows = [
        json.loads(json.dumps(_row(i, {"model_id": f"m{i}", "environment": ["prod", "staging"]})))
        for i in range(n)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        m = Matcher()
        for row in rows:
            m.put(row)
        gc.collect()
        used, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(m) == n
    assert used / n < 1_500, f"{used / n:.0f} bytes per trigger"
