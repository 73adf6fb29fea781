"""The API's resource shapes, shared by the server (responses) and the SDK (objects).

One copy of each schema: the server validates what it returns against these models and the
SDK parses the same JSON into them, so ``trigger.id`` and ``trigger.event_type`` are typed.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Resource(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = None


class Items(BaseModel, Generic[T]):
    """A whole list in one answer (short lists that are never paged)."""

    items: list[T]


class ErrorBody(BaseModel):
    code: str = Field(description="machine-readable, e.g. not_found, validation_error")
    message: str = Field(description="names the problem and where it is")
    details: dict[str, Any] = Field(
        default_factory=dict, description="e.g. {'path': 'steps[1].depends_on'}"
    )


class ErrorResponse(BaseModel):
    """Every error the server answers: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorBody


class Health(Resource):
    status: str
    store: str
    triggers: int
    worker: str | None = None


class EventType(Resource):
    name: str
    description: str = ""
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    builtin: bool = False
    example: dict[str, Any] = Field(default_factory=dict)


class Decision(Resource):
    trigger_id: str
    pipeline_id: str | None = None
    outcome: str  # fired | filtered | disabled | suppressed | debounced | would_fire | error
    reason_code: str | None = None
    reason: str | None = None
    detail: dict[str, Any] | None = None
    execution_id: str | None = None
    created_at: str | None = None


class Event(Resource):
    event_type: str
    event_id: str
    timestamp: str
    source: str
    data: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = None
    causation_id: str | None = None
    depth: int = 0
    test: bool = False
    received_at: str | None = None
    duplicate: bool = False
    fired_count: int | None = None
    candidate_count: int | None = None
    decisions: list[Decision] | None = None
    executions: list[str] | None = None


class BatchResult(Resource):
    events: list[Event]
    accepted: int
    duplicates: int


class Pipeline(Resource):
    id: str
    name: str
    description: str | None = None
    version: int
    definition: dict[str, Any]
    created_at: str
    updated_at: str
    trigger_count: int | None = None
    last_execution: dict[str, Any] | None = None
    # After an update: template references the triggers' event types lack, per trigger.
    warnings: list[str] = Field(default_factory=list)


class PipelineVersion(Resource):
    pipeline_id: str
    version: int
    name: str
    definition: dict[str, Any]
    created_at: str


class ValidationResult(Resource):
    valid: bool
    errors: list[dict[str, Any]] = Field(default_factory=list)
    definition: dict[str, Any] | None = None


class EventTrigger(Resource):
    id: str
    pipeline_id: str
    event_type: str
    filter: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    name: str | None = None
    description: str | None = None
    created_at: str
    updated_at: str
    fire_count: int = 0
    last_fired_at: str | None = None
    flow: dict[str, Any] | None = None
    tripped_at: str | None = None
    tripped_reason: str | None = None
    warnings: list[str] = Field(default_factory=list)
    kind: str = Field("event", description="event | schedule")
    schedule: dict[str, Any] | None = Field(
        None,
        description='a schedule trigger: {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"} '
        'or {"interval_seconds": 300}',
    )
    next_run_at: str | None = Field(None, description="schedule triggers: the next tick due")
    last_tick_at: str | None = Field(None, description="the scheduled time of the last tick fired")
    skipped_ticks: int | None = Field(None, description="missed ticks skipped after downtime")


class Hook(Resource):
    id: str
    name: str | None = None
    event_type: str
    url: str = Field(description="where to send deliveries: POST with X-Hub-Signature-256")
    created_at: str
    secret: str | None = Field(
        None, description="the HMAC secret: answered once, when the hook is created"
    )


class HookDelivery(Resource):
    hook_id: str
    event_id: str
    event_type: str
    duplicate: bool = False
    fired_count: int | None = None
    executions: list[str] | None = None


class TriggerTest(Resource):
    trigger_id: str
    matched: bool
    enabled: bool
    would_fire: bool
    summary: str
    verdict: dict[str, Any]
    # The test event's mismatches with its type's schema (the test still answers).
    warnings: list[str] = Field(default_factory=list)


class DryRunStep(Resource):
    step_id: str
    action: str
    params: Any = None  # rendered, secrets masked; None when rendering failed
    error: str | None = None
    condition: Any = None
    would_skip: bool = False
    depends_on: list[str] = Field(default_factory=list)
    # A for_each step: the items its for_each renders to (params shown for the first one).
    items: list[Any] | None = None


class DryRunResult(Resource):
    pipeline_id: str
    version: int
    steps: list[DryRunStep]
    # The event's mismatches with its type's schema (the dry run still renders).
    warnings: list[str] = Field(default_factory=list)


class BacktestResult(Resource):
    event_type: str
    trigger_id: str | None = None
    scanned: int
    matched: int
    examples: list[dict[str, Any]] = Field(default_factory=list)
    near_misses: list[dict[str, Any]] = Field(default_factory=list)


class TriggerStats(Resource):
    trigger_id: str
    fire_count: int = 0
    last_fired_at: str | None = None
    decisions: dict[str, int] = Field(default_factory=dict)
    suppressed: dict[str, int] = Field(default_factory=dict)
    rate: dict[str, int] = Field(default_factory=dict)


class ReplayDecision(Decision):
    event_id: str


class ReplayResult(Resource):
    events: int
    fired: int
    executions: list[str] = Field(default_factory=list)
    decisions: list[ReplayDecision] = Field(default_factory=list)


class StepItem(Resource):
    index: int
    step_id: str
    status: str
    attempts: int = 0
    outputs: dict[str, Any] | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Step(Resource):
    step_id: str
    action: str
    status: str
    attempts: int = 0
    params: Any = None
    outputs: dict[str, Any] | None = None
    logs: list[dict[str, Any]] | None = None
    error: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    waiting_until: str | None = None  # a step in a durable wait (a long delay): when it resumes
    # A for_each step's items, in item order (docs/workflows.md).
    items: list[StepItem] | None = None


class Execution(Resource):
    id: str
    pipeline_id: str
    pipeline_version: int
    trigger_id: str | None = None
    event_id: str | None = None
    origin: str = "trigger"
    status: str
    params: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    steps: list[Step] | None = None

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


class Attempt(Resource):
    execution_id: str
    step_id: str
    attempt: int
    status: str
    params: Any = None
    outputs: dict[str, Any] | None = None
    logs: list[dict[str, Any]] | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Delivery(Resource):
    execution_id: str | None = None
    step_id: str | None = None
    attempt: int | None = None
    channel: str
    target: str | None = None
    status: str
    status_code: int | None = None
    error: str | None = None
    message: str | None = None
    created_at: str


class Action(Resource):
    name: str
    description: str = ""
    params_schema: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float
    retry: dict[str, Any]
    idempotent: bool


class Model(Resource):
    id: str
    name: str
    source: str
    uri: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_by: str | None = None
    created_at: str
    updated_at: str


class Cluster(Resource):
    id: str
    name: str
    environment: str | None = None
    status: str
    reason: str | None = None
    health_url: str | None = None
    created_at: str
    updated_at: str


class Deployment(Resource):
    id: str
    name: str
    model_id: str
    cluster_id: str
    status: str
    error_message: str | None = None
    created_at: str
    updated_at: str


class DeploymentRevision(Resource):
    """One revision of a deployment: what it ran and whether that worked (``good``)."""

    id: str
    deployment_id: str
    revision: int
    model_version: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    status: str
    good: bool
    reason: str
    source_revision: int | None = None
    error_message: str | None = None
    created_at: str
    updated_at: str


class Monitor(Resource):
    """The monitoring configured for a deployment (by ``monitoring_configure``)."""

    id: str
    deployment_id: str
    cluster_id: str
    environment: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    configured_by: str | None = None
    created_at: str
    updated_at: str


class Channel(Resource):
    name: str
    config: dict[str, Any]
    source: str = "api"  # api | settings


class Secret(Resource):
    name: str
    updated_at: str | None = None


class DemoAck(Resource):
    ok: bool


class IngestError(Resource):
    """A publish the server refused (the ingest error log)."""

    created_at: str | None = None
    source: str | None = None
    event_type: str | None = None
    status_code: int
    code: str
    error: str
    path: str | None = None
    body: str | None = None
    body_truncated: bool = False


class TriggerCheck(Resource):
    """An unsaved trigger checked: every error at once, warnings, and an optional test."""

    valid: bool
    errors: list[dict[str, Any]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    test: dict[str, Any] | None = None


class ApiKey(Resource):
    id: str
    name: str | None = None
    scope: str
    prefix: str
    created_at: str | None = None
    revoked_at: str | None = None
    revoked: bool = False


class ApiKeyCreated(ApiKey):
    key: str  # shown once, here
