"""Executions: list, get with steps, attempts, cancel, retry, deliveries."""

from __future__ import annotations

from typing import Any

from bud.engine.core import Engine
from bud.engine.status import ExecutionStatus
from bud.errors import NotFoundError, ValidationError
from bud.services.common import check_choice, check_limit, decode_cursor, iso_times, page, strip
from bud.store import schema as t
from bud.timeutil import parse_iso

TIMES = ("created_at", "started_at", "finished_at")
HIDDEN = ("event", "deadline_at", "max_parallel", "parent_key")
STEP_HIDDEN = ("execution_id", "position", "ready_at", "lease_owner", "lease_expires_at")


class ExecutionService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    async def get(self, execution_id: str) -> dict[str, Any]:
        async with self.store.read() as tx:
            row = await tx.get(t.executions, id=execution_id)
            if row is None:
                raise NotFoundError(
                    f"execution {execution_id} not found", details={"execution_id": execution_id}
                )
            steps = await tx.list(
                t.steps,
                where=[t.steps.c.execution_id == execution_id],
                order="position",
                descending=False,
            )
            definition = await self.engine.definition(
                tx, row["pipeline_id"], row["pipeline_version"]
            )
        out = strip(iso_times(row, *TIMES), HIDDEN)
        out["steps"] = []
        for s in steps:
            step = strip(iso_times(s, *TIMES), STEP_HIDDEN)
            step["depends_on"] = list(definition.step(s["step_id"]).depends_on)
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
        where = []
        for name, value, op in (("since", since, ">="), ("until", until, "<")):
            if value:
                try:
                    moment = parse_iso(value)
                except ValueError as exc:
                    raise ValidationError(
                        f"{name}: {value!r} is not an ISO 8601 time", details={"path": name}
                    ) from exc
                column = t.executions.c.created_at
                where.append(column >= moment if op == ">=" else column < moment)
        if pipeline_id:
            where.append(t.executions.c.pipeline_id == pipeline_id)
        if trigger_id:
            where.append(t.executions.c.trigger_id == trigger_id)
        if event_id:
            where.append(t.executions.c.event_id == event_id)
        if status:
            check_choice(status, [s.value for s in ExecutionStatus], "status")  # helper:hardening
            where.append(t.executions.c.status == status)
        async with self.store.read() as tx:
            rows = await tx.list(
                t.executions, where=where, limit=limit + 1, after=decode_cursor(cursor)
            )
        return page([strip(iso_times(r, *TIMES), HIDDEN) for r in rows], limit, "id")

    async def attempts(self, execution_id: str) -> dict[str, Any]:
        async with self.store.read() as tx:
            if await tx.get(t.executions, id=execution_id) is None:
                raise NotFoundError(f"execution {execution_id} not found")
            rows = await tx.list(
                t.attempts,
                where=[t.attempts.c.execution_id == execution_id],
                order="seq",
                descending=False,
            )
        return {
            "items": [
                strip(iso_times(r, "started_at", "finished_at"), ("seq", "worker")) for r in rows
            ]
        }

    async def cancel(self, execution_id: str) -> dict[str, Any]:
        await self.engine.cancel(execution_id)
        return await self.get(execution_id)

    async def retry(self, execution_id: str) -> dict[str, Any]:
        await self.engine.retry(execution_id)
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
        where = []
        if execution_id:
            where.append(t.deliveries.c.execution_id == execution_id)
        if channel:
            where.append(t.deliveries.c.channel == channel)
        async with self.store.read() as tx:
            rows = await tx.list(
                t.deliveries,
                where=where,
                order="seq",
                limit=limit + 1,
                after=decode_cursor(cursor, int),
            )
        result = page(rows, limit, "seq")
        result["items"] = [strip(iso_times(r, "created_at"), ("seq",)) for r in result["items"]]
        return result
