"""The ``bud`` CLI against the real app in process (``make_client`` is pointed at it)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

import bud.cli.app as cli_app
from bud.cli.app import app
from bud.client import BudClient
from bud.demo import DEMO_PIPELINES
from bud.errors import BudError
from bud.settings import Settings
from tests.support import RECEIVERS_ALLOW, HttpReceiver, free_port

with warnings.catch_warnings():
    # starlette warns at import when it finds httpx rather than httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LOG_ONLY = {
    "steps": [
        {
            "id": "say",
            "action": "log",
            "params": {"message": "hello {{ event.model_name | default('you') }}"},
        }
    ]
}


class Bud:
    """Runs ``bud ...`` in process against the app; ``sdk`` checks what it did."""

    def __init__(self, sdk: BudClient) -> None:
        self.sdk = sdk
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, input: str | None = None) -> Result:
        result = self.runner.invoke(app, list(args), input=input)
        if result.exit_code != code:
            raise AssertionError(
                f"bud {' '.join(args)} exited {result.exit_code}, expected {code}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n"
                f"exception: {result.exception!r}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def bud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bud]:
    from bud.server.app import create_app

    settings = Settings(
        data_dir=tmp_path / "data",
        poll_seconds=0.2,
        health_probe_seconds=0.5,
        outbound_allow=RECEIVERS_ALLOW,
    )
    app_ = create_app(settings, check_responses=True)
    with TestClient(app_, base_url="http://localhost") as http, BudClient(http_client=http) as sdk:
        monkeypatch.setattr(
            cli_app,
            "make_client",
            lambda url, api_key: BudClient(http_client=http, api_key=api_key),
        )
        yield Bud(sdk)


@pytest.fixture
def slack() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def _id(prefix: str, text: str) -> str:
    found = re.search(rf"\b{prefix}_[0-9a-z]+", text)
    assert found, f"no {prefix}_ id in:\n{text}"
    return found.group(0)


# ---------------------------------------------------------------------------------------------
# The README's first steps


def test_demo_then_add_a_model_then_watch(bud: Bud, slack: HttpReceiver) -> None:
    first = bud("demo")
    assert "cluster_prod" in first.stdout
    assert "Auto-Deploy New Models" in first.stdout
    assert "bud models add Llama-3.2-1B --source hugging_face --meta auto_deploy=true" in (
        first.stdout
    )
    again = bud("demo")
    lines = again.stdout.splitlines()
    assert not [line for line in lines if line.lstrip().startswith("created")], again.stdout
    # the cluster, and each demo pipeline with its trigger
    assert again.stdout.count("exists") == 1 + 2 * len(DEMO_PIPELINES)
    bud("channels", "set", "slack", "--url", slack.url)

    added = bud(
        "models", "add", "Llama-3.2-1B", "--source", "hugging_face", "--meta", "auto_deploy=true"
    )
    model_id = _id("model", added.stdout)
    assert bud.sdk.models.get(model_id).metadata == {"auto_deploy": True}
    assert "started 1 execution" in added.stdout
    assert "Auto-Deploy New Models" in added.stdout
    execution_id = _id("exe", added.stdout.split("started 1 execution", 1)[1])
    assert f"bud executions watch {execution_id}" in added.stdout

    watched = bud("executions", "watch", execution_id)
    for step in ("health_check", "deploy", "notify"):
        assert step in watched.stdout
    assert f"execution {execution_id} succeeded" in watched.stdout

    shown = bud("events", "show", bud.sdk.executions.get(execution_id).event_id or "")
    assert "model.added" in shown.stdout
    assert "Llama-3.2-1B" in shown.stdout
    assert "fired" in shown.stdout
    assert execution_id in shown.stdout
    assert "Deployment Failure Alerts" not in shown.stdout  # it listens to other events

    deployments = bud.json("deployments", "list")
    assert [d["name"] for d in deployments] == ["Llama-3.2-1B-auto"]


def test_model_that_fires_nothing_says_why(bud: Bud) -> None:
    bud("demo")
    added = bud("models", "add", "Mistral-7B", "--source", "ollama")
    assert "started no execution" in added.stdout
    event_id = _id("evt", added.stdout)
    shown = bud("events", "show", event_id)
    assert "filtered" in shown.stdout
    assert "model_source" in shown.stdout


def test_watch_exits_1_when_the_execution_fails(bud: Bud) -> None:
    pipeline = bud.sdk.pipelines.create(
        name="doomed",
        definition={
            "steps": [
                {
                    "id": "boom",
                    "action": "fail",
                    "params": {"message": "it broke", "retryable": False},
                }
            ]
        },
    )
    started = bud("pipelines", "run", pipeline.id)
    execution_id = _id("exe", started.stdout)
    watched = bud("executions", "watch", execution_id, code=1)
    assert "boom" in watched.stdout
    assert "it broke" in watched.stdout
    shown = bud("executions", "show", execution_id)
    assert "failed" in shown.stdout and "it broke" in shown.stdout
    assert bud.json("executions", "show", execution_id)["status"] == "failed"
    retried = bud("executions", "retry", execution_id)
    assert execution_id in retried.stdout


# ---------------------------------------------------------------------------------------------
# Pipelines


def test_pipeline_files_list_show_update_validate_run(bud: Bud, tmp_path: Path) -> None:
    full = tmp_path / "pipeline.yaml"
    full.write_text(
        yaml.safe_dump({"name": "Greeter", "description": "says hello", "definition": LOG_ONLY})
    )
    created = bud("pipelines", "create", str(full))
    pipeline_id = _id("pipe", created.stdout)

    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(LOG_ONLY))
    nameless = bud("pipelines", "create", str(bare), code=2)
    assert "name" in nameless.stderr
    other_id = _id("pipe", bud("pipelines", "create", str(bare), "--name", "Bare").stdout)

    listed = bud.json("pipelines", "list")
    assert {p["id"] for p in listed} == {pipeline_id, other_id}
    table = bud("pipelines", "list").stdout
    assert "Greeter" in table and pipeline_id in table
    shown = bud("pipelines", "show", pipeline_id).stdout
    assert "say" in shown and "log" in shown and "says hello" in shown
    assert bud.json("pipelines", "show", pipeline_id)["triggers"] == []

    two_steps = {
        "steps": [
            *LOG_ONLY["steps"],
            {"id": "again", "action": "log", "params": {"message": "bye"}, "depends_on": ["say"]},
        ]
    }
    bare.write_text(json.dumps(two_steps))
    updated = bud("pipelines", "update", pipeline_id, str(bare))
    assert "version 2" in updated.stdout
    assert len(bud.sdk.pipelines.get(pipeline_id).definition["steps"]) == 2

    assert "valid" in bud("pipelines", "validate", str(bare)).stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        yaml.safe_dump(
            {
                "steps": [
                    {"id": "a", "action": "log", "params": {"message": "a"}, "depends_on": ["nope"]}
                ]
            }
        )
    )
    invalid = bud("pipelines", "validate", str(broken), code=1)
    assert "error:" in invalid.stderr
    assert "nope" in invalid.stderr
    assert bud.json("pipelines", "validate", str(bare))["valid"] is True

    run = bud("pipelines", "run", pipeline_id, "--param", "n=3", "--param", "who=ann", "--wait")
    assert "succeeded" in run.stdout
    execution = bud.sdk.executions.get(_id("exe", run.stdout))
    assert execution.params == {"n": 3, "who": "ann"}

    event_file = tmp_path / "event.json"
    event_file.write_text(
        json.dumps(
            {
                "event_type": "model.added",
                "data": {
                    "model_id": "model_1",
                    "model_name": "Llama",
                    "model_source": "hugging_face",
                },
            }
        )
    )
    with_event = bud("pipelines", "run", pipeline_id, "--event", f"@{event_file}", "--wait")
    done = bud.sdk.executions.get(_id("exe", with_event.stdout))
    assert done.steps is not None
    assert done.steps[0].params == {"message": "hello Llama"}

    bud("pipelines", "delete", other_id)
    missing = bud("pipelines", "show", other_id, code=1)
    assert missing.stderr.startswith("error: ")
    assert other_id in missing.stderr
    assert bud("pipelines", "create", str(tmp_path / "absent.yaml"), code=2).exit_code == 2


# ---------------------------------------------------------------------------------------------
# Triggers and events


def test_triggers_and_the_verdict_tree(bud: Bud) -> None:
    pipeline = bud.sdk.pipelines.create(name="hf", definition=LOG_ONLY)
    created = bud(
        "triggers",
        "create",
        "--pipeline",
        pipeline.id,
        "--event-type",
        "model.added",
        "--filter",
        '{"model_source": "hugging_face", "auto_deploy": true}',
        "--name",
        "hf",
    )
    trigger_id = _id("trig", created.stdout)
    trigger = bud.sdk.event_triggers.get(trigger_id)
    assert trigger.filter == {"model_source": "hugging_face", "auto_deploy": True}
    assert trigger.name == "hf"

    listed = bud.json("triggers", "list", "--pipeline", pipeline.id)
    assert [t["id"] for t in listed] == [trigger_id]
    assert bud.json("triggers", "list", "--event-type", "deployment.failed") == []
    assert bud.json("triggers", "show", trigger_id)["event_type"] == "model.added"

    data: dict[str, Any] = {
        "model_id": "model_1",
        "model_name": "Llama",
        "model_source": "hugging_face",
        "auto_deploy": False,
    }
    event = {"event_type": "model.added", "data": data}
    verdict = bud("triggers", "test", trigger_id, "--event", json.dumps(event)).stdout
    assert "would not fire" in verdict
    assert "✗" in verdict and "✓" in verdict
    assert "auto_deploy" in verdict and "model_source" in verdict
    assert "expected true" in verdict and "actual false" in verdict
    data["auto_deploy"] = True
    assert "would fire" in bud("triggers", "test", trigger_id, "--event", json.dumps(event)).stdout
    assert bud.sdk.event_triggers.get(trigger_id).fire_count == 0

    bud("triggers", "update", trigger_id, "--filter", '{"model_source": "ollama"}')
    assert bud.sdk.event_triggers.get(trigger_id).filter == {"model_source": "ollama"}
    bud("triggers", "disable", trigger_id)
    assert bud.sdk.event_triggers.get(trigger_id).enabled is False
    bud("triggers", "enable", trigger_id)
    assert bud.sdk.event_triggers.get(trigger_id).enabled is True

    bad = bud(
        "triggers",
        "create",
        "--pipeline",
        pipeline.id,
        "--event-type",
        "model.added",
        "--filter",
        '{"size": {"$gt": [1]}}',
        code=1,
    )
    assert bad.stderr.startswith("error: filter.size")
    assert (
        bud(
            "triggers",
            "create",
            "--pipeline",
            pipeline.id,
            "--event-type",
            "model.added",
            "--filter",
            "{not json",
            code=2,
        ).exit_code
        == 2
    )

    bud("triggers", "delete", trigger_id)
    assert bud.json("triggers", "list") == []


def test_dry_run_shows_the_items_of_a_for_each_step(bud: Bud) -> None:
    pipeline = bud.sdk.pipelines.create(
        name="fan",
        definition={
            "steps": [
                {
                    "id": "each",
                    "action": "log",
                    "for_each": ["llama", "mistral"],
                    "params": {"message": "deploy {{ item }}"},
                }
            ]
        },
    )
    dry = bud("pipelines", "dry-run", pipeline.id)
    assert "× 2 items" in dry.stdout and "mistral" in dry.stdout
    assert "deploy llama" in dry.stdout  # params as rendered for the first item
    run = bud.sdk.pipelines.run(pipeline.id)
    bud.sdk.executions.wait(run.id, timeout=20)
    shown = bud("executions", "show", run.id)
    assert "each items: #0 succeeded, #1 succeeded" in shown.stdout


def test_dry_run_backtest_stats_and_replay(bud: Bud, tmp_path: Path) -> None:
    bud.sdk.secrets.set("hook_token", "hk-4c3b2a19")
    pipeline = bud.sdk.pipelines.create(
        name="insight",
        definition={
            "steps": [
                {
                    "id": "say",
                    "action": "log",
                    "params": {
                        "message": "{{ event.model_id }} x{{ params.n }} {{ secrets.hook_token }}"
                    },
                },
                {
                    "id": "after",
                    "action": "log",
                    "depends_on": ["say"],
                    "params": {"message": "{{ steps.say.outputs.message }}"},
                },
            ]
        },
    )
    event_file = tmp_path / "event.json"
    event_file.write_text(
        json.dumps({"event_type": "model.added", "data": {"model_id": "model_7"}})
    )
    dry = bud("pipelines", "dry-run", pipeline.id, "--event", f"@{event_file}", "--param", "n=2")
    assert "model_7 x2 ******" in dry.stdout and "hk-4c3b2a19" not in dry.stdout
    assert "needs runtime output" in dry.stdout and "nothing was stored or run" in dry.stdout
    # Without an event the first step cannot render: the JSON is printed, and the exit code is 1.
    as_json = json.loads(bud("pipelines", "dry-run", pipeline.id, "--json", code=1).stdout)
    assert "event.model_id" in as_json["steps"][0]["error"]
    assert bud.sdk.executions.list().to_list() == []

    trigger = bud.sdk.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        filter={"model_source": "hugging_face"},
        flow={"rate_limit": {"max": 1, "per_seconds": 60}},
    )
    ids = [
        bud.sdk.events.publish("model.added", {"model_id": f"m{i}", "model_source": src}).event_id
        for i, src in enumerate(["hugging_face", "hugging_face", "ollama"])
    ]
    backtest = bud("triggers", "backtest", trigger.id).stdout
    assert "2 of 3" in backtest and "near misses" in backtest and ids[2] in backtest
    adhoc = bud.json(
        "triggers", "backtest", "--event-type", "model.added", "--filter", '{"model_id": "m0"}'
    )
    assert (adhoc["scanned"], adhoc["matched"]) == (3, 1)
    bud("triggers", "backtest", code=2)

    stats = bud("triggers", "stats", trigger.id).stdout
    assert "rate_limited" in stats and "1 in the last minute" in stats
    assert bud.json("triggers", "stats", trigger.id)["decisions"] == {
        "fired": 1,
        "suppressed": 1,
        "filtered": 1,
    }

    replay = bud("events", "replay", ids[0]).stdout
    assert "already_fired" in replay and "0 execution(s) started" in replay
    bypass = bud.json(
        "events",
        "replay",
        "--type",
        "model.added",
        "--trigger",
        trigger.id,
        "--bypass-dedup",
        "--since",
        "2000-01-01T00:00:00Z",
    )
    # A replay meets the trigger's flow rules like any fire: the rate limit (1 a minute, used
    # up by the first event) holds it back; the ollama one is filtered.
    assert bypass["events"] == 3 and bypass["fired"] == 0
    assert sorted(d["reason_code"] for d in bypass["decisions"]) == [
        "filtered",
        "rate_limited",
        "rate_limited",
    ]
    bud("events", "replay", code=2)
    for execution in bud.sdk.executions.list():
        bud.sdk.executions.wait(execution.id, timeout=20)

    changed = tmp_path / "changed.yaml"
    changed.write_text(
        yaml.safe_dump(
            {"steps": [{"id": "say", "action": "log", "params": {"message": "{{ event.zone }}"}}]}
        )
    )
    updated = bud("pipelines", "update", pipeline.id, str(changed)).stdout
    assert f"warning: {trigger.id}: steps[0] (say).params.message: event.zone" in updated


def test_events_publish_list_show(bud: Bud, tmp_path: Path) -> None:
    pipeline = bud.sdk.pipelines.create(name="greeter", definition=LOG_ONLY)
    bud.sdk.event_triggers.create(
        pipeline.id, "model.added", filter={"model_source": "hugging_face"}
    )
    data = {
        "model_id": "model_xyz789",
        "model_name": "Llama-3.2-1B",
        "model_source": "hugging_face",
        "created_by": "user@example.com",
    }
    published = bud(
        "events",
        "publish",
        "model.added",
        "--data",
        json.dumps(data),
        "--source",
        "budmodel",
        "--id",
        "evt_abc123",
    )
    assert "evt_abc123" in published.stdout
    duplicate = bud(
        "events", "publish", "model.added", "--data", json.dumps(data), "--id", "evt_abc123"
    )
    assert "Duplicate" in duplicate.stdout

    data_file = tmp_path / "data.yaml"
    data_file.write_text(yaml.safe_dump({**data, "model_source": "ollama"}))
    other = bud("events", "publish", "model.added", "--data", f"@{data_file}")
    other_id = _id("evt", other.stdout)
    test_event = bud.json("events", "publish", "model.added", "--data", json.dumps(data), "--test")
    assert test_event["test"] is True

    listed = bud.json("events", "list", "--type", "model.added")
    assert {e["event_id"] for e in listed} >= {"evt_abc123", other_id}
    assert [e["event_id"] for e in bud.json("events", "list", "--source", "budmodel")] == [
        "evt_abc123"
    ]
    assert "evt_abc123" in bud("events", "list").stdout

    execution_id = _wait(
        lambda: next(iter(bud.sdk.events.get("evt_abc123").executions or []), None)
    )
    shown = bud("events", "show", "evt_abc123").stdout
    assert "budmodel" in shown and "user@example.com" in shown
    assert "fired" in shown and execution_id in shown
    filtered = bud("events", "show", other_id).stdout
    assert "filtered" in filtered and "No executions started" in filtered
    as_json = bud.json("events", "show", "evt_abc123")
    assert as_json["executions"][0]["id"] == execution_id

    listed_execs = bud.json("executions", "list", "--pipeline", pipeline.id)
    assert [x["id"] for x in listed_execs] == [execution_id]
    bud.sdk.executions.wait(execution_id, timeout=20)
    assert bud.json("executions", "list", "--status", "succeeded")[0]["id"] == execution_id
    shown_exec = bud("executions", "show", execution_id).stdout
    assert "say" in shown_exec and "succeeded" in shown_exec
    cancel = bud("executions", "cancel", execution_id, code=1)
    assert cancel.stderr.startswith("error: ")


# ---------------------------------------------------------------------------------------------
# The platform and configuration


def test_deployment_revisions_and_monitors(bud: Bud) -> None:
    sdk = bud.sdk
    sdk.clusters.create("Production", id="cluster_prod", environment="production")
    model = sdk.models.add("Llama", "hugging_face", version="1")
    deployment = sdk.deployments.create(model.id, "cluster_prod", "llama-prod")
    pipeline = sdk.pipelines.create(
        name="update and monitor",
        definition={"steps": [
            {"id": "u", "action": "deployment_update",
             "params": {"deployment_id": deployment.id, "model_version": "2"}},
            {"id": "m", "action": "monitoring_configure", "depends_on": ["u"],
             "params": {"deployment_id": deployment.id, "channel": "slack",
                        "alerts": [{"metric": "error_rate", "above": 0.05}]}},
        ]},
    )  # fmt: skip
    run = sdk.pipelines.run(pipeline.id)
    assert sdk.executions.wait(run.id, timeout=30).status == "succeeded"

    table = bud("deployments", "revisions", deployment.id).stdout
    assert "updated" in table and "created" in table
    revisions = bud.json("deployments", "revisions", deployment.id)
    assert [(r["revision"], r["model_version"], r["good"]) for r in revisions] == [
        (1, "1", True),
        (2, "2", True),
    ]
    listed = bud("monitors", "list", "--deployment", deployment.id).stdout
    assert "error_rate >" in listed and "slack" in listed
    [monitor] = bud.json("monitors", "list", "--cluster", "cluster_prod")
    shown = bud.json("monitors", "show", monitor["id"])
    assert shown["deployment_id"] == deployment.id and shown["configured_by"] == run.id
    assert "not found" in bud("monitors", "show", "mon_nope", code=1).stderr


def test_platform_commands(bud: Bud) -> None:
    created = bud(
        "clusters", "create", "Production", "--id", "cluster_prod", "--environment", "production"
    )
    assert "cluster_prod" in created.stdout
    assert bud.json("clusters", "show", "cluster_prod")["environment"] == "production"
    assert [c["id"] for c in bud.json("clusters", "list")] == ["cluster_prod"]
    bud("clusters", "update", "cluster_prod", "--status", "unhealthy", "--reason", "disk")
    assert bud.sdk.clusters.get("cluster_prod").status == "unhealthy"
    bud("clusters", "update", "cluster_prod", "--status", "ready")

    model_id = _id(
        "model",
        bud(
            "models",
            "add",
            "Llama",
            "--source",
            "hugging_face",
            "--uri",
            "hf://meta/llama",
            "--meta",
            "size=1",
            "--meta",
            'tags=["small"]',
            "--meta",
            "family=llama",
        ).stdout,
    )
    model = bud.sdk.models.get(model_id)
    assert model.metadata == {"size": 1, "tags": ["small"], "family": "llama"}
    assert model.uri == "hf://meta/llama"
    bud("models", "update", model_id, "--set", "size=2")
    assert bud.sdk.models.get(model_id).metadata["size"] == 2
    assert bud.json("models", "show", model_id)["name"] == "Llama"
    assert [m["id"] for m in bud.json("models", "list")] == [model_id]

    deployed = bud(
        "deployments",
        "create",
        "--model",
        model_id,
        "--cluster",
        "cluster_prod",
        "--name",
        "llama-prod",
    )
    deployment_id = _id("dep", deployed.stdout)
    bud(
        "deployments",
        "update",
        deployment_id,
        "--status",
        "failed",
        "--error-message",
        "out of memory",
    )
    assert bud.json("deployments", "show", deployment_id)["error_message"] == "out of memory"
    assert [d["id"] for d in bud.json("deployments", "list", "--status", "failed")] == [
        deployment_id
    ]
    assert bud.json("events", "list", "--type", "deployment.failed")
    bud("deployments", "delete", deployment_id)
    bud("models", "delete", model_id)
    bud("clusters", "delete", "cluster_prod")
    assert bud.json("clusters", "list") == []


def test_catalog_and_configuration_commands(bud: Bud) -> None:
    names = {t["name"] for t in bud.json("event-types", "list")}
    assert "model.added" in names
    bud(
        "event-types",
        "register",
        "team.thing_happened",
        "--description",
        "team",
        "--schema",
        '{"type": "object", "properties": {"what": {"type": "string"}}}',
    )
    assert bud.sdk.event_types.get("team.thing_happened").description == "team"
    assert "what" in bud("event-types", "list").stdout

    actions = bud("actions", "list").stdout
    assert "notification" in actions and "cluster_health" in actions
    shown = bud("actions", "show", "log").stdout
    assert "message" in shown and "level" in shown
    assert bud.json("actions", "show", "log")["name"] == "log"

    bud("channels", "set", "webhook", "--url", "https://user:pw@hooks.example/x")
    listed = bud("channels", "list").stdout
    assert "webhook" in listed and ":pw@" not in listed
    bud("channels", "set", "email", "--smtp-url", "smtp://localhost:2525", "--from", "a@b.c")
    assert {c["name"] for c in bud.json("channels", "list")} >= {"webhook", "email"}
    assert bud("channels", "set", "slack", code=2).exit_code == 2
    bud("channels", "delete", "webhook")

    bud("secrets", "set", "token", "s3cret")
    bud("secrets", "set", "prompted", input="hidden-value\n")
    listed_secrets = bud("secrets", "list").stdout
    assert "token" in listed_secrets and "prompted" in listed_secrets
    assert "s3cret" not in listed_secrets
    bud("secrets", "delete", "token")
    assert [s["name"] for s in bud.json("secrets", "list")] == ["prompted"]
    assert bud.json("deliveries", "list") == []
    assert json.loads(bud("health").stdout)["status"] == "ok"


# ---------------------------------------------------------------------------------------------
# Without a server


def test_unreachable_server_prints_a_hint() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["--url", url, "pipelines", "list"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: could not reach Bud at " + url)
    assert "bud serve" in result.stderr


def test_url_and_api_key_reach_make_client(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str | None, str | None]] = []

    def fake(url: str | None, api_key: str | None) -> BudClient:
        seen.append((url, api_key))
        raise BudError("stop here")

    monkeypatch.setattr(cli_app, "make_client", fake)
    monkeypatch.setenv("BUD_URL", "http://env:1")
    monkeypatch.setenv("BUD_API_KEY", "env-key")
    runner = CliRunner()
    assert runner.invoke(app, ["pipelines", "list"]).exit_code == 1
    assert (
        runner.invoke(app, ["--url", "http://flag:2", "--api-key", "k", "models", "list"]).exit_code
        == 1
    )
    assert seen == [("http://env:1", "env-key"), ("http://flag:2", "k")]


def test_help_and_usage_errors() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for group in (
        "serve",
        "demo",
        "pipelines",
        "triggers",
        "events",
        "executions",
        "models",
        "clusters",
        "deployments",
        "event-types",
        "channels",
        "secrets",
    ):
        assert group in result.stdout
    assert runner.invoke(app, ["triggers", "create"]).exit_code == 2
    assert (
        runner.invoke(app, ["models", "add", "x", "--source", "s", "--meta", "novalue"]).exit_code
        == 2
    )


def test_serve_builds_settings_and_runs_the_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import bud.server

    captured: list[tuple[Settings, dict[str, Any]]] = []
    monkeypatch.setattr(bud.server, "run", lambda settings, **kw: captured.append((settings, kw)))
    for key in (
        "BUD_HOST",
        "BUD_PORT",
        "BUD_DATA_DIR",
        "BUD_DATABASE_URL",
        "BUD_DEMO",
        "BUD_CONFIG",
        "BUD_WORKERS",
    ):
        monkeypatch.delenv(key, raising=False)
    config = tmp_path / "bud.yaml"
    config.write_text(yaml.safe_dump({"port": 9999, "smtp_from": "ops@example.com"}))
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "serve",
            "--data-dir",
            str(tmp_path / "d"),
            "--demo",
            "--config",
            str(config),
            "--workers",
            "4",
            "--log-level",
            "warning",
        ],
    )
    assert result.exit_code == 0, result.output
    settings, kwargs = captured[0]
    assert settings.host == "127.0.0.1"
    assert settings.port == 9999  # from the config file, as no --port was given
    assert settings.data_dir == tmp_path / "d"
    assert settings.demo is True
    assert settings.workers == 4
    assert settings.smtp_from == "ops@example.com"
    assert kwargs.get("log_level") == "warning"

    result = runner.invoke(app, ["serve", "--port", "8123"])
    assert result.exit_code == 0
    assert captured[1][0].port == 8123
    assert captured[1][0].demo is False


def test_serve_refuses_a_public_host_without_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUD_API_KEYS", raising=False)
    monkeypatch.delenv("BUD_CONFIG", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "0.0.0.0" in result.stderr


def _wait(get: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = get()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


# ---------------------------------------------------------------------------------------------
# Conventions (docs/cli.md): --json, @file, exit codes, errors, help, version, completion


def _commands(group: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf command of the CLI, as its path (``("pipelines", "create")``)."""
    import typer.main

    group = group or typer.main.get_command(app)
    for name, command in sorted(getattr(group, "commands", {}).items()):
        if getattr(command, "commands", None):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


# Commands that print no record: a one-line answer (delete), JSON already (health), a process.
WITHOUT_JSON = {"serve", "worker", "health"}


def test_every_command_that_prints_a_record_takes_json() -> None:
    commands = list(_commands())
    assert ("pipelines", "create") in commands and ("triggers", "update") in commands
    missing = [
        " ".join(path)
        for path in commands
        if path[-1] != "delete"
        and " ".join(path) not in WITHOUT_JSON
        and "--json" not in CliRunner().invoke(app, [*path, "--help"]).stdout
    ]
    assert missing == []


def test_help_shows_flags_without_a_value_type_and_arguments_in_capitals() -> None:
    runner = CliRunner()
    for path in [(), *_commands()]:
        help_text = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"}).stdout
        assert "<bool>" not in help_text, " ".join(path)
    serve_help = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).stdout
    assert re.search(r"--demo\s+Load the example", serve_help)
    assert re.search(r"--port\s+<int>", serve_help)  # options with a value keep their type
    show_help = runner.invoke(app, ["pipelines", "show", "--help"]).stdout
    assert "bud pipelines show [OPTIONS] {PIPELINE_ID}" in show_help  # arguments in capitals


def test_create_run_and_update_print_json_records(bud: Bud, tmp_path: Path) -> None:
    pipeline_file = tmp_path / "p.json"
    pipeline_file.write_text(json.dumps({"name": "Greeter", "definition": LOG_ONLY}))
    pipeline = bud.json("pipelines", "create", str(pipeline_file))
    assert bud.sdk.pipelines.get(pipeline["id"]).name == "Greeter"
    assert bud.json("pipelines", "update", pipeline["id"], "--name", "Hello")["name"] == "Hello"

    trigger = bud.json(
        "triggers", "create", "--pipeline", pipeline["id"], "--event-type", "model.added"
    )
    assert trigger["id"].startswith("trig_") and trigger["pipeline_id"] == pipeline["id"]
    updated = bud.json("triggers", "update", trigger["id"], "--name", "all models")
    assert updated["name"] == "all models"
    assert bud.json("triggers", "disable", trigger["id"])["enabled"] is False
    assert bud.json("triggers", "enable", trigger["id"])["enabled"] is True

    started = bud.json("pipelines", "run", pipeline["id"], "--param", "n=1")
    assert bud.sdk.executions.get(started["id"]).pipeline_id == pipeline["id"]
    finished = bud.json("pipelines", "run", pipeline["id"], "--wait")
    assert finished["status"] == "succeeded"
    assert [s["step_id"] for s in finished["steps"]] == ["say"]
    watched = bud.json("executions", "watch", finished["id"])
    assert watched["id"] == finished["id"] and watched["status"] == "succeeded"

    cluster = bud.json("clusters", "create", "Production", "--id", "cluster_prod")
    assert cluster["id"] == "cluster_prod"
    assert bud.json("clusters", "update", "cluster_prod", "--name", "Prod")["name"] == "Prod"
    model = bud.json("models", "add", "Llama", "--source", "hugging_face")
    assert bud.json("models", "update", model["id"], "--set", "size=2")["metadata"] == {"size": 2}
    deployment = bud.json(
        "deployments", "create", "--model", model["id"], "--cluster", "cluster_prod", "--name", "l"
    )
    assert deployment["status"] == "running"
    failed = bud.json("deployments", "update", deployment["id"], "--status", "failed")
    assert failed["status"] == "failed"

    assert bud.json("channels", "set", "webhook", "--url", "https://hooks.example/x")["name"] == (
        "webhook"
    )
    secret = bud("secrets", "set", "token", "s3cret", "--json").stdout
    assert json.loads(secret)["name"] == "token" and "s3cret" not in secret
    registered = bud.json("event-types", "register", "team.done", "--description", "done")
    assert registered["name"] == "team.done"
    demo = bud.json("demo")
    assert set(demo["pipelines"]) == {p["name"] for p in DEMO_PIPELINES}


def test_cancel_and_retry_print_json(bud: Bud) -> None:
    slow = bud.sdk.pipelines.create(
        name="slow",
        definition={"steps": [{"id": "nap", "action": "delay", "params": {"seconds": 30}}]},
    )
    execution = bud.sdk.pipelines.run(slow.id)
    cancelled = bud.json("executions", "cancel", execution.id)
    assert cancelled["id"] == execution.id
    bud.sdk.executions.wait(execution.id, timeout=10)
    retried = bud.json("executions", "retry", execution.id)
    assert retried["status"] in ("queued", "running")
    bud.sdk.executions.cancel(execution.id)


def test_json_values_are_inline_or_at_file_everywhere(bud: Bud, tmp_path: Path) -> None:
    pipeline = bud.sdk.pipelines.create(name="greeter", definition=LOG_ONLY)
    data = {"model_id": "m1", "model_name": "Llama", "model_source": "hugging_face"}
    event = {"event_type": "model.added", "data": data}
    event_json = tmp_path / "event.json"
    event_json.write_text(json.dumps(event))
    event_yaml = tmp_path / "event.yaml"
    event_yaml.write_text(yaml.safe_dump(event))
    filter_file = tmp_path / "filter.yaml"
    filter_file.write_text("model_source: hugging_face\n")
    flow_file = tmp_path / "flow.json"
    flow_file.write_text(json.dumps({"rate_limit": {"max": 5, "per_seconds": 60}}))

    trigger = bud.json(
        "triggers",
        "create",
        "--pipeline",
        pipeline.id,
        "--event-type",
        "model.added",
        "--filter",
        f"@{filter_file}",
        "--flow",
        f"@{flow_file}",
    )
    assert trigger["filter"] == {"model_source": "hugging_face"}
    assert trigger["flow"] == {"rate_limit": {"max": 5, "per_seconds": 60}}

    for value in (json.dumps(event), f"@{event_json}", f"@{event_yaml}"):
        assert bud.json("triggers", "test", trigger["id"], "--event", value)["would_fire"] is True
        dry = bud.json("pipelines", "dry-run", pipeline.id, "--event", value)
        assert dry["steps"][0]["params"] == {"message": "hello Llama"}
        run = bud.json("pipelines", "run", pipeline.id, "--event", value, "--wait")
        assert run["steps"][0]["params"] == {"message": "hello Llama"}
    from_stdin = bud(
        "triggers", "test", trigger["id"], "--event", "@-", "--json", input=json.dumps(event)
    )
    assert json.loads(from_stdin.stdout)["would_fire"] is True

    data_yaml = tmp_path / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data))
    published = bud.json("events", "publish", "model.added", "--data", f"@{data_yaml}")
    assert bud.sdk.events.get(published["event_id"]).data == data
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"what": {"type": "string"}}}))
    bud(
        "event-types",
        "register",
        "team.noted",
        "--schema",
        f"@{schema}",
        "--example",
        '{"what": "x"}',
    )
    assert bud.sdk.event_types.get("team.noted").example == {"what": "x"}

    # A bare path is not JSON: a usage error that says how to read the file.
    bare = bud("pipelines", "run", pipeline.id, "--event", str(event_json), code=2)
    assert f"write @{event_json}" in " ".join(bare.stderr.split()).replace("│ ", "").replace(
        " │", ""
    )
    too_long = bud("triggers", "update", trigger["id"], "--filter", "{" + "x" * 5000, code=2)
    assert "not valid JSON" in too_long.stderr  # not taken for a file name, not a crash
    missing = bud("triggers", "test", trigger["id"], "--event", "@/nonexistent/e.json", code=2)
    assert "cannot read" in missing.stderr


def test_flow_control_on_create_and_update(bud: Bud) -> None:
    pipeline = bud.sdk.pipelines.create(name="p", definition=LOG_ONLY)
    created = bud(
        "triggers",
        "create",
        "--pipeline",
        pipeline.id,
        "--event-type",
        "model.added",
        "--flow",
        '{"dedup": {"key": "{{ event.model_id }}", "window_seconds": 60}}',
    )
    trigger_id = _id("trig", created.stdout)
    assert bud.sdk.event_triggers.get(trigger_id).flow == {
        "dedup": {"key": "{{ event.model_id }}", "window_seconds": 60}
    }
    assert "dedup" in bud("triggers", "show", trigger_id).stdout
    bud("triggers", "update", trigger_id, "--flow", '{"concurrency": {"policy": "skip"}}')
    assert bud.sdk.event_triggers.get(trigger_id).flow == {"concurrency": {"policy": "skip"}}
    bud("triggers", "update", trigger_id, "--flow", "{}")
    assert not bud.sdk.event_triggers.get(trigger_id).flow
    bad = bud("triggers", "update", trigger_id, "--flow", '{"rate_limit": {"max": "many"}}', code=1)
    assert bad.stderr.startswith("error: ") and "rate_limit" in bad.stderr


def test_publish_prints_how_many_triggers_fired(bud: Bud) -> None:
    pipeline = bud.sdk.pipelines.create(name="p", definition=LOG_ONLY)
    bud.sdk.event_triggers.create(pipeline.id, "model.added", filter={"model_source": "hf"})
    bud.sdk.event_triggers.create(pipeline.id, "model.added", filter={"model_source": "ollama"})
    data = {"model_id": "m1", "model_name": "Llama", "model_source": "hf"}
    published = bud("events", "publish", "model.added", "--data", json.dumps(data)).stdout
    assert "fired 1 of 2 candidate trigger(s)" in published
    as_json = bud.json("events", "publish", "model.added", "--data", json.dumps(data))
    assert (as_json["fired_count"], as_json["candidate_count"]) == (1, 2)
    assert len(as_json["executions"]) == 1
    assert sorted(d["outcome"] for d in as_json["decisions"]) == ["filtered", "fired"]
    bud.sdk.event_types.register("team.nothing_listens")
    nothing = bud("events", "publish", "team.nothing_listens").stdout
    assert "fired 0 of 0 candidate trigger(s)" in nothing
    test = bud("events", "publish", "model.added", "--data", json.dumps(data), "--test").stdout
    assert "test event" in test and "fired nothing" in test


def test_validate_prints_each_problem_path_once(bud: Bud, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        yaml.safe_dump(
            {
                "stepz": [],
                "steps": [
                    {"id": "a", "action": "log", "params": {"message": "a"}, "depends_on": ["x"]}
                ],
            }
        )
    )
    invalid = bud("pipelines", "validate", str(broken), code=1)
    lines = invalid.stderr.splitlines()
    assert lines[0] == f"error: {broken}: the definition is invalid"
    assert "  steps[0] (a).depends_on: unknown step 'x'; steps are: a" in lines
    assert any(line.startswith("  definition.stepz: unknown field") for line in lines)
    assert not any(line.count("depends_on") > 1 or line.count("stepz") > 1 for line in lines)
    as_json = json.loads(bud("pipelines", "validate", str(broken), "--json", code=1).stdout)
    assert as_json["valid"] is False


def test_exit_codes(bud: Bud, tmp_path: Path) -> None:
    """0 done; 1 a refused request or a failed run or render; 2 a usage mistake."""
    pipeline = bud.sdk.pipelines.create(name="p", definition=LOG_ONLY)
    reads_event = bud.sdk.pipelines.create(
        name="needs event",
        definition={
            "steps": [
                {"id": "a", "action": "log", "params": {"message": "{{ event.model_id }}"}},
                {
                    "id": "b",
                    "action": "log",
                    "depends_on": ["a"],
                    "params": {"message": "{{ steps.a.outputs.message }}"},
                },
            ]
        },
    )
    doomed = bud.sdk.pipelines.create(
        name="doomed",
        definition={
            "steps": [
                {"id": "x", "action": "fail", "params": {"message": "no", "retryable": False}}
            ]
        },
    )
    assert bud("pipelines", "dry-run", pipeline.id).exit_code == 0
    # A step reading another step's outputs is fine; one that cannot render is not.
    event = '{"event_type": "model.added", "data": {"model_id": "m"}}'
    ok = bud("pipelines", "dry-run", reads_event.id, "--event", event)
    assert "needs runtime output" in ok.stdout
    cannot = bud("pipelines", "dry-run", reads_event.id, code=1)
    assert "event.model_id" in cannot.stdout
    assert cannot.stderr.startswith("error: 1 step(s) cannot render: a")
    assert bud("pipelines", "run", doomed.id, "--wait", code=1).exit_code == 1
    assert bud("pipelines", "show", "pipe_missing", code=1).stderr.startswith("error: ")
    assert bud("pipelines", "show", code=2).exit_code == 2
    assert bud("pipelines", "run", pipeline.id, "--param", "novalue", code=2).exit_code == 2
    assert bud("no-such-command", code=2).exit_code == 2


def test_unexpected_errors_print_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(url: str | None, api_key: str | None) -> BudClient:
        raise ValueError("the client broke")

    monkeypatch.setattr(cli_app, "make_client", broken)
    runner = CliRunner()
    result = runner.invoke(app, ["pipelines", "list"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: ValueError: the client broke (bud --debug ... shows the traceback)"
    ]
    debug = runner.invoke(app, ["--debug", "pipelines", "list"])
    assert isinstance(debug.exception, ValueError)  # left to the traceback printer
    assert debug.exit_code == 1


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bud", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},
    )


def _errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_a_server_that_cannot_start_says_why_in_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = str(free_port())
    with open(data_dir / "bud.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running bud serve holds it
        busy = _serve("serve", "--port", port, "--data-dir", str(data_dir))
        debug = _serve("--debug", "serve", "--port", port, "--data-dir", str(data_dir))
    assert busy.returncode == 1
    assert "Traceback" not in busy.stderr + busy.stdout
    assert _errors(busy) == [
        f"error: the server did not start: {data_dir} is in use by another bud process; "
        "stop it or choose another --data-dir (bud --debug serve shows the traceback)"
    ]
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "DataDirLocked" in debug.stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        in_use = _serve(
            "serve", "--port", str(taken.getsockname()[1]), "--data-dir", str(tmp_path / "free")
        )
    assert in_use.returncode == 1
    assert "Traceback" not in in_use.stderr
    [error] = _errors(in_use)
    assert error.startswith("error: the server did not start: [Errno 98]")
    assert error.endswith("address already in use")


def test_version_and_shell_completion() -> None:
    import bud as bud_package

    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert (version.exit_code, version.stdout) == (0, f"bud {bud_package.__version__}\n")

    # In its own process: typer reads the shell's completion setup from process-wide state.
    script = subprocess.run(
        [sys.executable, "-m", "bud", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("_BUD")},
    )
    assert script.returncode == 0, script.stderr
    assert "_BUD_COMPLETE=complete_bash" in script.stdout

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = {
            "_BUD_COMPLETE": "complete_bash",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        }
        return runner.invoke(app, [], prog_name="bud", env=env).stdout.split()

    assert complete("bud pipe") == ["pipelines"]
    assert "dry-run" in complete("bud pipelines ")
    assert complete("bud triggers create --fl") == ["--flow"]


def test_a_closed_pipe_ends_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written (as after `| head`)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bud", "pipelines", "--help"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 1
    assert result.stderr == ""


def test_schedule_triggers_from_the_cli(bud: Bud) -> None:
    pipeline = bud.sdk.pipelines.create(name="nightly", definition=LOG_ONLY)
    created = bud(
        "triggers", "create", "--pipeline", pipeline.id, "--cron", "0 9 * * 1-5",
        "--timezone", "Europe/Berlin", "--name", "weekdays",
    )  # fmt: skip
    assert "cron 0 9 * * 1-5 (Europe/Berlin)" in created.stdout and "Next run:" in created.stdout
    [trigger] = bud.sdk.event_triggers.list(pipeline_id=pipeline.id)
    assert trigger.schedule == {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}
    shown = bud("triggers", "show", trigger.id).stdout
    assert "schedule" in shown and "next run" in shown and trigger.next_run_at[:10] in shown
    assert "cron 0 9 * * 1-5" in bud("triggers", "list").stdout
    changed = bud.json("triggers", "update", trigger.id, "--interval", "300")
    assert changed["schedule"] == {"interval_seconds": 300}
    every = bud.json("triggers", "create", "--pipeline", pipeline.id, "--interval", "90")
    assert every["kind"] == "schedule" and every["event_type"] == "schedule.tick"
    bad = bud("triggers", "create", "--pipeline", pipeline.id, "--cron", "0 25 * * *", code=1)
    assert "schedule.cron" in bad.stdout + bad.stderr
    zone = bud(
        "triggers", "create", "--pipeline", pipeline.id, "--cron", "0 9 * * *",
        "--timezone", "Nowhere/City", code=1,
    )  # fmt: skip
    assert "schedule.timezone" in zone.stdout + zone.stderr
    both = bud(
        "triggers", "create", "--pipeline", pipeline.id, "--cron", "* * * * *",
        "--interval", "5", code=2,
    )  # fmt: skip
    assert "not both" in both.stdout + both.stderr
    assert bud("triggers", "create", "--pipeline", pipeline.id, code=2).exit_code == 2


def test_hooks_from_the_cli(bud: Bud) -> None:
    created = bud("hooks", "create", "--event-type", "github.push", "--name", "github")
    assert "Secret: whsec_" in created.stdout and "/v1/hooks/hook_" in created.stdout
    secret = re.search(r"Secret: (\S+)", created.stdout)
    assert secret is not None
    [hook] = bud.json("hooks", "list")
    assert hook["event_type"] == "github.push" and hook.get("secret") is None
    assert bud.json("hooks", "show", hook["id"])["name"] == "github"
    delivered = bud.sdk.hooks.deliver(hook["id"], {"ref": "main"}, secret=secret.group(1))
    assert bud.sdk.events.get(delivered.event_id).data == {"ref": "main"}
    made = bud.json(
        "hooks", "create", "--event-type", "team.ping", "--schema", '{"type": "object"}'
    )
    assert made["secret"].startswith("whsec_")
    assert "Deleted hook" in bud("hooks", "delete", made["id"]).stdout
    assert "github" in bud("hooks", "list").stdout
