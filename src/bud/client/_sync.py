"""The synchronous client, ``BudClient``: every resource and method of the SDK.

Generated from ``_async.py`` by ``scripts/unasync.py``: do not edit; change ``_async.py`` and
run the script again (``scripts/check`` fails while the two differ).
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
from bud.client._io import Pager, sleep
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

__all__ = ["BudClient", "Pager"]

M = TypeVar("M", bound=BaseModel)


class _Resource:
    def __init__(self, client: BudClient) -> None:
        self._client = client

    def _get(self, path: str, model: type[M], params: dict[str, Any] | None = None) -> M:
        return model.model_validate(self._client.request("GET", path, params=params))

    def _send(self, method: str, path: str, model: type[M], json: Any = None) -> M:
        return model.model_validate(self._client.request(method, path, json=json))

    def _delete(self, path: str) -> None:
        self._client.request("DELETE", path)

    def _pager(self, path: str, model: type[M], *, paged: bool = True, **filters: Any) -> Pager[M]:
        def fetch(query: dict[str, Any]) -> Any:
            return self._client.request("GET", path, params=query)

        return Pager(fetch, model, list_params(**filters), paged=paged)


class Pipelines(_Resource):
    """Pipelines: DAGs of steps, each running an action."""

    def create(
        self,
        name: str,
        definition: dict[str, Any],
        description: str | None = None,
        id: str | None = None,
    ) -> Pipeline:
        """Create a pipeline; the definition is validated on save."""
        body = compact(name=name, definition=definition, description=description, id=id)
        return self._send("POST", "/v1/pipelines", Pipeline, body)

    def get(self, id: str) -> Pipeline:
        """One pipeline by id."""
        return self._get(f"/v1/pipelines/{id}", Pipeline)

    def list(self) -> Pager[Pipeline]:
        """Every pipeline, fetched lazily page by page."""
        return self._pager("/v1/pipelines", Pipeline)

    def update(
        self,
        id: str,
        name: str | None = None,
        definition: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Pipeline:
        """Change what is given; a new definition makes a new version."""
        body = compact(name=name, definition=definition, description=description, id=id)
        return self._send("PATCH", f"/v1/pipelines/{id}", Pipeline, body)

    def delete(self, id: str) -> None:
        """Delete a pipeline and its triggers."""
        self._delete(f"/v1/pipelines/{id}")

    def run(
        self, id: str, params: dict[str, Any] | None = None, event: dict[str, Any] | None = None
    ) -> Execution:
        """Start an execution by hand, with run parameters and optionally an event."""
        body = compact(params=params, event=envelope(event) if event is not None else None)
        return self._send("POST", f"/v1/pipelines/{id}/run", Execution, body)

    def dry_run(
        self, id: str, event: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> DryRunResult:
        """Render every step against an event (secrets masked); nothing is stored or run."""
        body = compact(params=params, event=envelope(event) if event is not None else None)
        return self._send("POST", f"/v1/pipelines/{id}/dry-run", DryRunResult, body)

    def validate(self, definition: dict[str, Any]) -> ValidationResult:
        """Check a definition without saving it."""
        return self._send(
            "POST", "/v1/pipelines/validate", ValidationResult, {"definition": definition}
        )

    def versions(self, id: str) -> builtins.list[dict[str, Any]]:
        """Every saved version of a pipeline's definition."""
        payload = self._client.request("GET", f"/v1/pipelines/{id}/versions")
        return list(payload.get("items") or []) if isinstance(payload, dict) else []


class EventTriggers(_Resource):
    """Event triggers: start a pipeline when a matching event arrives."""

    def create(
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
        return self._send("POST", "/v1/event-triggers", EventTrigger, body)

    def get(self, trigger_id: str) -> EventTrigger:
        """One trigger by id."""
        return self._get(f"/v1/event-triggers/{trigger_id}", EventTrigger)

    def list(
        self,
        pipeline_id: str | None = None,
        event_type: str | None = None,
        enabled: bool | None = None,
    ) -> Pager[EventTrigger]:
        """Triggers, optionally only those of a pipeline, an event type or an enabled state."""
        return self._pager(
            "/v1/event-triggers",
            EventTrigger,
            pipeline_id=pipeline_id,
            event_type=event_type,
            enabled=enabled,
        )

    def update(
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
        return self._send("PATCH", f"/v1/event-triggers/{trigger_id}", EventTrigger, body)

    def enable(self, trigger_id: str) -> EventTrigger:
        """Turn a trigger on."""
        return self._send("POST", f"/v1/event-triggers/{trigger_id}/enable", EventTrigger)

    def disable(self, trigger_id: str) -> EventTrigger:
        """Turn a trigger off (it keeps its filter and statistics)."""
        return self._send("POST", f"/v1/event-triggers/{trigger_id}/disable", EventTrigger)

    def delete(self, trigger_id: str) -> None:
        """Delete a trigger."""
        self._delete(f"/v1/event-triggers/{trigger_id}")

    def test(self, trigger_id: str, event: dict[str, Any]) -> TriggerTest:
        """Explain whether an event would fire the trigger; fires nothing.

        ``event`` is an envelope or ``{"data": ...}``; a dict with neither ``data`` nor
        ``event_type`` is taken as the data itself.
        """
        return self._send(
            "POST",
            f"/v1/event-triggers/{trigger_id}/test",
            TriggerTest,
            {"event": trigger_test_event(event)},
        )

    def backtest(
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
            return self._send("POST", path, BacktestResult, compact(limit=limit))
        body = compact(event_type=event_type, filter=filter, limit=limit)
        return self._send("POST", "/v1/event-triggers/backtest", BacktestResult, body)

    def stats(self, trigger_id: str) -> TriggerStats:
        """Fire count, decisions by outcome, suppressions by reason, recent fire rate."""
        return self._get(f"/v1/event-triggers/{trigger_id}/stats", TriggerStats)


class Events(_Resource):
    """Events: publish them and see what they started."""

    def publish(
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
        return self._send("POST", "/v1/events", Event, body)

    def publish_many(self, events: builtins.list[dict[str, Any]]) -> builtins.list[Event]:
        """Publish a batch of envelope dicts in one request; the accepted events in order."""
        body = {"events": [envelope(e) for e in events]}
        result = self._send("POST", "/v1/events/batch", BatchResult, body)
        return result.events

    def get(self, event_id: str) -> Event:
        """One event with its ``decisions`` (one per candidate trigger) and ``executions``."""
        return self._get(f"/v1/events/{event_id}", Event)

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
    ) -> Pager[Event]:
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

    def replay(
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
        return self._send("POST", "/v1/events/replay", ReplayResult, body)


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
    ) -> Pager[Execution]:
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

    def get(self, id: str) -> Execution:
        """One execution with its steps."""
        return self._get(f"/v1/executions/{id}", Execution)

    def wait(self, id: str, timeout: float = 60, poll_interval: float = 0.2) -> Execution:
        """Poll until the execution is final; raises WaitTimeout (a TimeoutError) otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get(id)
            if execution.status in FINAL_STATUSES:
                return execution
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"execution {id} is still {execution.status} after {timeout:g}s",
                    details={"execution_id": id, "status": execution.status},
                )
            sleep(min(poll_interval, remaining))

    def cancel(self, id: str) -> Execution:
        """Cancel a running or queued execution (ConflictError when already final)."""
        return self._send("POST", f"/v1/executions/{id}/cancel", Execution)

    def retry(self, id: str, *, from_step: str | None = None) -> Execution:
        """Run a failed or cancelled execution's unfinished steps again.

        With ``from_step``, that step and every step downstream of it run again too, even
        if they succeeded (a succeeded execution can be re-run this way).
        """
        body = {"from_step": from_step} if from_step else None
        return self._send("POST", f"/v1/executions/{id}/retry", Execution, body)

    def attempts(self, id: str) -> builtins.list[Attempt]:
        """Every step attempt of an execution, with rendered params, outputs and errors."""
        return self._pager(f"/v1/executions/{id}/attempts", Attempt, paged=False).to_list()


class Actions(_Resource):
    """The action registry."""

    def list(self) -> Pager[Action]:
        """Every registered action."""
        return self._pager("/v1/actions", Action, paged=False)

    def get(self, name: str) -> Action:
        """One action by name, with its params schema and outputs."""
        return self._get(f"/v1/actions/{name}", Action)


class Models(_Resource):
    """Models in the built-in platform registry."""

    def add(self, name: str, source: str, uri: str | None = None, **metadata: Any) -> Model:
        """Register a model; emits ``model.added`` with the metadata in its data.

        A ``created_by`` keyword is the model's author rather than metadata.
        """
        created_by = metadata.pop("created_by", None)
        body = compact(name=name, source=source, uri=uri, created_by=created_by)
        body["metadata"] = metadata
        return self._send("POST", "/v1/models", Model, body)

    def get(self, id: str) -> Model:
        """One model by id."""
        return self._get(f"/v1/models/{id}", Model)

    def list(self) -> Pager[Model]:
        """Every model."""
        return self._pager("/v1/models", Model)

    def update(self, model_id: str, **changes: Any) -> Model:
        """Change a model's fields or metadata; emits ``model.updated``."""
        return self._send("PATCH", f"/v1/models/{model_id}", Model, {"changes": changes})

    def delete(self, model_id: str) -> None:
        """Delete a model."""
        self._delete(f"/v1/models/{model_id}")


class Clusters(_Resource):
    """Clusters in the built-in platform registry."""

    def create(
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
        return self._send("POST", "/v1/clusters", Cluster, body)

    def get(self, id: str) -> Cluster:
        """One cluster by id."""
        return self._get(f"/v1/clusters/{id}", Cluster)

    def list(self) -> Pager[Cluster]:
        """Every cluster."""
        return self._pager("/v1/clusters", Cluster)

    def update(
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
        return self._send("PATCH", f"/v1/clusters/{cluster_id}", Cluster, body)

    def delete(self, cluster_id: str) -> None:
        """Delete a cluster."""
        self._delete(f"/v1/clusters/{cluster_id}")


class Deployments(_Resource):
    """Deployments of models on clusters in the built-in platform."""

    def create(self, model_id: str, cluster_id: str, deployment_name: str) -> Deployment:
        """Deploy a model; emits ``deployment.created`` or ``deployment.failed``."""
        body = {"model_id": model_id, "cluster_id": cluster_id, "deployment_name": deployment_name}
        return self._send("POST", "/v1/deployments", Deployment, body)

    def get(self, id: str) -> Deployment:
        """One deployment by id."""
        return self._get(f"/v1/deployments/{id}", Deployment)

    def list(
        self, model_id: str | None = None, cluster_id: str | None = None, status: str | None = None
    ) -> Pager[Deployment]:
        """Deployments, optionally filtered."""
        return self._pager(
            "/v1/deployments", Deployment, model_id=model_id, cluster_id=cluster_id, status=status
        )

    def update(
        self, deployment_id: str, status: str | None = None, error_message: str | None = None
    ) -> Deployment:
        """Change status; ``failed`` emits ``deployment.failed`` with the error message."""
        body = compact(status=status, error_message=error_message)
        return self._send("PATCH", f"/v1/deployments/{deployment_id}", Deployment, body)

    def revisions(self, deployment_id: str) -> builtins.list[DeploymentRevision]:
        """A deployment's revisions, oldest first (``good``: it ran successfully)."""
        payload = self._client.request("GET", f"/v1/deployments/{deployment_id}/revisions")
        return [DeploymentRevision.model_validate(r) for r in payload["items"]]

    def delete(self, deployment_id: str) -> None:
        """Delete a deployment."""
        self._delete(f"/v1/deployments/{deployment_id}")


class Monitors(_Resource):
    """The monitoring configured for deployments by the ``monitoring_configure`` action."""

    def list(
        self, deployment_id: str | None = None, cluster_id: str | None = None
    ) -> Pager[Monitor]:
        """Monitors, optionally of one deployment or cluster."""
        return self._pager(
            "/v1/monitors", Monitor, deployment_id=deployment_id, cluster_id=cluster_id
        )

    def get(self, id: str) -> Monitor:
        """One monitor by id."""
        return self._get(f"/v1/monitors/{id}", Monitor)


class EventTypes(_Resource):
    """The event type catalog: the built-in platform types and registered custom ones."""

    def list(self) -> Pager[EventType]:
        """Every event type."""
        return self._pager("/v1/event-types", EventType)

    def get(self, name: str) -> EventType:
        """One event type by name, with its data schema."""
        return self._get(f"/v1/event-types/{name}", EventType)

    def register(
        self,
        name: str,
        description: str = "",
        schema: dict[str, Any] | None = None,
        example: dict[str, Any] | None = None,
    ) -> EventType:
        """Register a custom event type, optionally with a JSON Schema for its data."""
        body = compact(name=name, description=description, schema=schema, example=example)
        return self._send("POST", "/v1/event-types", EventType, body)


class Channels(_Resource):
    """Notification channels (slack, webhook, email)."""

    def list(self) -> Pager[Channel]:
        """Every configured channel (secrets in URLs masked)."""
        return self._pager("/v1/channels", Channel, paged=False)

    def set(self, name: str, **config: Any) -> Channel:
        """Configure a channel: ``url=`` (slack, webhook), ``smtp_url=`` and ``from_=`` (email)."""
        if "from_" in config:
            config["from"] = config.pop("from_")
        return self._send("PUT", f"/v1/channels/{name}", Channel, config)

    def delete(self, name: str) -> None:
        """Remove a channel configured through the API."""
        self._delete(f"/v1/channels/{name}")


class Secrets(_Resource):
    """Secrets usable in templates as ``{{ secrets.name }}`` (values are never returned)."""

    def list(self) -> Pager[Secret]:
        """Every secret's name."""
        return self._pager("/v1/secrets", Secret, paged=False)

    def set(self, name: str, value: str) -> Secret:
        """Create or replace a secret."""
        return self._send("PUT", f"/v1/secrets/{name}", Secret, {"value": value})

    def delete(self, name: str) -> None:
        """Delete a secret."""
        self._delete(f"/v1/secrets/{name}")


class Deliveries(_Resource):
    """The record of every notification delivery attempt."""

    def list(self, execution_id: str | None = None, channel: str | None = None) -> Pager[Delivery]:
        """Deliveries, optionally of one execution or channel."""
        return self._pager("/v1/deliveries", Delivery, execution_id=execution_id, channel=channel)


class Hooks(_Resource):
    """Inbound webhooks: a signed POST to a hook's URL becomes an event of its type."""

    def create(
        self,
        event_type: str,
        name: str | None = None,
        schema: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> Hook:
        """Create a hook for a custom event type (registered now when new, with ``schema``);
        the answer's ``secret`` is shown this once."""
        body = compact(event_type=event_type, name=name, schema=schema, description=description)
        return self._send("POST", "/v1/hooks", Hook, body)

    def list(self) -> Pager[Hook]:
        """Every hook (never their secrets)."""
        return self._pager("/v1/hooks", Hook, paged=False)

    def get(self, hook_id: str) -> Hook:
        """One hook by id."""
        return self._get(f"/v1/hooks/{hook_id}", Hook)

    def delete(self, hook_id: str) -> None:
        """Delete a hook; its deliveries are refused from now on."""
        self._delete(f"/v1/hooks/{hook_id}")

    def deliver(
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
        answer = self._client.request("POST", f"/v1/hooks/{hook_id}", content=body, headers=headers)
        return HookDelivery.model_validate(answer)


class BudClient:
    """A synchronous client for a Bud Pipelines server.

    ``base_url`` defaults to ``BUD_URL`` (else ``http://127.0.0.1:8010``) and ``api_key`` to
    ``BUD_API_KEY``. ``transport`` (an httpx transport, e.g. ``httpx.MockTransport(handler)``)
    or ``http_client`` (an ``httpx.Client``) route requests elsewhere, e.g. to an app in
    process in tests; a client you pass in is not closed by :meth:`close`. ``list()`` methods
    return a pager, :class:`Pager`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        if base_url is None and http_client is not None and str(http_client.base_url):
            base_url = str(http_client.base_url)
        self.base_url = resolve_base_url(base_url)
        self.api_key = resolve_api_key(api_key)
        self.timeout = timeout
        self._headers = auth_headers(self.api_key)
        if http_client is None:
            self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
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

    def request(
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
            response = self._http.request(method, self._prefix + path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(self.base_url, exc) from exc
        if not response.is_success:
            raise error_from_response(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def health(self) -> dict[str, Any]:
        """The server's ``/healthz`` answer."""
        payload = self.request("GET", "/healthz")
        return dict(payload) if isinstance(payload, dict) else {"status": payload}

    def close(self) -> None:
        """Close the connection pool (not an ``http_client`` passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BudClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BudClient(base_url={self.base_url!r})"
