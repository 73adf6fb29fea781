"""Lifecycle events: ``execution.succeeded``, ``execution.failed``, ``execution.cancelled``.

Where an execution ends (``scheduler.advance`` and ``scheduler.close_execution``, inside the
transaction that ends it) the store gets a note in its outbox (``Session.queue_lifecycle``)
with the execution as it ended, so a retry started before the note is taken changes nothing.
The :class:`Emitter` takes notes and ingests their events in one transaction: the note goes
when its event is stored, so a crash between the two loses nothing and stores nothing twice.
The events are real events: stored, matched, and starting pipelines like any other, under
the same chain-depth guard and circuit breaker. Their depth is the finished execution's
event depth plus one, so a trigger on ``execution.failed`` whose pipeline fails stops at
``max_chain_depth``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bud.engine.ingest import Ingestor
from bud.engine.records import derived_event_id
from bud.errors import BudError
from bud.store import Repository
from bud.timeutil import to_iso

__all__ = ["LIFECYCLE_TYPES", "Emitter", "lifecycle_data", "lifecycle_envelope"]

LIFECYCLE_TYPES = ("execution.succeeded", "execution.failed", "execution.cancelled")
BATCH = 100
MAX_BATCHES = 20  # per sweep: what is left waits for the next one (about a second later)
log = logging.getLogger("bud.engine")


ERROR_CHARS = 4000  # a longer error is cut: the event stays within the event size limit


def _clip(error: str | None) -> str | None:
    if error is None or len(error) <= ERROR_CHARS:
        return error
    return error[:ERROR_CHARS] + "... (cut)"


def lifecycle_data(row: Mapping[str, Any], pipeline_name: str | None) -> dict[str, Any]:
    """The ``data`` of an execution's lifecycle event (the NATS egress sends the same)."""
    started, finished = row.get("started_at"), row.get("finished_at")
    event = row.get("event") or {}
    return {
        "execution_id": row["id"],
        "pipeline_id": row["pipeline_id"],
        "pipeline_name": pipeline_name,
        "pipeline_version": row["pipeline_version"],
        "trigger_id": row.get("trigger_id"),
        "event_id": row.get("event_id"),
        "event_type": event.get("event_type"),
        "status": row["status"],
        "error": _clip(row.get("error")),
        "duration_seconds": round(finished - started, 6) if started and finished else None,
        "started_at": to_iso(started),
        "finished_at": to_iso(finished),
    }


def lifecycle_envelope(row: Mapping[str, Any], pipeline_name: str | None) -> dict[str, Any]:
    """The event of a finished execution: caused by it, one level deeper than its event."""
    event = row.get("event") or {}
    status = row["status"]
    event_type = f"execution.{status}"
    envelope: dict[str, Any] = {
        "event_type": event_type,
        "event_id": derived_event_id(f"{row['id']}:{row.get('retry_count', 0)}", event_type),
        "source": "bud",
        "data": lifecycle_data(row, pipeline_name),
        "depth": int(event.get("depth") or 0) + 1,
        "causation_id": row["id"],  # like events that actions emit: the execution
    }
    if event.get("correlation_id"):
        envelope["correlation_id"] = event["correlation_id"]
    if row.get("finished_at"):
        envelope["timestamp"] = to_iso(row["finished_at"])
    return envelope


class Emitter:
    """Turns the outbox's notes into lifecycle events (called by the sweeper)."""

    def __init__(self, repo: Repository, ingestor: Ingestor) -> None:
        self.repo = repo
        self.ingestor = ingestor

    async def emit(self) -> int:
        """Ingest the events of the executions that ended; return how many."""
        total = 0
        for _ in range(MAX_BATCHES):  # the sweeper's other timers get their turn too
            async with self.repo.transaction() as session:
                notes = await session.take_lifecycle(BATCH)
                if not notes:
                    break
                envelopes = []
                names: dict[str, str | None] = {}
                for note in notes:
                    row = note["execution"]  # as it ended, even if retried since
                    pipeline_id = row["pipeline_id"]
                    if pipeline_id not in names:
                        pipeline = await session.get_pipeline(pipeline_id)
                        names[pipeline_id] = pipeline["name"] if pipeline else None
                    envelopes.append(lifecycle_envelope(row, names[pipeline_id]))
                normalized = []
                for envelope in envelopes:
                    try:
                        normalized += self.ingestor.normalize([envelope], default_source="bud")
                    except BudError as exc:  # never blocks the outbox: logged and dropped
                        log.error(
                            "lifecycle event of execution %s refused: %s",
                            envelope["data"]["execution_id"],
                            exc.message,
                        )
                tripped = bool(normalized) and await self.ingestor.ingest_in(session, normalized)
            if tripped:
                await self.ingestor.catalogue.refresh()
            total += len(envelopes)
            if len(notes) < BATCH:
                break
        if total:
            self.ingestor.signals.wake()
        return total
