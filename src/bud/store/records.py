"""What crosses the repository boundary: status enums and typed records.

Records are ``TypedDict``s: plain dicts at run time (the step hot path builds thousands a
second, and services hand them straight to JSON), typed for mypy at every boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple, TypedDict

Row = dict[str, Any]


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL_EXECUTION


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


FINAL_EXECUTION = frozenset(
    {ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
OPEN_EXECUTION = (ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)
FINAL_STEP = frozenset(
    {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
)
OPEN_STEPS = (StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING)
WAIT_KEY = "__wait__"  # a waiting step's outputs hold its timer's state under this key
HELD = 1e18  # ready_at of a held execution's first steps: never due until released


class ChangeKind(StrEnum):
    """What a catalogue change names: a process's cached copy reloads that item."""

    TRIGGER = "trigger"
    EVENT_TYPE = "event_type"
    PIPELINE = "pipeline"
    CONFIG = "config"  # channels and secrets


class Change(NamedTuple):
    seq: int
    kind: str
    key: str


class EventRecord(TypedDict, total=False):
    seq: int
    event_id: str
    event_type: str
    source: str
    timestamp: str
    received_at: float
    data: dict[str, Any]
    correlation_id: str | None
    causation_id: str | None
    depth: int
    test: bool
    fired_count: int
    candidate_count: int
    filtered: list[str] | None  # triggers whose filter did not match, explained on read


class DecisionRecord(TypedDict, total=False):
    event_id: str
    trigger_id: str
    pipeline_id: str | None
    outcome: str
    reason_code: str | None
    reason: str
    detail: dict[str, Any] | None
    execution_id: str | None
    created_at: float


class TriggerRecord(TypedDict, total=False):
    id: str
    pipeline_id: str
    event_type: str
    name: str | None
    description: str | None
    filter: dict[str, Any]
    enabled: bool
    created_at: float
    updated_at: float
    fire_count: int
    last_fired_at: float | None
    flow: dict[str, Any] | None
    tripped_at: float | None
    tripped_reason: str | None
    schedule: dict[str, Any] | None  # a schedule trigger (event_type schedule.tick)


class PipelineRecord(TypedDict, total=False):
    id: str
    name: str
    description: str | None
    version: int
    definition: dict[str, Any]
    created_at: float
    updated_at: float


class ExecutionRecord(TypedDict, total=False):
    id: str
    pipeline_id: str
    pipeline_version: int
    trigger_id: str | None
    event_id: str | None
    origin: str
    status: str
    params: dict[str, Any]
    event: dict[str, Any] | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    deadline_at: float | None
    max_parallel: int | None
    parent_key: str | None
    delivery: int
    concurrency_key: str | None
    held: bool
    retry_count: int


class StepRecord(TypedDict, total=False):
    execution_id: str
    step_id: str
    position: int
    action: str
    status: str
    attempts: int
    max_attempts: int | None
    attempt_base: int  # attempts before the last retry of the execution
    params: Any
    outputs: dict[str, Any] | None
    logs: list[dict[str, Any]] | None
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    ready_at: float | None
    lease_owner: str | None
    lease_expires_at: float | None
    pipeline_id: str  # on claimed steps only: their execution's pipeline


LIFECYCLE_EVENT_FIELDS = ("event_type", "depth", "correlation_id")
LIFECYCLE_FIELDS = (
    "id",
    "pipeline_id",
    "pipeline_version",
    "trigger_id",
    "event_id",
    "status",
    "error",
    "started_at",
    "finished_at",
    "retry_count",
)


def lifecycle_snapshot(execution: ExecutionRecord) -> dict[str, Any]:
    """What a lifecycle note keeps of an execution: its fields as it ended, and of its event
    the type, depth and correlation id."""
    out: dict[str, Any] = {k: execution.get(k) for k in LIFECYCLE_FIELDS}
    event = execution.get("event") or {}
    out["event"] = {k: event.get(k) for k in LIFECYCLE_EVENT_FIELDS}
    return out


class AttemptRecord(TypedDict, total=False):
    execution_id: str
    step_id: str
    attempt: int
    status: str
    params: Any
    outputs: dict[str, Any] | None
    logs: list[dict[str, Any]] | None
    error: str | None
    worker: str | None
    started_at: float
    finished_at: float | None


@dataclass
class IngestBatch:
    """Everything one ingest transaction writes: events with their decisions and executions."""

    events: list[EventRecord] = field(default_factory=list)
    decisions: list[DecisionRecord] = field(default_factory=list)
    executions: list[ExecutionRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    fires: dict[str, int] = field(default_factory=dict)  # trigger id -> executions started


class TriggerStats(TypedDict):
    fire_count: int
    last_fired_at: float | None
    decisions: dict[str, int]
    suppressed: dict[str, int]
    rate: dict[str, int]
