"""The API the web console stands on: retry from a step, unsaved-trigger checks, event search,
the ingest error log, trigger names in decisions and the offline /docs page (docs/ui.md)."""

from __future__ import annotations

from typing import Any

import pytest

from bud import BudClient, ConflictError, ValidationError

CHAIN = {
    "steps": [
        {"id": "a", "action": "log", "params": {"message": "a"}},
        {"id": "b", "action": "log", "params": {"message": "b"}, "depends_on": ["a"]},
        {"id": "c", "action": "log", "params": {"message": "c"}, "depends_on": ["b"]},
        {"id": "side", "action": "log", "params": {"message": "side"}, "depends_on": ["a"]},
    ]
}


def attempts_by_step(client: BudClient, execution_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in client.executions.attempts(execution_id):
        counts[attempt.step_id] = counts.get(attempt.step_id, 0) + 1
    return counts


def test_retry_from_a_step_runs_it_and_everything_downstream_again(app_client: BudClient) -> None:
    pipeline = app_client.pipelines.create(name="chain", definition=CHAIN)
    first = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id, timeout=20)
    assert first.status == "succeeded"
    with pytest.raises(ConflictError):
        app_client.executions.retry(first.id)  # a plain retry needs a failed execution

    app_client.executions.retry(first.id, from_step="b")
    again = app_client.executions.wait(first.id, timeout=20)
    assert again.status == "succeeded"
    assert attempts_by_step(app_client, first.id) == {"a": 1, "b": 2, "c": 2, "side": 1}

    with pytest.raises(ValidationError) as info:
        app_client.executions.retry(first.id, from_step="nowhere")
    assert info.value.details["path"] == "from_step"


def test_the_cli_retries_from_a_step(
    app_client: BudClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import bud.cli.app as cli_app

    http = app_client._http  # type: ignore[attr-defined]
    monkeypatch.setattr(cli_app, "make_client", lambda url, api_key: BudClient(http_client=http))
    pipeline = app_client.pipelines.create(name="cli", definition=CHAIN)
    execution = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id, timeout=20)
    result = CliRunner().invoke(
        cli_app.app, ["executions", "retry", execution.id, "--from-step", "c"]
    )
    assert result.exit_code == 0, result.output
    assert execution.id in result.stdout
    app_client.executions.wait(execution.id, timeout=20)
    assert attempts_by_step(app_client, execution.id) == {"a": 1, "b": 1, "c": 2, "side": 1}


def test_an_unsaved_trigger_is_checked_all_at_once_and_tested(app_client: BudClient) -> None:
    pipeline = app_client.pipelines.create(
        name="draft",
        definition={
            "steps": [{"id": "s", "action": "log", "params": {"message": "{{ event.zone }}"}}]
        },
    )
    bad = app_client.request(
        "POST",
        "/v1/event-triggers/check",
        json={
            "pipeline_id": pipeline.id,
            "event_type": "model.added",
            "filter": {"x": {"$bogus": 1}},
            "flow": {"rate_limit": {"max": 0, "per_seconds": 60}},
        },
    )
    assert bad["valid"] is False
    paths = [e["path"] for e in bad["errors"]]
    assert paths[0] == "filter.x.$bogus" and paths[1].startswith("flow.rate_limit")
    assert any("event.zone" in w for w in bad["warnings"])
    assert list(app_client.event_triggers.list(pipeline_id=pipeline.id)) == []

    good = app_client.request(
        "POST",
        "/v1/event-triggers/check",
        json={
            "pipeline_id": pipeline.id,
            "event_type": "model.added",
            "filter": {"model_source": "s3"},
            "event": {"data": {"model_id": "m", "model_source": "hugging_face"}},
        },
    )
    assert good["valid"] is True and good["errors"] == []
    assert good["test"]["matched"] is False
    assert "data.model_source" in good["test"]["summary"]


def test_events_are_searched_by_payload_and_by_what_they_started(app_client: BudClient) -> None:
    pipeline = app_client.pipelines.create(name="search", definition=CHAIN)
    trigger = app_client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.added", filter={"model_source": "hf"}
    )
    started = app_client.events.publish(
        "model.added", {"model_id": "m1", "model_source": "hf", "meta": {"size": 7, "gpu": True}}
    )
    idle = app_client.events.publish(
        "model.added", {"model_id": "m2", "model_source": "s3", "meta": {"size": "7"}}
    )

    def ids(**params: Any) -> list[str]:
        page = app_client.request(
            "GET", "/v1/events", params={"event_type": "model.added", **params}
        )
        return [e["event_id"] for e in page["items"]]

    assert ids(data_path="model_source", data_value="s3") == [idle.event_id]
    assert ids(data_path="data.meta.size", data_value="7") == [started.event_id]  # the number
    assert ids(data_path="meta.size", data_value='"7"') == [idle.event_id]  # the string
    assert ids(data_path="meta.gpu", data_value="true") == [started.event_id]
    assert set(ids(data_path="meta.size")) == {started.event_id, idle.event_id}
    assert ids(started_nothing="true") == [idle.event_id]
    assert ids(filtered_by=trigger.id) == [idle.event_id]  # hf filter, s3 event
    found = app_client.events.list(data_path="meta.size", data_value="7", started_nothing=False)
    assert [e.event_id for e in found] == [started.event_id]  # the same search from the SDK
    assert ids(started_nothing="false") == [started.event_id]
    with pytest.raises(ValidationError) as info:
        ids(data_path="meta..$x", data_value="1")
    assert info.value.details["path"] == "data_path"

    event = app_client.events.get(started.event_id)
    [decision] = [d for d in event.decisions if d.trigger_id == trigger.id]
    raw = app_client.request("GET", f"/v1/events/{started.event_id}")
    assert raw["decisions"][0]["trigger_name"] is None  # unnamed
    named = app_client.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.added", name="Only S3", filter={"x": 1}
    )
    raw = app_client.request(
        "GET", f"/v1/events/{app_client.events.publish('model.added', {'model_id': 'm3'}).event_id}"
    )
    names = {d["trigger_id"]: d["trigger_name"] for d in raw["decisions"]}
    assert names[named.id] == "Only S3" and decision.execution_id
    for execution in app_client.executions.list(pipeline_id=pipeline.id):
        app_client.executions.wait(execution.id, timeout=20)


def test_refused_publishes_are_kept_in_the_ingest_error_log(app_client: BudClient) -> None:
    with pytest.raises(ValidationError):
        app_client.request(
            "POST",
            "/v1/events",
            json={"event_type": "no.such.type", "source": "probe", "data": {"big": "x" * 5000}},
        )
    [row] = app_client.request("GET", "/v1/ingest-errors")["items"]
    assert row["source"] == "probe" and row["event_type"] == "no.such.type"
    assert row["status_code"] == 422 and "no.such.type" in row["error"]
    assert len(row["body"]) == 2000 and row["body_truncated"] is True
    assert row["created_at"].endswith("Z")


def test_the_docs_page_loads_its_assets_from_the_server(app_client: BudClient) -> None:
    http = app_client._http  # type: ignore[attr-defined]
    page = http.get("/docs")
    assert page.status_code == 200
    assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
    asset = http.get("/docs-assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    assert "/docs-assets/redoc.standalone.js" in http.get("/redoc").text
