"""Pipelines: create, version, validate, run, delete (with their triggers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bud.engine.core import Engine
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.ids import new_id
from bud.pipelines import definition_to_dict, parse_definition
from bud.services.common import check_chosen_id, check_limit, decode_cursor, iso_times, page
from bud.services.triggers import TriggerService
from bud.store import schema as t
from bud.timeutil import now as _now


def _out(
    row: dict[str, Any], trigger_count: int | None = None, last: dict[str, Any] | None = None
) -> dict[str, Any]:
    out = iso_times(row, "created_at", "updated_at")
    out["trigger_count"] = trigger_count
    out["last_execution"] = last
    return out


def run_inputs(
    engine: Engine, params: Any, event: Any, *, source: str
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Check a manual run's params and event (the event is validated, never stored)."""
    if params is not None and not isinstance(params, dict):
        raise ValidationError("params must be a JSON object", details={"path": "params"})
    envelope = None
    if event is not None:
        if isinstance(event, dict) and "event_type" not in event:
            raise ValidationError(
                "event.event_type is required", details={"path": "event.event_type"}
            )
        envelope = engine.normalize([event], default_source=source)[0]
    return params or {}, envelope


class PipelineService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    def validate(self, definition: Any) -> dict[str, Any]:
        try:
            parsed = parse_definition(definition, self.engine.registry)
        except ValidationError as exc:
            return {
                "valid": False,
                "errors": exc.details.get("errors")
                or [{"path": exc.details.get("path", ""), "message": exc.message}],
            }
        return {"valid": True, "errors": [], "definition": definition_to_dict(parsed)}

    @staticmethod
    def _check_name(name: Any) -> str:
        if not isinstance(name, str) or not name.strip():
            raise ValidationError(
                "name: a pipeline needs a non-empty name", details={"path": "name"}
            )
        if len(name) > 256:
            raise ValidationError("name: at most 256 characters", details={"path": "name"})
        return name.strip()

    async def create(
        self,
        name: Any,
        definition: Any,
        description: str | None = None,
        pipeline_id: str | None = None,
    ) -> dict[str, Any]:
        name = self._check_name(name)
        check_chosen_id(pipeline_id, "id")
        parse_definition(definition, self.engine.registry)
        now = _now()
        row = {
            "id": pipeline_id or new_id("pipe"),
            "name": name,
            "description": description,
            "version": 1,
            "definition": definition,
            "created_at": now,
            "updated_at": now,
        }
        async with self.store.transaction() as tx:
            if pipeline_id and await tx.get(t.pipelines, id=pipeline_id):
                raise ConflictError(
                    f"id: pipeline {pipeline_id} already exists", details={"path": "id"}
                )
            await tx.insert(t.pipelines, row)
            await tx.insert(
                t.pipeline_versions,
                {
                    "pipeline_id": row["id"],
                    "version": 1,
                    "name": name,
                    "definition": definition,
                    "created_at": now,
                },
            )
        return _out(row, 0, None)

    async def _get_row(self, tx: Any, pipeline_id: str) -> dict[str, Any]:
        row: dict[str, Any] | None = await tx.get(t.pipelines, id=pipeline_id)
        if row is None:
            raise NotFoundError(
                f"pipeline {pipeline_id} not found", details={"pipeline_id": pipeline_id}
            )
        return row

    async def _summary(self, tx: Any, pipeline_id: str) -> tuple[int, dict[str, Any] | None]:
        count = await tx.count(t.triggers, t.triggers.c.pipeline_id == pipeline_id)
        last = await tx.list(
            t.executions, where=[t.executions.c.pipeline_id == pipeline_id], limit=1
        )
        summary = (
            {
                "id": last[0]["id"],
                "status": last[0]["status"],
                "created_at": iso_times(last[0], "created_at")["created_at"],
            }
            if last
            else None
        )
        return count, summary

    async def get(self, pipeline_id: str) -> dict[str, Any]:
        async with self.store.read() as tx:
            row = await self._get_row(tx, pipeline_id)
            count, last = await self._summary(tx, pipeline_id)
        return _out(row, count, last)

    async def list(self, limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        limit = check_limit(limit)
        async with self.store.read() as tx:
            rows = await tx.list(t.pipelines, limit=limit + 1, after=decode_cursor(cursor))
            counts: dict[str, int] = dict(
                (
                    await tx.conn.execute(
                        select(t.triggers.c.pipeline_id, func.count()).group_by(
                            t.triggers.c.pipeline_id
                        )
                    )
                ).all()
            )
            out = []
            for row in rows[: limit + 1]:
                last = await tx.list(
                    t.executions, where=[t.executions.c.pipeline_id == row["id"]], limit=1
                )
                summary = (
                    {
                        "id": last[0]["id"],
                        "status": last[0]["status"],
                        "created_at": iso_times(last[0], "created_at")["created_at"],
                    }
                    if last
                    else None
                )
                out.append(_out(row, int(counts.get(row["id"], 0)), summary))
        return page(out, limit, "id")

    async def update(
        self, pipeline_id: str, *, name: Any = None, definition: Any = None, description: Any = None
    ) -> dict[str, Any]:
        if name is not None:
            name = self._check_name(name)
        if definition is not None:
            parse_definition(definition, self.engine.registry)
        now = _now()
        async with self.store.transaction() as tx:
            row = await self._get_row(tx, pipeline_id)
            values: dict[str, Any] = {"updated_at": now}
            if name is not None:
                values["name"] = name
            if description is not None:
                values["description"] = description
            if definition is not None and definition != row["definition"]:
                values["definition"] = definition
                values["version"] = row["version"] + 1
                await tx.insert(
                    t.pipeline_versions,
                    {
                        "pipeline_id": pipeline_id,
                        "version": values["version"],
                        "name": values.get("name", row["name"]),
                        "definition": definition,
                        "created_at": now,
                    },
                )
            await tx.update(t.pipelines, values, t.pipelines.c.id == pipeline_id)
            row.update(values)
            self.engine.invalidate_config()  # the cached pipeline name
            count, last = await self._summary(tx, pipeline_id)
            triggers = (
                await tx.list(
                    t.triggers,
                    where=[t.triggers.c.pipeline_id == pipeline_id],
                    order="id",
                    descending=False,
                )
                if definition is not None
                else []
            )
        out = _out(row, count, last)
        # The new steps may read event fields that a trigger's event type does not carry.
        checker = TriggerService(self.engine)
        out["warnings"] = [
            f"{trigger['id']}: {warning}"
            for trigger in triggers
            for warning in checker.template_warnings(definition, trigger["event_type"])
        ]
        return out

    async def delete(self, pipeline_id: str) -> None:
        async with self.store.transaction() as tx:
            await self._get_row(tx, pipeline_id)
            trigger_ids = [
                r["id"]
                for r in await tx.list(t.triggers, where=[t.triggers.c.pipeline_id == pipeline_id])
            ]
            await tx.delete(t.triggers, t.triggers.c.pipeline_id == pipeline_id)
            await tx.delete(t.pipelines, t.pipelines.c.id == pipeline_id)
        for trigger_id in trigger_ids:
            self.engine.matcher.remove(trigger_id)

    async def versions(self, pipeline_id: str) -> dict[str, Any]:
        async with self.store.read() as tx:
            await self._get_row(tx, pipeline_id)
            rows = await tx.list(
                t.pipeline_versions,
                where=[t.pipeline_versions.c.pipeline_id == pipeline_id],
                order="version",
            )
        return {"items": [iso_times(r, "created_at") for r in rows]}

    async def run(self, pipeline_id: str, params: Any = None, event: Any = None) -> str:
        params, envelope = run_inputs(self.engine, params, event, source="manual")
        async with self.store.transaction() as tx:
            pipeline = await self._get_row(tx, pipeline_id)
            execution_id = await self.engine.create_execution(
                tx, pipeline, origin="manual", trigger_id=None, event=envelope, params=params
            )
        self.engine.wake()
        assert execution_id is not None
        return execution_id
