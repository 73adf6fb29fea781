"""Every SDK method, in both clients, against the real app in process, on both stores.

One test body serves ``BudClient`` and ``AsyncBudClient``: the ``sdk`` fixture shows either
through the async API (a sync call is wrapped in an awaitable, a sync pager in an async one), so
each test runs four times: sync and async, on SQLite and PostgreSQL. Each test names the
methods it covers (``@covers``); the fixture fails a test that does not call them all, and
``test_every_method_is_covered`` fails when a method of either client is covered by none.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from bud import (
    AsyncBudClient,
    BudClient,
    ConflictError,
    FilterError,
    NotFoundError,
    ValidationError,
    WaitTimeout,
)
from bud.client import AsyncPager, Pager
from bud.settings import Settings
from tests.support import HttpReceiver

with warnings.catch_warnings():
    # starlette warns at import when it finds httpx rather than httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LOG_ONLY = {
    "steps": [
        {
            "id": "say",
            "action": "log",
            "params": {"message": "got {{ event.model_name | default('?') }}"},
        }
    ]
}
NAP = {"steps": [{"id": "nap", "action": "delay", "params": {"seconds": 30}}]}


def covers(*methods: str) -> pytest.MarkDecorator:
    """The SDK methods (``resource.method``, or ``health``) a test calls in both clients."""
    return pytest.mark.covers(*methods)


def _model_added(**extra: Any) -> dict[str, Any]:
    return {
        "model_id": "model_xyz789",
        "model_name": "Llama-3.2-1B",
        "model_source": "hugging_face",
        "created_by": "user@example.com",
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# One client, sync or async, seen through the async API


async def _ready(value: Any) -> Any:
    return value


class _PagerView:
    """A pager of either client with the async pager's face; records what is used of it."""

    def __init__(self, pager: Pager[Any] | AsyncPager[Any], called: set[str]) -> None:
        self._pager = pager
        self._called = called

    def __await__(self) -> Any:
        self._called.add("pager.await")
        if isinstance(self._pager, AsyncPager):
            return self._pager.__await__()
        return _ready(list(self._pager)).__await__()

    async def to_list(self) -> list[Any]:
        self._called.add("pager.to_list")
        if isinstance(self._pager, AsyncPager):
            return await self._pager.to_list()
        return self._pager.to_list()

    async def first(self) -> Any:
        self._called.add("pager.first")
        if isinstance(self._pager, AsyncPager):
            return await self._pager.first()
        return self._pager.first()

    async def __aiter__(self) -> AsyncIterator[Any]:
        self._called.add("pager.iterate")
        if isinstance(self._pager, AsyncPager):
            async for item in self._pager:
                yield item
        else:
            for item in self._pager:
                yield item


class _View:
    """Attribute access into a client; records each method called as ``resource.method``."""

    def __init__(self, target: Any, prefix: str, called: set[str], is_async: bool) -> None:
        self._target = target
        self._prefix = prefix
        self._called = called
        self._async = is_async

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if hasattr(attr, "_client"):  # a resource: client.pipelines
            return _View(attr, f"{name}.", self._called, self._async)
        if not callable(attr):
            return attr
        qualified = f"{self._prefix}{name}"

        def call(*args: Any, **kwargs: Any) -> Any:
            self._called.add(qualified)
            result = attr(*args, **kwargs)
            if isinstance(result, Pager | AsyncPager):
                assert isinstance(result, AsyncPager) == self._async, qualified
                return _PagerView(result, self._called)
            if self._async:
                assert isinstance(result, Awaitable), f"{qualified} is not async"
                return result
            assert not inspect.isawaitable(result), f"{qualified} returned an awaitable"
            return _ready(result)

        return call


class Sdk(_View):
    def __init__(self, client: BudClient | AsyncBudClient) -> None:
        self.called: set[str] = set()
        self.kind = "async" if isinstance(client, AsyncBudClient) else "sync"
        super().__init__(client, "", self.called, self.kind == "async")


@pytest.fixture(params=["sync", "async"])
async def sdk(
    request: pytest.FixtureRequest, settings: Settings, store_url: str
) -> AsyncIterator[Sdk]:
    from bud.server.app import create_app

    app = create_app(settings.model_copy(update={"database_url": store_url}), check_responses=True)
    view: Sdk
    if request.param == "sync":
        with (
            TestClient(app, base_url="http://localhost") as http,
            BudClient(http_client=http) as client,
        ):
            view = Sdk(client)
            yield view
    else:
        async with (
            app.router.lifespan_context(app),
            AsyncBudClient(
                base_url="http://localhost", transport=httpx.ASGITransport(app=app)
            ) as client,
        ):
            view = Sdk(client)
            yield view
    marker = request.node.get_closest_marker("covers")
    declared = set(marker.args) if marker else set()
    assert declared <= view.called, f"declared but not called: {sorted(declared - view.called)}"


async def _first_execution(sdk: Sdk, timeout: float = 10, **filters: Any) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = await sdk.executions.list(**filters).first()
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no execution with {filters} started")


# ---------------------------------------------------------------------------------------------
# The client itself


@covers("health", "request")
async def test_health_and_raw_requests(sdk: Sdk) -> None:
    assert (await sdk.health())["status"] == "ok"
    page = await sdk.request("GET", "/v1/pipelines", params={"limit": 1})
    assert page == {"items": [], "next_cursor": None}
    with pytest.raises(NotFoundError) as missing:
        await sdk.request("GET", "/v1/pipelines/pipe_missing")
    assert "pipe_missing" in missing.value.message


# ---------------------------------------------------------------------------------------------
# Pipelines


@covers(
    "pipelines.create",
    "pipelines.get",
    "pipelines.list",
    "pipelines.update",
    "pipelines.versions",
    "pipelines.validate",
    "pipelines.dry_run",
    "pipelines.run",
    "pipelines.delete",
    "executions.wait",
)
async def test_pipelines(sdk: Sdk) -> None:
    pipeline = await sdk.pipelines.create(
        name="Greeter", definition=LOG_ONLY, description="says hello", id="pipe_greeter"
    )
    assert (pipeline.id, pipeline.version, pipeline.description) == (
        "pipe_greeter",
        1,
        "says hello",
    )
    assert (await sdk.pipelines.get(pipeline.id)).definition == LOG_ONLY
    assert [p.id for p in await sdk.pipelines.list()] == [pipeline.id]

    two_steps = {
        "steps": [
            *LOG_ONLY["steps"],
            {"id": "bye", "action": "log", "params": {"message": "bye"}, "depends_on": ["say"]},
        ]
    }
    renamed = await sdk.pipelines.update(pipeline.id, name="Hello")
    assert (renamed.name, renamed.version) == ("Hello", 1)  # no new definition, no new version
    updated = await sdk.pipelines.update(pipeline.id, definition=two_steps)
    assert updated.version == 2 and updated.name == "Hello"
    versions = await sdk.pipelines.versions(pipeline.id)
    assert [v["version"] for v in versions] == [2, 1]  # newest first
    assert versions[1]["definition"] == LOG_ONLY

    assert (await sdk.pipelines.validate(two_steps)).valid is True
    invalid = await sdk.pipelines.validate({"steps": [{"id": "x", "action": "no_such_action"}]})
    assert invalid.valid is False and "no_such_action" in invalid.errors[0]["message"]

    event = {"event_type": "model.added", "data": _model_added()}
    dry = await sdk.pipelines.dry_run(pipeline.id, event=event, params={"n": 1})
    assert dry.version == 2
    assert [s.params for s in dry.steps] == [{"message": "got Llama-3.2-1B"}, {"message": "bye"}]

    run = await sdk.pipelines.run(pipeline.id, params={"n": 3}, event=event)
    assert (run.pipeline_id, run.pipeline_version, run.params) == (pipeline.id, 2, {"n": 3})
    done = await sdk.executions.wait(run.id, timeout=20)
    assert done.status == "succeeded", done.error
    assert done.steps is not None and done.steps[0].params == {"message": "got Llama-3.2-1B"}

    with pytest.raises(ValidationError):
        await sdk.pipelines.create(name="bad", definition={"steps": []})
    await sdk.pipelines.delete(pipeline.id)
    with pytest.raises(NotFoundError):
        await sdk.pipelines.get(pipeline.id)
    assert await sdk.pipelines.list() == []


# ---------------------------------------------------------------------------------------------
# Event triggers


@covers(
    "event_triggers.create",
    "event_triggers.get",
    "event_triggers.list",
    "event_triggers.update",
    "event_triggers.enable",
    "event_triggers.disable",
    "event_triggers.test",
    "event_triggers.backtest",
    "event_triggers.stats",
    "event_triggers.delete",
    "events.publish",
)
async def test_event_triggers(sdk: Sdk) -> None:
    pipeline = await sdk.pipelines.create(name="p", definition=LOG_ONLY)
    hf = await sdk.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        filter={"model_source": "hugging_face", "auto_deploy": True},
        enabled=True,
        name="hf",
        description="auto-deploy candidates",
        flow={"rate_limit": {"max": 1, "per_seconds": 60}},
        id="trig_hf",
    )
    assert (hf.id, hf.name, hf.enabled) == ("trig_hf", "hf", True)
    assert hf.flow == {"rate_limit": {"max": 1, "per_seconds": 60}}
    other = await sdk.event_triggers.create(pipeline.id, "deployment.failed", enabled=False)
    assert (await sdk.event_triggers.get(hf.id)).description == "auto-deploy candidates"
    assert {t.id for t in await sdk.event_triggers.list(pipeline_id=pipeline.id)} == {
        hf.id,
        other.id,
    }
    assert [t.id for t in await sdk.event_triggers.list(event_type="deployment.failed")] == [
        other.id
    ]
    assert [t.id for t in await sdk.event_triggers.list(enabled=False)] == [other.id]

    renamed = await sdk.event_triggers.update(hf.id, name="hugging face")
    assert renamed.filter == hf.filter  # only what is given changes
    assert (await sdk.event_triggers.disable(hf.id)).enabled is False
    assert (await sdk.event_triggers.enable(hf.id)).enabled is True
    assert (await sdk.event_triggers.update(other.id, filter={}, enabled=True)).enabled is True
    with pytest.raises(FilterError) as bad:
        await sdk.event_triggers.update(hf.id, filter={"size": {"$gt": ["big"]}})
    assert bad.value.path.startswith("filter.size")

    verdict = await sdk.event_triggers.test(hf.id, _model_added(auto_deploy=False))
    assert (verdict.would_fire, verdict.matched) == (False, False)
    assert "auto_deploy" in verdict.summary
    fires = await sdk.event_triggers.test(
        hf.id, {"event_type": "model.added", "data": _model_added(auto_deploy=True)}
    )
    assert fires.would_fire is True

    for i, auto in enumerate([True, True, False]):
        await sdk.events.publish("model.added", _model_added(model_id=f"m{i}", auto_deploy=auto))
    backtest = await sdk.event_triggers.backtest(hf.id, limit=10)
    assert (backtest.scanned, backtest.matched) == (3, 2)
    assert [m["event_id"] for m in backtest.near_misses] != []
    adhoc = await sdk.event_triggers.backtest(event_type="model.added", filter={"model_id": "m2"})
    assert (adhoc.trigger_id, adhoc.matched) == (None, 1)

    stats = await sdk.event_triggers.stats(hf.id)
    assert stats.fire_count == 1  # the rate limit let one through
    assert stats.decisions == {"fired": 1, "suppressed": 1, "filtered": 1}
    assert sum(stats.suppressed.values()) == 1

    await sdk.event_triggers.delete(other.id)
    with pytest.raises(NotFoundError):
        await sdk.event_triggers.get(other.id)


# ---------------------------------------------------------------------------------------------
# Events


@covers(
    "events.publish",
    "events.publish_many",
    "events.get",
    "events.list",
    "events.replay",
    "pager.await",
    "pager.iterate",
    "pager.first",
    "pager.to_list",
)
async def test_events(sdk: Sdk) -> None:
    pipeline = await sdk.pipelines.create(name="hf", definition=LOG_ONLY)
    hf = await sdk.event_triggers.create(
        pipeline.id, "model.added", filter={"model_source": "hugging_face"}
    )
    first = await sdk.events.publish(
        "model.added",
        _model_added(),
        source="budmodel",
        event_id="evt_abc123",
        timestamp=datetime(2024, 1, 29, 12, tzinfo=UTC),
    )
    assert (first.event_id, first.source, first.duplicate) == ("evt_abc123", "budmodel", False)
    assert first.timestamp.startswith("2024-01-29T12:00:00")
    again = await sdk.events.publish("model.added", _model_added(), event_id="evt_abc123")
    assert again.duplicate is True
    test = await sdk.events.publish("model.added", _model_added(), test=True)
    assert test.test is True

    event = await sdk.events.get("evt_abc123")
    assert [(d.trigger_id, d.outcome) for d in event.decisions or []] == [(hf.id, "fired")]
    assert len(event.executions or []) == 1

    # More than a page (100): list() follows the cursors in both clients.
    batch = [
        {
            "event_type": "model.added",
            "event_id": f"evt_page_{i:03d}",
            "source": "bulk",
            "data": _model_added(model_id=f"m{i}", model_source="ollama"),
        }
        for i in range(150)
    ]
    accepted = await sdk.events.publish_many(batch)
    assert [e.event_id for e in accepted] == [e["event_id"] for e in batch]
    bulk = [e.event_id async for e in sdk.events.list(source="bulk")]
    assert sorted(bulk) == sorted(e["event_id"] for e in batch)
    pager = sdk.events.list(source="bulk")
    assert len(await pager.to_list()) == 150
    assert len(await pager.to_list()) == 150  # a pager starts again from the first page
    assert await sdk.events.list(event_type="cluster.ready") == []
    assert {e.event_id for e in await sdk.events.list(test=True)} == {test.event_id}
    # The execution evt_abc123 started may have ended already: its execution.succeeded event
    # (source "bud") is stored too, so only the published ones are counted.
    since = await sdk.events.list(since="2000-01-01T00:00:00Z")
    assert len([e for e in since if e.source != "bud"]) == 152
    assert await sdk.events.list(since=datetime(2999, 1, 1)).first() is None

    replay = await sdk.events.replay(["evt_abc123"])
    assert (replay.events, replay.fired) == (1, 0)
    assert [d.reason_code for d in replay.decisions] == ["already_fired"]
    forced = await sdk.events.replay(
        event_type="model.added",
        since="2000-01-01T00:00:00Z",
        until=datetime(2999, 1, 1, tzinfo=UTC),
        trigger_id=hf.id,
        bypass_dedup=True,
        limit=500,
    )
    assert forced.fired == 1 and len(forced.executions) == 1  # the ollama ones are filtered


# ---------------------------------------------------------------------------------------------
# Executions


@covers(
    "executions.list",
    "executions.get",
    "executions.wait",
    "executions.cancel",
    "executions.retry",
    "executions.attempts",
)
async def test_executions(sdk: Sdk) -> None:
    slow = await sdk.pipelines.create(name="slow", definition=NAP)
    doomed = await sdk.pipelines.create(
        name="doomed",
        definition={
            "steps": [
                {"id": "boom", "action": "fail", "params": {"message": "nope", "retryable": False}}
            ]
        },
    )
    running = await sdk.pipelines.run(slow.id)
    with pytest.raises(WaitTimeout) as timed_out:
        await sdk.executions.wait(running.id, timeout=0.3, poll_interval=0.05)
    assert running.id in timed_out.value.message and isinstance(timed_out.value, TimeoutError)

    cancelled = await sdk.executions.cancel(running.id)
    assert cancelled.id == running.id
    assert (await sdk.executions.wait(running.id, timeout=10)).status == "cancelled"
    with pytest.raises(ConflictError):
        await sdk.executions.cancel(running.id)
    retried = await sdk.executions.retry(running.id)
    assert retried.status in ("queued", "running")
    await sdk.executions.cancel(running.id)

    failed = await sdk.executions.wait((await sdk.pipelines.run(doomed.id)).id, timeout=20)
    assert failed.status == "failed" and "nope" in (failed.error or "")
    shown = await sdk.executions.get(failed.id)
    assert shown.steps is not None and shown.steps[0].status == "failed"
    attempts = await sdk.executions.attempts(failed.id)
    assert [(a.step_id, a.attempt, a.status) for a in attempts] == [("boom", 1, "failed")]

    assert [x.id for x in await sdk.executions.list(status="failed")] == [failed.id]
    assert [x.id for x in await sdk.executions.list(pipeline_id=slow.id)] == [running.id]
    assert await sdk.executions.list(trigger_id="trig_none", event_id="evt_none") == []
    window = await sdk.executions.list(since="2000-01-01T00:00:00Z", until=datetime(2999, 1, 1))
    assert {x.id for x in window} == {running.id, failed.id}


# ---------------------------------------------------------------------------------------------
# Catalog and configuration


@covers(
    "actions.list", "actions.get", "event_types.list", "event_types.get", "event_types.register"
)
async def test_actions_and_event_types(sdk: Sdk) -> None:
    names = {a.name async for a in sdk.actions.list()}
    assert {"log", "notification", "cluster_health", "deployment_create", "http_request"} <= names
    log = await sdk.actions.get("log")
    assert log.params_schema["required"] == ["message"]
    with pytest.raises(NotFoundError):
        await sdk.actions.get("no_such_action")

    builtin = {t.name for t in await sdk.event_types.list()}
    assert {"model.added", "deployment.failed", "cluster.unhealthy"} <= builtin
    assert (await sdk.event_types.get("model.added")).builtin is True
    custom = await sdk.event_types.register(
        "team.thing_happened",
        description="a team event",
        schema={"type": "object", "properties": {"what": {"type": "string"}}},
        example={"what": "it"},
    )
    assert custom.schema_["properties"]["what"]["type"] == "string"
    assert (await sdk.event_types.get("team.thing_happened")).example == {"what": "it"}


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as r:
        yield r


@covers(
    "channels.set",
    "channels.list",
    "channels.delete",
    "secrets.set",
    "secrets.list",
    "secrets.delete",
    "deliveries.list",
)
async def test_channels_secrets_and_deliveries(sdk: Sdk, receiver: HttpReceiver) -> None:
    hook = await sdk.channels.set("webhook", url=f"{receiver.url}/hook")
    assert hook.name == "webhook"
    mail = await sdk.channels.set("email", smtp_url="smtp://localhost:2525", from_="bud@example")
    assert mail.config["from"] == "bud@example"
    masked = await sdk.channels.set("slack", url="https://user:pw@hooks.example/x")
    assert "pw" not in json.dumps(masked.config)
    assert {c.name for c in await sdk.channels.list()} >= {"webhook", "email", "slack"}

    await sdk.secrets.set("token", "s3cret")
    listed = await sdk.secrets.list()
    assert [s.name for s in listed] == ["token"]
    assert "s3cret" not in json.dumps([s.model_dump() for s in listed])

    notify = await sdk.pipelines.create(
        name="notify",
        definition={
            "steps": [
                {
                    "id": "tell",
                    "action": "notification",
                    "params": {"channel": "webhook", "message": "hi {{ secrets.token }}"},
                }
            ]
        },
    )
    done = await sdk.executions.wait((await sdk.pipelines.run(notify.id)).id, timeout=20)
    assert done.status == "succeeded", done.error
    assert "hi s3cret" in json.dumps(receiver.bodies())
    deliveries = await sdk.deliveries.list(execution_id=done.id, channel="webhook")
    assert [(d.step_id, d.channel) for d in deliveries] == [("tell", "webhook")]
    assert await sdk.deliveries.list(channel="email") == []

    await sdk.channels.delete("email")
    assert "email" not in {c.name for c in await sdk.channels.list() if c.source == "api"}
    await sdk.secrets.delete("token")
    assert await sdk.secrets.list() == []


# ---------------------------------------------------------------------------------------------
# The built-in platform


@covers(
    "models.add",
    "models.get",
    "models.list",
    "models.update",
    "models.delete",
    "clusters.create",
    "clusters.get",
    "clusters.list",
    "clusters.update",
    "clusters.delete",
    "deployments.create",
    "deployments.get",
    "deployments.list",
    "deployments.update",
    "deployments.delete",
)
async def test_platform(sdk: Sdk) -> None:
    cluster = await sdk.clusters.create(
        "Production", id="cluster_prod", environment="production", status="ready"
    )
    assert (cluster.id, cluster.status, cluster.environment) == (
        "cluster_prod",
        "ready",
        "production",
    )
    probed = await sdk.clusters.create("Staging", health_url="http://127.0.0.1:9/health")
    assert probed.health_url == "http://127.0.0.1:9/health"
    assert {c.id for c in await sdk.clusters.list()} == {"cluster_prod", probed.id}
    assert (await sdk.clusters.get("cluster_prod")).name == "Production"

    model = await sdk.models.add(
        "Llama-3.2-1B", "hugging_face", uri="hf://meta/llama", created_by="ann", auto_deploy=True
    )
    assert (model.metadata, model.created_by, model.uri) == (
        {"auto_deploy": True},
        "ann",
        "hf://meta/llama",
    )
    assert (await sdk.models.get(model.id)).name == "Llama-3.2-1B"
    assert [m.id for m in await sdk.models.list()] == [model.id]
    changed = await sdk.models.update(model.id, auto_deploy=False)
    assert changed.metadata["auto_deploy"] is False
    assert [e.data["model_id"] for e in await sdk.events.list(event_type="model.updated")] == [
        model.id
    ]

    deployment = await sdk.deployments.create(model.id, "cluster_prod", "llama-prod")
    assert deployment.status == "running", deployment.error_message
    assert (await sdk.deployments.get(deployment.id)).name == "llama-prod"
    failed = await sdk.deployments.update(deployment.id, status="failed", error_message="OOM")
    assert (failed.status, failed.error_message) == ("failed", "OOM")
    assert [d.id for d in await sdk.deployments.list(model_id=model.id, status="failed")] == [
        deployment.id
    ]
    assert await sdk.deployments.list(cluster_id=probed.id) == []
    alert = await sdk.events.list(event_type="deployment.failed").first()
    assert alert is not None and alert.data["error_message"] == "OOM"

    unhealthy = await sdk.clusters.update(
        "cluster_prod", status="unhealthy", reason="disk full", name="Prod", environment="prod"
    )
    assert (unhealthy.status, unhealthy.name) == ("unhealthy", "Prod")
    assert (await sdk.events.list(event_type="cluster.unhealthy").first()) is not None

    await sdk.deployments.delete(deployment.id)
    await sdk.models.delete(model.id)
    await sdk.clusters.delete(probed.id)
    await sdk.clusters.delete("cluster_prod")
    assert await sdk.models.list() == [] and await sdk.clusters.list() == []
    with pytest.raises(NotFoundError):
        await sdk.deployments.get(deployment.id)


@covers("deployments.revisions", "monitors.list", "monitors.get")
async def test_deployment_revisions_and_monitors(sdk: Sdk) -> None:
    await sdk.clusters.create("Production", id="cluster_prod", environment="production")
    model = await sdk.models.add("Llama-3.2-1B", "hugging_face", version="1")
    deployment = await sdk.deployments.create(model.id, "cluster_prod", "llama-prod")
    pipeline = await sdk.pipelines.create(
        name="update and monitor",
        definition={
            "steps": [
                {
                    "id": "update",
                    "action": "deployment_update",
                    "params": {"deployment_id": deployment.id, "model_version": "2"},
                },
                {
                    "id": "monitor",
                    "action": "monitoring_configure",
                    "params": {"deployment_id": deployment.id, "channel": "slack"},
                    "depends_on": ["update"],
                },
            ]
        },
    )
    run = await sdk.pipelines.run(pipeline.id)
    done = await sdk.executions.wait(run.id, timeout=30)
    assert done.status == "succeeded", done.error
    revisions = await sdk.deployments.revisions(deployment.id)
    assert [(r.revision, r.model_version, r.reason, r.good) for r in revisions] == [
        (1, "1", "created", True),
        (2, "2", "updated", True),
    ]
    [monitor] = await sdk.monitors.list(deployment_id=deployment.id)
    assert (monitor.cluster_id, monitor.environment) == ("cluster_prod", "production")
    assert monitor.config["channel"] == "slack" and monitor.configured_by == run.id
    assert (await sdk.monitors.get(monitor.id)).deployment_id == deployment.id
    assert await sdk.monitors.list(cluster_id="cluster_other") == []
    with pytest.raises(NotFoundError, match="monitor mon_nope not found"):
        await sdk.monitors.get("mon_nope")
    with pytest.raises(NotFoundError):
        await sdk.deployments.revisions("dep_nope")


# ---------------------------------------------------------------------------------------------
# The two clients do not drift


def _public_methods(client: BudClient | AsyncBudClient) -> dict[str, Callable[..., Any]]:
    methods: dict[str, Callable[..., Any]] = {}
    for name in ("health", "request", "close"):
        methods[name] = getattr(client, name)
    for resource_name, resource in vars(client).items():
        if not hasattr(resource, "_client"):
            continue
        for name, member in inspect.getmembers(resource, callable):
            if not name.startswith("_"):
                methods[f"{resource_name}.{name}"] = member
    return methods


def _clients() -> tuple[BudClient, AsyncBudClient]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    return (
        BudClient(transport=httpx.MockTransport(answer)),
        AsyncBudClient(transport=httpx.MockTransport(answer)),
    )


def test_both_clients_have_the_same_methods_and_signatures() -> None:
    sync, asynchronous = _clients()
    sync_methods, async_methods = _public_methods(sync), _public_methods(asynchronous)
    assert sync_methods.keys() == async_methods.keys()
    assert len(sync_methods) >= 60
    for name, sync_method in sync_methods.items():
        async_method = async_methods[name]
        assert inspect.signature(sync_method).parameters == (
            inspect.signature(async_method).parameters
        ), name
        assert not inspect.iscoroutinefunction(sync_method), name
        # list() hands back a pager at once in both; everything else is a coroutine when async.
        assert inspect.iscoroutinefunction(async_method) == (not name.endswith(".list")), name
    sync.close()


# What a list() call hands back: awaited for a list, iterated, first(), to_list().
PAGER = {"pager.await", "pager.iterate", "pager.first", "pager.to_list"}


def test_every_method_is_covered() -> None:
    sync, _ = _clients()
    methods = set(_public_methods(sync)) - {"close"}  # every fixture closes its client
    methods |= PAGER
    declared: set[str] = set()
    for value in globals().values():
        for mark in getattr(value, "pytestmark", []):
            if mark.name == "covers":
                declared.update(mark.args)
    assert declared - methods == set(), "covers() names a method that does not exist"
    assert methods - declared == set(), "SDK methods without a test"
    sync.close()


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, str(root / "scripts" / "unasync.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# Schedule triggers and inbound webhooks


@covers("event_triggers.create", "event_triggers.update", "event_triggers.get")
async def test_schedule_triggers(sdk: Sdk) -> None:
    pipeline = await sdk.pipelines.create(name="nightly", definition=LOG_ONLY)
    berlin = {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}
    trigger = await sdk.event_triggers.create(pipeline.id, schedule=berlin, name="weekdays")
    assert (trigger.kind, trigger.event_type, trigger.schedule) == (
        "schedule",
        "schedule.tick",
        berlin,
    )
    due = datetime.fromisoformat(trigger.next_run_at.replace("Z", "+00:00"))
    assert due > datetime.now(UTC) and due.minute == 0  # 09:00 Berlin is 07:00 or 08:00 UTC
    changed = await sdk.event_triggers.update(trigger.id, schedule={"interval_seconds": 300})
    assert changed.schedule == {"interval_seconds": 300}
    assert (await sdk.event_triggers.get(trigger.id)).next_run_at == changed.next_run_at
    with pytest.raises(ValidationError) as bad_zone:
        mars = {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}
        await sdk.event_triggers.create(pipeline.id, schedule=mars)
    assert bad_zone.value.details["path"] == "schedule.timezone"
    with pytest.raises(ValidationError) as bad_cron:
        await sdk.event_triggers.create(pipeline.id, schedule={"cron": "61 * * * *"})
    assert bad_cron.value.details["path"] == "schedule.cron"


@covers("hooks.create", "hooks.list", "hooks.get", "hooks.deliver", "hooks.delete")
async def test_hooks(sdk: Sdk) -> None:
    pipeline = await sdk.pipelines.create(name="on-push", definition=LOG_ONLY)
    hook = await sdk.hooks.create(
        "github.push", name="github", schema={"type": "object", "required": ["ref"]}
    )
    assert hook.secret and hook.secret.startswith("whsec_") and hook.url == f"/v1/hooks/{hook.id}"
    await sdk.event_triggers.create(pipeline.id, "github.push")
    [listed] = await sdk.hooks.list()
    assert listed.id == hook.id and listed.secret is None  # the secret is shown once
    assert (await sdk.hooks.get(hook.id)).event_type == "github.push"
    delivered = await sdk.hooks.deliver(
        hook.id, {"ref": "refs/heads/main"}, secret=hook.secret, delivery_id="d-1"
    )
    assert delivered.event_type == "github.push" and len(delivered.executions or []) == 1
    event = await sdk.events.get(delivered.event_id)
    assert event.source == f"hook:{hook.id}" and event.data == {"ref": "refs/heads/main"}
    with pytest.raises(ConflictError) as replay:
        await sdk.hooks.deliver(hook.id, {"ref": "x"}, secret=hook.secret, delivery_id="d-1")
    assert "accepted before" in replay.value.message and replay.value.details["delivery"] == "d-1"
    with pytest.raises(ValidationError):  # the type's schema needs ref
        await sdk.hooks.deliver(hook.id, {"other": 1}, secret=hook.secret)
    await sdk.hooks.delete(hook.id)
    with pytest.raises(NotFoundError):
        await sdk.hooks.get(hook.id)
