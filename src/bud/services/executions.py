"""Executions: list, get with steps, attempts, cancel, retry, deliveries."""

from __future__ import annotations

from typing import Any

from bud.engine import fanout
from bud.engine.core import Engine
from bud.errors import NotFoundError, ValidationError
from bud.services.common import check_choice, check_limit, decode_cursor, iso_times, page, strip
from bud.store.records import ExecutionStatus, StepStatus
from bud.timeutil import parse_iso, to_iso

TIMES = ("created_at", "started_at", "finished_at")
HIDDEN = ("event", "deadline_at", "max_parallel", "parent_key")
STEP_HIDDEN = (
    "execution_id",
    "position",
    "ready_at",
    "lease_owner",
    "lease_expires_at",
    "max_attempts",
    "attempt_base",
)


def _stored_steps(version: Any) -> list[dict[str, Any]]:
    steps = ((version or {}).get("definition") or {}).get("steps", [])
    return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []


class ExecutionService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.repo = engine.repo

    async def get(self, execution_id: str) -> dict[str, Any]:
        async with self.repo.read() as session:
            row = await session.get_execution(execution_id)
            if row is None:
                raise NotFoundError(
                    f"execution {execution_id} not found", details={"execution_id": execution_id}
                )
            steps = await session.steps_of(execution_id)
            version = await session.get_pipeline_version(
                row["pipeline_id"], row["pipeline_version"]
            )
        # Read the stored definition as it is: it names the dependencies even when an action
        # it uses is no longer registered (its execution then fails, and must still be shown).
        depends = {s.get("id"): list(s.get("depends_on") or []) for s in _stored_steps(version)}
        out = strip(iso_times(row, *TIMES), HIDDEN)
        out["steps"] = []
        fanned = {s.get("id") for s in _stored_steps(version) if s.get("for_each") is not None}
        for s in steps:
            if fanout.is_item(s["step_id"]):
                continue  # shown under its step's items
            step = strip(iso_times(s, *TIMES), STEP_HIDDEN)
            step["depends_on"] = depends.get(s["step_id"], [])
            if s["status"] == StepStatus.WAITING:  # a durable wait: when it resumes
                step["outputs"] = {}
                until = s["ready_at"]
                step["waiting_until"] = to_iso(until) if until and until < fanout.NEVER else None
            if s["step_id"] in fanned:
                step["items"] = [
                    iso_times(i, "started_at", "finished_at")
                    for i in fanout.item_views(s["step_id"], steps)
                ]
            out["steps"].append(step)
        return out

    async def list(
        self,
        *,
        pipeline_id: str | None = None,
        trigger_id: str | None = None,
        event_id: str | None = None,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        limit = check_limit(limit)
        moments: dict[str, float | None] = {}
        for name, value in (("since", since), ("until", until)):
            moments[name] = None
            if value:
                try:
                    moments[name] = parse_iso(value)
                except ValueError as exc:
                    raise ValidationError(
                        f"{name}: {value!r} is not an ISO 8601 time", details={"path": name}
                    ) from exc
        if status:
            check_choice(status, [s.value for s in ExecutionStatus], "status")
        async with self.repo.read() as session:
            rows = await session.list_executions(
                pipeline_id=pipeline_id,
                trigger_id=trigger_id,
                event_id=event_id,
                status=status,
                since=moments["since"],
                until=moments["until"],
                limit=limit + 1,
                after=decode_cursor(cursor),
            )
        return page([strip(iso_times(r, *TIMES), HIDDEN) for r in rows], limit, "id")

    async def attempts(self, execution_id: str) -> dict[str, Any]:
        async with self.repo.read() as session:
            if await session.get_execution(execution_id) is None:
                raise NotFoundError(f"execution {execution_id} not found")
            rows = await session.attempts_of(execution_id)
        return {
            "items": [
                strip(iso_times(r, "started_at", "finished_at"), ("seq", "worker")) for r in rows
            ]
        }

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        await self.engine.cancel(execution_id)
        return await self.get(execution_id)

    async def retry(self, execution_id: str, *, from_step: str | None = None) -> dict[str, Any]:
        await self.engine.retry(execution_id, from_step=from_step)
        return await self.get(execution_id)

    async def deliveries(
        self,
        *,
        execution_id: str | None = None,
        channel: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        limit = check_limit(limit)
        async with self.repo.read() as session:
            rows = await session.list_deliveries(
                execution_id=execution_id,
                channel=channel,
                limit=limit + 1,
                after=decode_cursor(cursor, int),
            )
        result = page(rows, limit, "seq")
        result["items"] = [strip(iso_times(r, "created_at"), ("seq",)) for r in result["items"]]
        return result
