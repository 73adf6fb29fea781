"""Definition validation: every error names its step and field; cycles are named as cycles."""

from __future__ import annotations

from typing import Any

import pytest

from bud.actions.registry import default_registry
from bud.cli.demo import DEMO_PIPELINES
from bud.errors import ValidationError
from bud.pipelines import definition_to_dict, find_cycle, parse_definition

REGISTRY = default_registry(entry_points_group=None)


def errors(definition: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_definition(definition, REGISTRY)
    return [e["message"] for e in info.value.details["errors"]]


def test_the_spec_definitions_parse() -> None:
    for example in DEMO_PIPELINES:
        parsed = parse_definition(example["definition"], REGISTRY)
        assert parse_definition(definition_to_dict(parsed), REGISTRY) == parsed
    auto = parse_definition(DEMO_PIPELINES[0]["definition"], REGISTRY)
    assert [s.id for s in auto.steps] == ["health_check", "deploy", "notify"]
    assert auto.roots() == ["health_check"] and auto.dependents("health_check") == ["deploy"]


def test_cycles_are_named_in_dependency_order() -> None:
    assert find_cycle({"a": ["c"], "b": ["a"], "c": ["b"]}) in (
        ["a", "b", "c", "a"],
        ["b", "c", "a", "b"],
        ["c", "a", "b", "c"],
    )
    assert find_cycle({"a": [], "b": ["a"]}) is None
    msgs = errors(
        {
            "steps": [
                {"id": "a", "action": "log", "params": {"message": "x"}, "depends_on": ["b"]},
                {"id": "b", "action": "log", "params": {"message": "x"}, "depends_on": ["a"]},
            ]
        }
    )
    assert any("cycle: a -> b -> a" in m or "cycle: b -> a -> b" in m for m in msgs)


def test_every_problem_is_listed_with_its_place() -> None:
    msgs = errors(
        {
            "steps": [
                {
                    "id": "a",
                    "action": "log",
                    "params": {"message": 1},
                    "retry": {"max_attempts": 0},
                },
                {"id": "a", "action": "log", "params": {"message": "x"}},
                {
                    "id": "b",
                    "action": "log",
                    "params": {"message": "x"},
                    "on_failure": "explode",
                    "timeout_seconds": -1,
                    "surprise": True,
                },
            ],
            "max_parallel_steps": 0,
        }
    )
    text = "\n".join(msgs)
    assert "steps[0] (a).params.message: 1 is not of type 'string'" in text
    assert "steps[0] (a).retry.max_attempts: must be an integer from 1 to 100" in text
    assert "steps[1] (a).id: duplicate step id 'a' (also steps[0])" in text
    assert "steps[2] (b).on_failure: must be 'fail' or 'continue'" in text
    assert "steps[2] (b).timeout_seconds: must be a positive number" in text
    assert "steps[2] (b).surprise: unknown field" in text
    assert "definition.max_parallel_steps: must be a positive integer" in text


def test_retry_policy_backoff() -> None:
    step = parse_definition(
        {
            "steps": [
                {
                    "id": "a",
                    "action": "log",
                    "params": {"message": "x"},
                    "retry": {
                        "max_attempts": 4,
                        "backoff_seconds": 1,
                        "backoff_multiplier": 3,
                        "max_backoff_seconds": 5,
                    },
                }
            ]
        },
        REGISTRY,
    ).steps[0]
    assert step.retry is not None
    assert [step.retry.delay(n) for n in (1, 2, 3)] == [1.0, 3.0, 5.0]
