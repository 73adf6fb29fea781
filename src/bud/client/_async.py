"""The asyncio client, ``AsyncBudClient``: every resource and method of the SDK.

This module is the one source of both clients: ``scripts/unasync.py`` writes ``_sync.py`` from
it (``AsyncBudClient`` becomes ``BudClient``, ``async def`` becomes ``def``, ``await`` goes) and
``scripts/check`` fails when the two differ. Edit this file, then run ``scripts/unasync.py``.
"""

from __future__ import annotations

import builtins
import json as json_lib
import time
import uuid
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from bud.client._base import (
    FINAL_STATUSES,
    NOT_GIVEN,
    NotGiven,
    WaitTimeout,
    auth_headers,
    compact,
    envelope,
    error_from_response,
    iso,
    list_params,
    resolve_api_key,
    resolve_base_url,
    transport_error,
    trigger_test_event,
)
from bud.client._io import AsyncPager, async_sleep
from bud.errors import ValidationError
from bud.schemas import (
    Action,
    Attempt,
    BacktestResult,
    BatchResult,
    Channel,
    Cluster,
    Delivery,
    Deployment,
    DeploymentRevision,
    DryRunResult,
    Event,
    EventTrigger,
    EventType,
    Execution,
    Hook,
    HookDelivery,
    Model,
    Monitor,
    Pipeline,
    ReplayResult,
    Secret,
    TriggerStats,
    TriggerTest,
    ValidationResult,
)
from bud.signing import sign

__all__ = ["AsyncBudClient", "AsyncPager"]

M = TypeVar("M", bound=BaseModel)


class _Resource:
    def __init__(self, client: AsyncBudClient) -> None:
        self._client = client

    async def _get(self, path: str, model: type[M], params: dict[str, Any] | None = None) -> M:
        return model.model_validate(await self._client.request("GET", path, params=params))

    async def _send(self, method: str, path: str, model: type[M], json: Any = None) -> M:
        return model.model_validate(await self._client.request(method, path, json=json))

    async def _delete(self, path: str) -> None:
        await self._client.request("DELETE", path)

    def _pager(
        self, path: str, model: type[M], *, paged: bool = True, **filters: Any
    ) -> AsyncPager[M]:
        async def fetch(query: dict[str, Any]) -> Any:
            return await self._client.request("GET", path, params=query)

        return AsyncPager(fetch, model, list_params(**filters), paged=paged)


class Pipelines(_Resource):
    """Pipelines: DAGs of steps, each running an action."""

    async def create(
        self,
        name: str,
        definition: dict[str, Any],
        description: str | None = None,
        id: str | None = None,
    ) -> Pipeline:
        """Create a pipeline; the definition is validated on save."""
        body = compact(name=name, definition=definition, description=description, id=id)
        return await self._send("POST", "/v1/pipelines", Pipeline, body)

    async def get(self, id: str) -> Pipeline:
        """One pipeline by id."""
        return await self._get(f"/v1/pipelines/{id}", Pipeline)

    def list(self) -> AsyncPager[Pipeline]:
        """Every pipeline, fetched lazily page by page."""
        return self._pager("/v1/pipelines", Pipeline)

    async def update(
        self,
        id: str,
        name: str | None = None,
        definition: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Pipeline:
        """Change what is given; a new definition makes a new version."""
        body = compact(name=name, definition=definition, description=description, id=id)
        return await self._send("PATCH", f"/v1/pipelines/{id}", Pipeline, body)

    async def delete(self, id: str) -> None:
        """Delete a pipeline and its triggers."""
        await self._delete(f"/v1/pipelines/{id}")

    async def run(
        self, id: str, params: dict[str, Any] | None = None, event: dict[str, Any] | None = None
    ) -> Execution:
        """Start an execution by hand, with run parameters and optionally an event."""
        body = compact(params=params, event=envelope(event) if event is not None else None)
        return await self._send("POST", f"/v1/pipelines/{id}/run", Execution, body)

    async def dry_run(
        self, id: str, event: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> DryRunResult:
        """Render every step against an event (secrets masked); nothing is stored or run."""
        body = compact(params=params, event=envelope(event) if event is not None else None)
        return await self._send("POST", f"/v1/pipelines/{id}/dry-run", DryRunResult, body)

    async def validate(self, definition: dict[str, Any]) -> ValidationResult:
        """Check a definition without saving it."""
        return await self._send(
            "POST", "/v1/pipelines/validate", ValidationResult, {"definition": definition}
        )

    async def versions(self, id: str) -> builtins.list[dict[str, Any]]:
        """Every saved version of a pipeline's definition."""
        payload = await self._client.request("GET", f"/v1/pipelines/{id}/versions")
        return list(payload.get("items") or []) if isinstance(payload, dict) else []


class EventTriggers(_Resource):
    """Event triggers: start a pipeline when a matching event arrives."""

    async def create(
        self,
        pipeline_id: str,
        event_type: str | None = None,
        filter: dict[str, Any] | None = None,
        enabled: bool = True,
        name: str | None = None,
        description: str | None = None,
        flow: dict[str, Any] | None = None,
        id: str | None = None,
        schedule: dict[str, Any] | None = None,
    ) -> EventTrigger:
        """Create a trigger; a malformed filter raises FilterError with the offending path.

        With ``schedule`` (``{"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}`` or
        ``{"interval_seconds": 300}``) it is a schedule trigger: no event type, it fires with
        a ``schedule.tick`` event once per tick."""
        body = compact(
            pipeline_id=pipeline_id,
            event_type=event_type,
            filter=filter,
            enabled=enabled,
            name=name,
            description=description,
            flow=flow,
            id=id,
            schedule=schedule,
        )
        return await self._send("POST", "/v1/event-triggers", EventTrigger, body)

    async def get(self, trigger_id: str) -> EventTrigger:
        """One trigger by id."""
        return await self._get(f"/v1/event-triggers/{trigger_id}", EventTrigger)

    def list(
        self,
        pipeline_id: str | None = None,
        event_type: str | None = None,
        enabled: bool | None = None,
    ) -> AsyncPager[EventTrigger]:
        """Triggers, optionally only those of a pipeline, an event type or an enabled state."""
        return self._pager(
            "/v1/event-triggers",
            EventTrigger,
            pipeline_id=pipeline_id,
            event_type=event_type,
            enabled=enabled,
        )

    async def update(
        self,
        trigger_id: str,
        *,
        filter: dict[str, Any] | NotGiven = NOT_GIVEN,
        enabled: bool | NotGiven = NOT_GIVEN,
        name: str | NotGiven | None = NOT_GIVEN,
        description: str | NotGiven | None = NOT_GIVEN,
        event_type: str | NotGiven = NOT_GIVEN,
        flow: dict[str, Any] | NotGiven | None = NOT_GIVEN,
        schedule: dict[str, Any] | NotGiven = NOT_GIVEN,
    ) -> EventTrigger:
        """Change only the fields given (``filter={}`` clears the filter; a new ``schedule``
        counts its next tick from now)."""
        fields = {
            "filter": filter,
            "enabled": enabled,
            "name": name,
            "description": description,
            "event_type": event_type,
            "flow": flow,
            "schedule": schedule,
        }
        body = {k: v for k, v in fields.items() if v is not NOT_GIVEN}
        return await self._send("PATCH", f"/v1/event-triggers/{trigger_id}", EventTrigger, body)

    async def enable(self, trigger_id: str) -> EventTrigger:
        """Turn a trigger on."""
        return await self._send("POST", f"/v1/event-triggers/{trigger_id}/enable", EventTrigger)

    async def disable(self, trigger_id: str) -> EventTrigger:
        """Turn a trigger off (it keeps its filter and statistics)."""
        return await self._send("POST", f"/v1/event-triggers/{trigger_id}/disable", EventTrigger)

    async def delete(self, trigger_id: str) -> None:
        """Delete a trigger."""
        await self._delete(f"/v1/event-triggers/{trigger_id}")

    async def test(self, trigger_id: str, event: dict[str, Any]) -> TriggerTest:
        """Explain whether an event would fire the trigger; fires nothing.

        ``event`` is an envelope or ``{"data": ...}``; a dict with neither ``data`` nor
        ``event_type`` is taken as the data itself.
        """
        return await self._send(
            "POST",
            f"/v1/event-triggers/{trigger_id}/test",
            TriggerTest,
            {"event": trigger_test_event(event)},
        )

    async def backtest(
        self,
        trigger_id: str | None = None,
        *,
        event_type: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> BacktestResult:
        """Try a trigger's filter (or ``event_type`` and ``filter``) on stored events.

        Scans the newest ``limit`` events (default 1000): counts, up to 5 matched examples
        and up to 5 near misses (one failing clause). Stores and fires nothing.
        """
        if trigger_id is not None:
            if event_type is not None or filter is not None:
                raise ValidationError(
                    "backtest: give trigger_id, or event_type and filter, not both",
                    details={"path": "trigger_id"},
                )
            path = f"/v1/event-triggers/{trigger_id}/backtest"
            return await self._send("POST", path, BacktestResult, compact(limit=limit))
        body = compact(event_type=event_type, filter=filter, limit=limit)
        return await self._send("POST", "/v1/event-triggers/backtest", BacktestResult, body)

    async def stats(self, trigger_id: str) -> TriggerStats:
        """Fire count, decisions by outcome, suppressions by reason, recent fire rate."""
        return await self._get(f"/v1/event-triggers/{trigger_id}/stats", TriggerStats)


class Events(_Resource):
    """Events: publish them and see what they started."""

    async def publish(
        self,
        event_type: str,
        data: dict[str, Any],
        source: str | None = None,
        event_id: str | None = None,
        timestamp: datetime | str | None = None,
        test: bool = False,
        *,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Event:
        """Publish one event; the answer carries its ``event_id`` (``duplicate`` if seen)."""
        body = compact(
            event_type=event_type,
            data=data,
            source=source,
            event_id=event_id,
            timestamp=iso(timestamp),
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        if test:
            body["test"] = True
        return await self._send("POST", "/v1/events", Event, body)

    async def publish_many(self, events: builtins.list[dict[str, Any]]) -> builtins.list[Event]:
        """Publish a batch of envelope dicts in one request; the accepted events in order."""
        body = {"events": [envelope(e) for e in events]}
        result = await self._send("POST", "/v1/events/batch", BatchResult, body)
        return result.events

    async def get(self, event_id: str) -> Event:
        """One event with its ``decisions`` (one per candidate trigger) and ``executions``."""
        return await self._get(f"/v1/events/{event_id}", Event)

    def list(
        self,
        event_type: str | None = None,
        source: str | None = None,
        since: datetime | str | None = None,
        test: bool | None = None,
        *,
        data_path: str | None = None,
        data_value: str | None = None,
        started_nothing: bool | None = None,
        filtered_by: str | None = None,
    ) -> AsyncPager[Event]:
        """Events, optionally of one type, from one source, or since a time.

        ``data_path`` / ``data_value`` search the payload (the value read as JSON when it
        parses); ``started_nothing`` keeps events no trigger fired for (or, False, the
        others); ``filtered_by`` the events a trigger's filter turned down.
        """
        return self._pager(
            "/v1/events",
            Event,
            event_type=event_type,
            source=source,
            since=iso(since),
            test=test,
            data_path=data_path,
            data_value=data_value,
            started_nothing=started_nothing,
            filtered_by=filtered_by,
        )

    async def replay(
        self,
        event_ids: builtins.list[str] | None = None,
        *,
        event_type: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        trigger_id: str | None = None,
        bypass_dedup: bool = False,
        limit: int | None = None,
    ) -> ReplayResult:
        """Deliver stored events again: by id, or by type with an optional received-time range.

        To their matching triggers, or only to ``trigger_id``. A (trigger, event) pair that
        already fired is recorded as ``already_fired`` unless ``bypass_dedup`` is set.
        """
        body = compact(
            event_ids=event_ids,
            event_type=event_type,
            since=iso(since),
            until=iso(until),
            trigger_id=trigger_id,
            limit=limit,
        )
        if bypass_dedup:
            body["bypass_dedup"] = True
        return await self._send("POST", "/v1/events/replay", ReplayResult, body)


class Executions(_Resource):
    """Executions: one run of a pipeline."""

    def list(
        self,
        pipeline_id: str | None = None,
        trigger_id: str | None = None,
        event_id: str | None = None,
        status: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
    ) -> AsyncPager[Execution]:
        """Executions (without steps), optionally filtered."""
        return self._pager(
            "/v1/executions",
            Execution,
            pipeline_id=pipeline_id,
            trigger_id=trigger_id,
            event_id=event_id,
            status=status,
            since=iso(since),
            until=iso(until),
        )

    async def get(self, id: str) -> Execution:
        """One execution with its steps."""
        return await self._get(f"/v1/executions/{id}", Execution)

    async def wait(self, id: str, timeout: float = 60, poll_interval: float = 0.2) -> Execution:
        """Poll until the execution is final; raises WaitTimeout (a TimeoutError) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            execution = await self.get(id)
            if execution.status in FINAL_STATUSES:
                return execution
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"execution {id} is still {execution.status} after {timeout:g}s",
                    details={"execution_id": id, "status": execution.status},
                )
            await async_sleep(min(poll_interval, remaining))

    async def cancel(self, id: str) -> Execution:
        """Cancel a running or queued execution (ConflictError when already final)."""
        return await self._send("POST", f"/v1/executions/{id}/cancel", Execution)

    async def retry(self, id: str, *, from_step: str | None = None) -> Execution:
        """Run a failed or cancelled execution's unfinished steps again.

        With ``from_step``, that step and every step downstream of it run again too, even
        if they succeeded (a succeeded execution can be re-run this way).
        """
        body = {"from_step": from_step} if from_step else None
        return await self._send("POST", f"/v1/executions/{id}/retry", Execution, body)

    async def attempts(self, id: str) -> builtins.list[Attempt]:
        """Every step attempt of an execution, with rendered params, outputs and errors."""
        return await self._pager(f"/v1/executions/{id}/attempts", Attempt, paged=False).to_list()


class Actions(_Resource):
    """The action registry."""

    def list(self) -> AsyncPager[Action]:
        """Every registered action."""
        return self._pager("/v1/actions", Action, paged=False)

    async def get(self, name: str) -> Action:
        """One action by name, with its params schema and outputs."""
        return await self._get(f"/v1/actions/{name}", Action)


class Models(_Resource):
    """Models in the built-in platform registry."""

    async def add(self, name: str, source: str, uri: str | None = None, **metadata: Any) -> Model:
        """Register a model; emits ``model.added`` with the metadata in its data.

        A ``created_by`` keyword is the model's author rather than metadata.
        """
        created_by = metadata.pop("created_by", None)
        body = compact(name=name, source=source, uri=uri, created_by=created_by)
        body["metadata"] = metadata
        return await self._send("POST", "/v1/models", Model, body)

    async def get(self, id: str) -> Model:
        """One model by id."""
        return await self._get(f"/v1/models/{id}", Model)

    def list(self) -> AsyncPager[Model]:
        """Every model."""
        return self._pager("/v1/models", Model)

    async def update(self, model_id: str, **changes: Any) -> Model:
        """Change a model's fields or metadata; emits ``model.updated``."""
        return await self._send("PATCH", f"/v1/models/{model_id}", Model, {"changes": changes})

    async def delete(self, model_id: str) -> None:
        """Delete a model."""
        await self._delete(f"/v1/models/{model_id}")


class Clusters(_Resource):
    """Clusters in the built-in platform registry."""

    async def create(
        self,
        name: str,
        id: str | None = None,
        environment: str | None = None,
        status: str = "ready",
        health_url: str | None = None,
    ) -> Cluster:
        """Create a cluster, with a chosen id (``cluster_prod``) if you like."""
        body = compact(
            name=name, id=id, environment=environment, status=status, health_url=health_url
        )
        return await self._send("POST", "/v1/clusters", Cluster, body)

    async def get(self, id: str) -> Cluster:
        """One cluster by id."""
        return await self._get(f"/v1/clusters/{id}", Cluster)

    def list(self) -> AsyncPager[Cluster]:
        """Every cluster."""
        return self._pager("/v1/clusters", Cluster)

    async def update(
        self,
        cluster_id: str,
        status: str | None = None,
        reason: str | None = None,
        name: str | None = None,
        environment: str | None = None,
        health_url: str | None = None,
    ) -> Cluster:
        """Change what is given; a status change to ready/unhealthy emits ``cluster.*``."""
        body = compact(
            status=status, reason=reason, name=name, environment=environment, health_url=health_url
        )
        return await self._send("PATCH", f"/v1/clusters/{cluster_id}", Cluster, body)

    async def delete(self, cluster_id: str) -> None:
        """Delete a cluster."""
        await self._delete(f"/v1/clusters/{cluster_id}")


class Deployments(_Resource):
    """Deployments of models on clusters in the built-in platform."""

    async def create(self, model_id: str, cluster_id: str, deployment_name: str) -> Deployment:
        """Deploy a model; emits ``deployment.created`` or ``deployment.failed``."""
        body = {"model_id": model_id, "cluster_id": cluster_id, "deployment_name": deployment_name}
        return await self._send("POST", "/v1/deployments", Deployment, body)

    async def get(self, id: str) -> Deployment:
        """One deployment by id."""
        return await self._get(f"/v1/deployments/{id}", Deployment)

    def list(
        self, model_id: str | None = None, cluster_id: str | None = None, status: str | None = None
    ) -> AsyncPager[Deployment]:
        """Deployments, optionally filtered."""
        return self._pager(
            "/v1/deployments", Deployment, model_id=model_id, cluster_id=cluster_id, status=status
        )

    async def update(
        self, deployment_id: str, status: str | None = None, error_message: str | None = None
    ) -> Deployment:
        """Change status; ``failed`` emits ``deployment.failed`` with the error message."""
        body = compact(status=status, error_message=error_message)
        return await self._send("PATCH", f"/v1/deployments/{deployment_id}", Deployment, body)

    async def revisions(self, deployment_id: str) -> builtins.list[DeploymentRevision]:
        """A deployment's revisions, oldest first (``good``: it ran successfully)."""
        payload = await self._client.request("GET", f"/v1/deployments/{deployment_id}/revisions")
        return [DeploymentRevision.model_validate(r) for r in payload["items"]]

    async def delete(self, deployment_id: str) -> None:
        """Delete a deployment."""
        await self._delete(f"/v1/deployments/{deployment_id}")


class Monitors(_Resource):
    """The monitoring configured for deployments by the ``monitoring_configure`` action."""

    def list(
        self, deployment_id: str | None = None, cluster_id: str | None = None
    ) -> AsyncPager[Monitor]:
        """Monitors, optionally of one deployment or cluster."""
        return self._pager(
            "/v1/monitors", Monitor, deployment_id=deployment_id, cluster_id=cluster_id
        )

    async def get(self, id: str) -> Monitor:
        """One monitor by id."""
        return await self._get(f"/v1/monitors/{id}", Monitor)


class EventTypes(_Resource):
    """The event type catalog: the built-in platform types and registered custom ones."""

    def list(self) -> AsyncPager[EventType]:
        """Every event type."""
        return self._pager("/v1/event-types", EventType)

    async def get(self, name: str) -> EventType:
        """One event type by name, with its data schema."""
        return await self._get(f"/v1/event-types/{name}", EventType)

    async def register(
        self,
        name: str,
        description: str = "",
        schema: dict[str, Any] | None = None,
        example: dict[str, Any] | None = None,
    ) -> EventType:
        """Register a custom event type, optionally with a JSON Schema for its data."""
        body = compact(name=name, description=description, schema=schema, example=example)
        return await self._send("POST", "/v1/event-types", EventType, body)


class Channels(_Resource):
    """Notification channels (slack, webhook, email)."""

    def list(self) -> AsyncPager[Channel]:
        """Every configured channel (secrets in URLs masked)."""
        return self._pager("/v1/channels", Channel, paged=False)

    async def set(self, name: str, **config: Any) -> Channel:
        """Configure a channel: ``url=`` (slack, webhook), ``smtp_url=`` and ``from_=`` (email)."""
        if "from_" in config:
            config["from"] = config.pop("from_")
        return await self._send("PUT", f"/v1/channels/{name}", Channel, config)

    async def delete(self, name: str) -> None:
        """Remove a channel configured through the API."""
        await self._delete(f"/v1/channels/{name}")


class Secrets(_Resource):
    """Secrets usable in templates as ``{{ secrets.name }}`` (values are never returned)."""

    def list(self) -> AsyncPager[Secret]:
        """Every secret's name."""
        return self._pager("/v1/secrets", Secret, paged=False)

    async def set(self, name: str, value: str) -> Secret:
        """Create or replace a secret."""
        return await self._send("PUT", f"/v1/secrets/{name}", Secret, {"value": value})

    async def delete(self, name: str) -> None:
        """Delete a secret."""
        await self._delete(f"/v1/secrets/{name}")


class Deliveries(_Resource):
    """The record of every notification delivery attempt."""

    def list(
        self, execution_id: str | None = None, channel: str | None = None
    ) -> AsyncPager[Delivery]:
        """Deliveries, optionally of one execution or channel."""
        return self._pager("/v1/deliveries", Delivery, execution_id=execution_id, channel=channel)


class Hooks(_Resource):
    """Inbound webhooks: a signed POST to a hook's URL becomes an event of its type."""

    async def create(
        self,
        event_type: str,
        name: str | None = None,
        schema: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Hook:
        """Create a hook for a custom event type (registered now when new, with ``schema``);
        the answer's ``secret`` is shown this once."""
        body = compact(event_type=event_type, name=name, schema=schema, description=description)
        return await self._send("POST", "/v1/hooks", Hook, body)

    def list(self) -> AsyncPager[Hook]:
        """Every hook (never their secrets)."""
        return self._pager("/v1/hooks", Hook, paged=False)

    async def get(self, hook_id: str) -> Hook:
        """One hook by id."""
        return await self._get(f"/v1/hooks/{hook_id}", Hook)

    async def delete(self, hook_id: str) -> None:
        """Delete a hook; its deliveries are refused from now on."""
        await self._delete(f"/v1/hooks/{hook_id}")

    async def deliver(
        self,
        hook_id: str,
        data: dict[str, Any],
        *,
        secret: str,
        delivery_id: str | None = None,
        timestamp: int | None = None,
    ) -> HookDelivery:
        """Send a signed delivery, as a webhook sender does (``X-Hub-Signature-256``; with
        ``timestamp``, ``X-Bud-Timestamp`` too). ``delivery_id`` defaults to a new one."""
        body = json_lib.dumps(data, separators=(",", ":")).encode()
        stamp = str(timestamp) if timestamp is not None else None
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(secret, body, stamp),
            "X-Bud-Delivery": delivery_id or uuid.uuid4().hex,
        }
        if stamp is not None:
            headers["X-Bud-Timestamp"] = stamp
        answer = await self._client.request(
            "POST", f"/v1/hooks/{hook_id}", content=body, headers=headers
        )
        return HookDelivery.model_validate(answer)


class AsyncBudClient:
    """An asyncio client for a Bud Pipelines server.

    ``base_url`` defaults to ``BUD_URL`` (else ``http://127.0.0.1:8010``) and ``api_key`` to
    ``BUD_API_KEY``. ``transport`` (an httpx transport, e.g. ``httpx.MockTransport(handler)``)
    or ``http_client`` (an ``httpx.AsyncClient``) route requests elsewhere, e.g. to an app in
    process in tests; a client you pass in is not closed by :meth:`close`. ``list()`` methods
    return a pager, :class:`AsyncPager`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if base_url is None and http_client is not None and str(http_client.base_url):
            base_url = str(http_client.base_url)
        self.base_url = resolve_base_url(base_url)
        self.api_key = resolve_api_key(api_key)
        self.timeout = timeout
        self._headers = auth_headers(self.api_key)
        if http_client is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url, timeout=timeout, transport=transport
            )
            self._owns_http = True
        else:
            self._http = http_client
            self._owns_http = False
        # A client without a base URL needs absolute URLs; one with a base URL keeps its own.
        self._prefix = "" if str(self._http.base_url) else self.base_url
        self.pipelines = Pipelines(self)
        self.event_triggers = EventTriggers(self)
        self.events = Events(self)
        self.executions = Executions(self)
        self.actions = Actions(self)
        self.models = Models(self)
        self.clusters = Clusters(self)
        self.deployments = Deployments(self)
        self.monitors = Monitors(self)
        self.event_types = EventTypes(self)
        self.channels = Channels(self)
        self.secrets = Secrets(self)
        self.deliveries = Deliveries(self)
        self.hooks = Hooks(self)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer (None for an empty one).

        Raises the ``bud.errors`` class for the server's error code, or TransportError when
        the server cannot be reached.
        """
        kwargs: dict[str, Any] = {"params": params, "headers": {**self._headers, **(headers or {})}}
        if json is not None:
            kwargs["json"] = json
        if content is not None:
            kwargs["content"] = content
        try:
            response = await self._http.request(method, self._prefix + path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(self.base_url, exc) from exc
        if not response.is_success:
            raise error_from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    async def health(self) -> dict[str, Any]:
        """The server's ``/healthz`` answer."""
        payload = await self.request("GET", "/healthz")
        return dict(payload) if isinstance(payload, dict) else {"status": payload}

    async def close(self) -> None:
        """Close the connection pool (not an ``http_client`` passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBudClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncBudClient(base_url={self.base_url!r})"
