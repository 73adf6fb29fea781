"""JSON Schemas of event types never fetch anything: remote references are refused when the
type is registered, and validating an event resolves references only inside the schema."""

from __future__ import annotations

import json

import pytest

from bud import BudClient, ValidationError
from bud.events import EventType, check_schema, normalize_event
from tests.support import HttpReceiver


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ({"$ref": "{url}/schema.json"}, "schema.$ref"),
        (
            {"type": "object", "properties": {"a": {"$ref": "{url}/a.json#/x"}}},
            "schema.properties.a.$ref",
        ),
        ({"allOf": [{"type": "object"}, {"$ref": "{url}/b.json"}]}, "schema.allOf[1].$ref"),
        ({"$defs": {"d": {"$dynamicRef": "{url}/d.json"}}}, "schema.$defs.d.$dynamicRef"),
        ({"$ref": "file:///etc/passwd"}, "schema.$ref"),
        ({"$ref": "https://json-schema.org/draft/2020-12/schema"}, "schema.$ref"),
        ({"$ref": "other.json"}, "schema.$ref"),
    ],
)
def test_remote_refs_are_refused_at_registration_and_nothing_is_fetched(
    app_client: BudClient, schema: dict[str, object], path: str
) -> None:
    with HttpReceiver() as receiver:
        text = json.dumps(schema).replace("{url}", receiver.url)
        with pytest.raises(ValidationError) as info:
            app_client.event_types.register("team.thing_happened", schema=json.loads(text))
        assert receiver.requests == []
    assert info.value.status_code == 422
    assert info.value.details["path"] == path
    assert "points outside the schema" in info.value.message
    assert "team.thing_happened" not in {t.name for t in app_client.event_types.list()}


def test_local_refs_work_and_unresolvable_ones_are_refused(app_client: BudClient) -> None:
    schema = {
        "type": "object",
        "$defs": {"id": {"type": "string", "pattern": "^m_"}},
        "properties": {"model_id": {"$ref": "#/$defs/id"}},
        "required": ["model_id"],
    }
    app_client.event_types.register("team.model_seen", schema=schema)
    app_client.events.publish("team.model_seen", {"model_id": "m_1"})
    with pytest.raises(ValidationError, match=r"data\.model_id"):
        app_client.events.publish("team.model_seen", {"model_id": "x"})
    with pytest.raises(ValidationError) as info:
        app_client.event_types.register(
            "team.broken", schema={"properties": {"a": {"$ref": "#/$defs/missing"}}}
        )
    assert info.value.details["path"] == "schema.properties.a.$ref"
    assert "does not resolve" in info.value.message


def test_a_ref_named_as_data_is_not_a_reference() -> None:
    check_schema({"enum": [{"$ref": "http://example.com/x"}], "const": {"$ref": "ftp://y"}})


def test_validation_never_fetches_even_for_a_schema_stored_before_the_check() -> None:
    with HttpReceiver() as receiver:
        etype = EventType("team.old", schema={"$ref": f"{receiver.url}/schema.json"})
        with pytest.raises(ValidationError, match="cannot be checked") as info:
            normalize_event({"event_type": "team.old", "data": {}}, {"team.old": etype})
        assert receiver.requests == []
    assert info.value.details["path"] == "event.data"
