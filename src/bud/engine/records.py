"""Rows and ids the engine's parts share."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from bud.ids import new_id
from bud.pipelines import PipelineDef
from bud.store.records import ExecutionRecord, ExecutionStatus

ENVELOPE_KEYS = (
    "event_type",
    "event_id",
    "timestamp",
    "source",
    "data",
    "correlation_id",
    "causation_id",
    "depth",
    "test",
)


def envelope_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope of a stored event."""
    return {k: row[k] for k in ENVELOPE_KEYS}


def derived_event_id(key: str, event_type: str) -> str:
    """A deterministic id for an event an action emits, so a re-run step emits it once."""
    return "evt_" + hashlib.sha256(f"{key}|{event_type}".encode()).hexdigest()[:26]


def execution_row(
    pipeline: Mapping[str, Any],
    definition: PipelineDef,
    *,
    origin: str,
    trigger_id: str | None,
    event: dict[str, Any] | None,
    params: Mapping[str, Any],
    now: float,
    parent_key: str | None = None,
) -> ExecutionRecord:
    return {
        "id": new_id("exe"),
        "pipeline_id": pipeline["id"],
        "pipeline_version": pipeline["version"],
        "trigger_id": trigger_id,
        "event_id": event["event_id"] if event else None,
        "origin": origin,
        "status": ExecutionStatus.QUEUED,
        "params": {**definition.parameters, **params},
        "event": event,
        "error": None,
        "created_at": now,
        "started_at": None,
        "finished_at": None,
        "deadline_at": None,
        "max_parallel": definition.max_parallel_steps,
        "parent_key": parent_key,
        "delivery": 0,
        "concurrency_key": None,
        "held": False,
        "retry_count": 0,
    }
