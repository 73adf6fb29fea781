"""Pipelines: create, version, validate, run, delete (with their triggers)."""

from __future__ import annotations

from typing import Any

from bud.engine.core import Engine
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.ids import new_id
from bud.pipelines import definition_to_dict, parse_definition
from bud.services.common import check_chosen_id, check_limit, decode_cursor, iso_times, page
from bud.services.triggers import TriggerService
from bud.store import Session
from bud.store.records import ExecutionRecord, PipelineRecord
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
        envelope = engine.ingestor.normalize([event], default_source=source)[0]
    return params or {}, envelope


def _summary(found: tuple[int, ExecutionRecord | None]) -> tuple[int, dict[str, Any] | None]:
    count, last = found
    if last is None:
        return count, None
    return count, {
        "id": last["id"],
        "status": last["status"],
        "created_at": iso_times(last, "created_at")["created_at"],
    }


class PipelineService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.repo = engine.repo

    def validate(self, definition: Any) -> dict[str, Any]:
        try:
            parsed = parse_definition(definition, self.engine.catalogue.registry)
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
        parse_definition(definition, self.engine.catalogue.registry)
        now = _now()
        row: PipelineRecord = {
            "id": pipeline_id or new_id("pipe"),
            "name": name,
            "description": description,
            "version": 1,
            "definition": definition,
            "created_at": now,
            "updated_at": now,
        }
        async with self.repo.transaction() as session:
            if pipeline_id and await session.get_pipeline(pipeline_id):
                raise ConflictError(
                    f"id: pipeline {pipeline_id} already exists", details={"path": "id"}
                )
            await session.create_pipeline(row)
        return _out(dict(row), 0, None)

    async def _get_row(self, session: Session, pipeline_id: str) -> dict[str, Any]:
        row = await session.get_pipeline(pipeline_id)
        if row is None:
            raise NotFoundError(
                f"pipeline {pipeline_id} not found", details={"pipeline_id": pipeline_id}
            )
        return dict(row)

    async def get(self, pipeline_id: str) -> dict[str, Any]:
        async with self.repo.read() as session:
            row = await self._get_row(session, pipeline_id)
            summaries = await session.pipeline_summaries([pipeline_id])
        return _out(row, *_summary(summaries[pipeline_id]))

    async def list(self, limit: int | None = None, cursor: str | None = None) -> dict[str, Any]:
        limit = check_limit(limit)
        async with self.repo.read() as session:
            rows = await session.list_pipelines(limit + 1, decode_cursor(cursor))
            summaries = await session.pipeline_summaries([r["id"] for r in rows])
        out = [_out(dict(row), *_summary(summaries[row["id"]])) for row in rows]
        return page(out, limit, "id")

    async def update(
        self, pipeline_id: str, *, name: Any = None, definition: Any = None, description: Any = None
    ) -> dict[str, Any]:
        if name is not None:
            name = self._check_name(name)
        if definition is not None:
            parse_definition(definition, self.engine.catalogue.registry)
        now = _now()
        async with self.repo.transaction() as session:
            row = await self._get_row(session, pipeline_id)
            values: dict[str, Any] = {"updated_at": now}
            if name is not None:
                values["name"] = name
            if description is not None:
                values["description"] = description
            new_version = None
            if definition is not None and definition != row["definition"]:
                values["definition"] = definition
                values["version"] = row["version"] + 1
                new_version = {
                    "pipeline_id": pipeline_id,
                    "version": values["version"],
                    "name": values.get("name", row["name"]),
                    "definition": definition,
                    "created_at": now,
                }
            await session.update_pipeline(pipeline_id, values, new_version)
            row.update(values)
            summaries = await session.pipeline_summaries([pipeline_id])
            triggers = (
                await session.list_triggers(
                    pipeline_id=pipeline_id, event_type=None, enabled=None, limit=10_000, after=None
                )
                if definition is not None
                else []
            )
        await self.engine.changed()  # the cached pipeline name
        out = _out(row, *_summary(summaries[pipeline_id]))
        # The new steps may read event fields that a trigger's event type does not carry.
        checker = TriggerService(self.engine)
        out["warnings"] = [
            f"{trigger['id']}: {warning}"
            for trigger in triggers
            for warning in checker.template_warnings(definition, trigger["event_type"])
        ]
        return out

    async def delete(self, pipeline_id: str) -> None:
        async with self.repo.transaction() as session:
            await self._get_row(session, pipeline_id)
            await session.delete_pipeline(pipeline_id)
        await self.engine.changed()

    async def versions(self, pipeline_id: str) -> dict[str, Any]:
        async with self.repo.read() as session:
            await self._get_row(session, pipeline_id)
            rows = await session.pipeline_versions(pipeline_id)
        return {"items": [iso_times(r, "created_at") for r in rows]}

    async def run(self, pipeline_id: str, params: Any = None, event: Any = None) -> str:
        params, envelope = run_inputs(self.engine, params, event, source="manual")
        async with self.repo.transaction() as session:
            pipeline = await session.get_pipeline(pipeline_id)
            if pipeline is None:
                raise NotFoundError(
                    f"pipeline {pipeline_id} not found", details={"pipeline_id": pipeline_id}
                )
            execution_id = await self.engine.ingestor.run(
                session, pipeline, params=params, event=envelope
            )
        assert execution_id is not None
        return execution_id
