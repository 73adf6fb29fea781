"""Every input that can be wrong gets a 4xx naming the problem, and leaves nothing behind."""

from __future__ import annotations

from typing import Any

import pytest

from bud import BudClient, FilterError, NotFoundError, PayloadTooLargeError, ValidationError

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "hi"}}]}


def counts(client: BudClient) -> tuple[int, int, int, int]:
    return (
        len(list(client.pipelines.list())),
        len(list(client.event_triggers.list())),
        len(list(client.events.list())),
        len(list(client.executions.list())),
    )


@pytest.fixture
def pipeline(app_client: BudClient) -> Any:
    return app_client.pipelines.create(name="ok", definition=LOG)


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        (
            {
                "steps": [
                    {"id": "a", "action": "log", "params": {"message": "x"}, "depends_on": ["b"]},
                    {"id": "b", "action": "log", "params": {"message": "x"}, "depends_on": ["a"]},
                ]
            },
            "cycle: a -> b -> a",
        ),
        (
            {
                "steps": [
                    {
                        "id": "a",
                        "action": "log",
                        "params": {"message": "x"},
                        "depends_on": ["ghost"],
                    }
                ]
            },
            "steps[0] (a).depends_on: unknown step 'ghost'",
        ),
        (
            {"steps": [{"id": "a", "action": "teleport", "params": {}}]},
            "steps[0] (a).action: unknown action 'teleport'",
        ),
        (
            {"steps": [{"id": "a", "action": "log", "params": {"message": "x", "level": "loud"}}]},
            "steps[0] (a).params.level: 'loud' is not one of",
        ),
        (
            {"steps": [{"id": "a", "action": "log", "params": {}}]},
            "steps[0] (a).params: 'message' is a required property",
        ),
        (
            {"steps": [{"id": "a", "action": "log", "params": {"message": "{{ event.x "}}]},
            "steps[0] (a).params.message: template syntax error",
        ),
        (
            {
                "steps": [
                    {"id": "a", "action": "log", "params": {"message": "x"}},
                    {"id": "a", "action": "log", "params": {"message": "y"}},
                ]
            },
            "duplicate step id 'a'",
        ),
        ({"steps": []}, "steps: must be a non-empty list"),
    ],
)
def test_bad_definitions(app_client: BudClient, definition: dict[str, Any], expected: str) -> None:
    before = counts(app_client)
    with pytest.raises(ValidationError) as info:
        app_client.pipelines.create(name="bad", definition=definition)
    assert expected in info.value.message
    assert info.value.status_code == 422
    assert counts(app_client) == before
    result = app_client.pipelines.validate(definition)
    assert result.valid is False and any(expected in e["message"] for e in result.errors)


def test_template_params_pass_validation_until_rendered(app_client: BudClient) -> None:
    # a templated value may be anything before rendering: "{{ event.replicas }}" for an int
    result = app_client.pipelines.validate(
        {"steps": [{"id": "a", "action": "delay", "params": {"seconds": "{{ event.wait }}"}}]}
    )
    assert result.valid, result.errors
    result = app_client.pipelines.validate(
        {"steps": [{"id": "a", "action": "delay", "params": {"seconds": "soon"}}]}
    )
    assert not result.valid and "steps[0] (a).params.seconds" in result.errors[0]["message"]


def test_unknown_event_type(app_client: BudClient, pipeline: Any) -> None:
    before = counts(app_client)
    with pytest.raises(ValidationError, match=r"unknown event type 'model\.exploded'"):
        app_client.events.publish("model.exploded", {"model_id": "m"})
    with pytest.raises(ValidationError, match=r"event_type: unknown event type 'model\.exploded'"):
        app_client.event_triggers.create(pipeline_id=pipeline.id, event_type="model.exploded")
    assert counts(app_client) == before


def test_event_data_against_the_schema(app_client: BudClient) -> None:
    with pytest.raises(ValidationError, match=r"event.data: 'model_id' is a required property"):
        app_client.events.publish("model.added", {"model_name": "x"})
    with pytest.raises(ValidationError, match=r"event.data.model_name: 5 is not of type 'string'"):
        app_client.events.publish("model.added", {"model_id": "m", "model_name": 5})


def test_batch_is_all_or_nothing(app_client: BudClient) -> None:
    with pytest.raises(ValidationError, match=r"events\[1\].event_type: unknown event type"):
        app_client.events.publish_many(
            [
                {"event_type": "model.added", "data": {"model_id": "ok"}},
                {"event_type": "nope.nope", "data": {}},
            ]
        )
    assert list(app_client.events.list()) == []


def test_unknown_pipeline(app_client: BudClient) -> None:
    with pytest.raises(NotFoundError, match="pipe_nope"):
        app_client.event_triggers.create(pipeline_id="pipe_nope", event_type="model.added")
    with pytest.raises(NotFoundError, match="pipe_nope"):
        app_client.pipelines.run("pipe_nope")
    assert list(app_client.event_triggers.list()) == []


@pytest.mark.parametrize(
    ("filter", "path"),
    [
        ({"environment": {"$gt": "x", "$bogus": 1}}, "environment"),
        ({"$or": "not a list"}, "$or"),
        ({"a": {"$in": 5}}, "a"),
    ],
)
def test_malformed_filter(
    app_client: BudClient, pipeline: Any, filter: dict[str, Any], path: str
) -> None:
    with pytest.raises(FilterError) as info:
        app_client.event_triggers.create(
            pipeline_id=pipeline.id, event_type="model.added", filter=filter
        )
    assert f"filter.{path}" in info.value.message and info.value.status_code == 422
    assert list(app_client.event_triggers.list()) == []


def test_malformed_filter_on_update_keeps_the_old_one(app_client: BudClient, pipeline: Any) -> None:
    trig = app_client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.added", filter={"a": 1}
    )
    with pytest.raises(FilterError):
        app_client.event_triggers.update(trig.id, filter={"a": {"$nope": 1}})
    assert app_client.event_triggers.get(trig.id).filter == {"a": 1}


def test_oversized_payload(app_client: BudClient) -> None:
    with pytest.raises(PayloadTooLargeError, match="over the limit"):
        app_client.events.publish("model.added", {"model_id": "m", "blob": "x" * 300_000})
    assert list(app_client.events.list()) == []


def test_http_level_errors_are_json(app_client: BudClient) -> None:
    from starlette.testclient import TestClient

    http = TestClient(app_client.app, base_url="http://localhost")  # type: ignore[attr-defined]
    r = http.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and r.json()["error"]["message"]
    r = http.post("/v1/pipelines", json={"definition": LOG})
    assert r.status_code == 422 and r.json()["error"]["details"]["path"] == "name"
    r = http.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = http.post(
        "/v1/events", content=b"x" * (9 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert r.status_code == 413 and "over the limit" in r.json()["error"]["message"]
