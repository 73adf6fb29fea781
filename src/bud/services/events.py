"""Events: publish (one or a batch), get with decisions and executions, list; event types."""

from __future__ import annotations

from typing import Any

import jsonschema

from bud.engine.core import Engine, envelope_from_row
from bud.engine.matcher import explain_decision
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.events import EventType, check_schema, schema_validator, validate_event_type_name
from bud.services.common import check_limit, decode_cursor, iso_times, page, strip
from bud.store import schema as t
from bud.timeutil import now as _now
from bud.timeutil import parse_iso


def event_out(row: dict[str, Any]) -> dict[str, Any]:
    return strip(iso_times(row, "received_at"), ("seq", "filtered"))


class EventService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    async def publish(
        self, raws: list[Any], *, default_source: str = "api"
    ) -> list[dict[str, Any]]:
        envelopes = await self.engine.ingest(raws, default_source=default_source)
        return envelopes

    async def get(self, event_id: str) -> dict[str, Any]:
        async with self.store.read() as tx:
            row = await tx.get(t.events, event_id=event_id)
            if row is None:
                raise NotFoundError(f"event {event_id} not found", details={"event_id": event_id})
            decisions = await tx.list(
                t.decisions,
                where=[t.decisions.c.event_id == event_id],
                order="seq",
                descending=False,
            )
            executions = await tx.list(
                t.executions,
                where=[t.executions.c.event_id == event_id],
                order="id",
                descending=False,
            )
        out = event_out(row)
        envelope = envelope_from_row(row)
        for trigger_id in row["filtered"] or []:
            view = self.engine.matcher.get(trigger_id)
            changed = view is not None and view.updated_at > row["received_at"]
            reason, detail = explain_decision(view, envelope, changed_since=changed)
            decisions.append(
                {
                    "trigger_id": trigger_id,
                    "pipeline_id": view.pipeline_id if view else None,
                    "outcome": "filtered",
                    "reason_code": "filtered",
                    "reason": reason,
                    "detail": detail,
                    "execution_id": None,
                    "created_at": row["received_at"],
                }
            )
        out["decisions"] = [
            strip(iso_times(d, "created_at"), ("seq", "event_id")) for d in decisions
        ]
        out["executions"] = [e["id"] for e in executions]
        return out

    async def list(
        self,
        *,
        event_type: str | None = None,
        source: str | None = None,
        since: str | None = None,
        test: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        limit = check_limit(limit)
        where = []
        if event_type:
            where.append(t.events.c.event_type == event_type)
        if source:
            where.append(t.events.c.source == source)
        if test is not None:
            where.append(t.events.c.test == test)
        if since:
            try:
                where.append(t.events.c.received_at >= parse_iso(since))
            except ValueError as exc:
                raise ValidationError(
                    f"since: {since!r} is not an ISO 8601 time", details={"path": "since"}
                ) from exc
        async with self.store.read() as tx:
            rows = await tx.list(
                t.events,
                where=where,
                order="seq",
                limit=limit + 1,
                after=decode_cursor(cursor, int),
            )
        result = page(rows, limit, "seq")
        result["items"] = [event_out(r) for r in result["items"]]
        return result

    # -- event types ---------------------------------------------------------------------
    def list_types(self) -> dict[str, Any]:
        return {
            "items": [
                et.to_dict()
                for et in sorted(self.engine.event_types.values(), key=lambda e: e.name)
            ]
        }

    def get_type(self, name: str) -> dict[str, Any]:
        et = self.engine.event_types.get(name)
        if et is None:
            raise NotFoundError(f"event type {name!r} not found")
        return et.to_dict()

    async def register_type(
        self, name: Any, description: str = "", schema: Any = None, example: Any = None
    ) -> dict[str, Any]:
        validate_event_type_name(name)
        schema = schema or {}
        if schema:
            check_schema(schema)
        example = example or {}
        if not isinstance(example, dict):
            raise ValidationError("example must be a JSON object", details={"path": "example"})
        if schema and example:
            err = jsonschema.exceptions.best_match(
                schema_validator(schema).iter_errors(example)  # helper:hardening (no fetch)
            )
            if err is not None:
                raise ValidationError(
                    f"example does not match the schema: {err.message}", details={"path": "example"}
                )
        existing = self.engine.event_types.get(name)
        if existing is not None and existing.builtin:
            raise ConflictError(f"{name} is a built-in event type")
        async with self.store.transaction() as tx:
            await tx.delete(t.event_types, t.event_types.c.name == name)
            await tx.insert(
                t.event_types,
                {
                    "name": name,
                    "description": description or "",
                    "schema": schema,
                    "example": example,
                    "created_at": _now(),
                },
            )
        et = EventType(name, description or "", schema, False, example)
        self.engine.event_types[name] = et
        return et.to_dict()
