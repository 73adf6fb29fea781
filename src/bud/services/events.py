"""Events: publish (one or a batch), get with decisions and executions, list; event types."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson

from bud.engine.core import Engine
from bud.engine.matcher import explain_decision
from bud.engine.records import envelope_from_row
from bud.errors import BudError, ConflictError, NotFoundError, ValidationError
from bud.events import EventType, check_schema, schema_validator, validate_event_type_name
from bud.services.common import check_limit, decode_cursor, iso_times, page, strip
from bud.timeutil import parse_iso

KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


INGEST_ERRORS_KEPT = 1000  # the ingest error log keeps this many rows
INGEST_BODY_CHARS = 2000


def _data_path(path: str) -> list[str]:
    """A dotted path into ``data`` (``model.source``; a leading ``data.`` is allowed)."""
    parts = path.removeprefix("data.").split(".")
    if not parts or not all(KEY_RE.match(p) for p in parts):
        raise ValidationError(
            f"data_path: {path!r} is not a dotted path of field names such as model.source",
            details={"path": "data_path"},
        )
    return parts


def _json_or_text(value: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


def event_out(row: dict[str, Any]) -> dict[str, Any]:
    return strip(iso_times(row, "received_at"), ("seq", "filtered"))


class EventService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.repo = engine.repo
        self.catalogue = engine.catalogue

    async def publish(
        self, raws: list[Any], *, default_source: str = "api"
    ) -> list[dict[str, Any]]:
        return await self.engine.ingestor.ingest(raws, default_source=default_source)

    async def get(self, event_id: str) -> dict[str, Any]:
        async with self.repo.read() as session:
            row = await session.get_event(event_id)
            if row is None:
                raise NotFoundError(f"event {event_id} not found", details={"event_id": event_id})
            decisions: list[dict[str, Any]] = [
                dict(d) for d in await session.decisions_of(event_id)
            ]
            executions = await session.list_executions(event_id=event_id, limit=10_000, after=None)
        out = event_out(dict(row))
        envelope = envelope_from_row(row)
        for trigger_id in row["filtered"] or []:
            view = self.catalogue.matcher.get(trigger_id)
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
        for d in out["decisions"]:  # trigger names (None when unnamed or deleted)
            view = self.catalogue.matcher.get(d["trigger_id"])
            d["trigger_name"] = view.name if view else None
        out["executions"] = sorted(e["id"] for e in executions)
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
        data_path: str | None = None,
        data_value: str | None = None,
        started_nothing: bool | None = None,
        filtered_by: str | None = None,
    ) -> dict[str, Any]:
        limit = check_limit(limit)
        start = None
        parts = _data_path(data_path) if data_path else None
        if since:
            try:
                start = parse_iso(since)
            except ValueError as exc:
                raise ValidationError(
                    f"since: {since!r} is not an ISO 8601 time", details={"path": "since"}
                ) from exc
        async with self.repo.read() as session:
            rows = await session.list_events(
                event_type=event_type,
                source=source,
                test=test,
                since=start,
                limit=limit + 1,
                after=decode_cursor(cursor, int),
                data_path=parts,
                data_value=_json_or_text(data_value) if data_value is not None else None,
                has_value=data_value is not None,
                started_nothing=started_nothing,
                filtered_by=filtered_by or None,
            )
        result = page([dict(r) for r in rows], limit, "seq")
        result["items"] = [event_out(r) for r in result["items"]]
        return result

    # -- ingest error log ------------------------------------------------------------------
    async def record_rejection(
        self, body: Any, error: BudError, *, client: str | None = None
    ) -> None:
        """Keep a refused publish (a bounded log) for ``GET /v1/ingest-errors``."""
        first = body[0] if isinstance(body, list) and body else body
        envelope = first if isinstance(first, dict) else {}
        source = envelope.get("source") if isinstance(envelope.get("source"), str) else None
        event_type = envelope.get("event_type")
        path = error.details.get("path") if isinstance(error.details, dict) else None
        try:
            text = orjson.dumps(body).decode()
        except TypeError:
            text = repr(body)
        row = {
            "created_at": self.engine.clock.now(),
            "source": (source or client or "unknown")[:128],
            "event_type": event_type[:128] if isinstance(event_type, str) else None,
            "status_code": error.status_code,
            "code": error.code,
            "error": str(error.message),
            "path": path if isinstance(path, str) else None,
            "body": text[:INGEST_BODY_CHARS],
        }
        async with self.repo.transaction() as session:
            await session.record_ingest_error(row, keep=INGEST_ERRORS_KEPT)

    async def rejections(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """The newest refused publishes first."""
        limit = check_limit(limit)
        async with self.repo.read() as session:
            rows = await session.list_ingest_errors(limit + 1, decode_cursor(cursor, int))
        result = page(rows, limit, "seq")
        result["items"] = [
            {
                **iso_times(r, "created_at"),
                "body_truncated": len(r["body"] or "") >= INGEST_BODY_CHARS,
            }
            for r in result["items"]
        ]
        return result

    # -- event types ---------------------------------------------------------------------
    def list_types(self) -> dict[str, Any]:
        return {
            "items": [
                et.to_dict()
                for et in sorted(self.catalogue.event_types.values(), key=lambda e: e.name)
            ]
        }

    def get_type(self, name: str) -> dict[str, Any]:
        et = self.catalogue.event_types.get(name)
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
                schema_validator(schema).iter_errors(example)  # never fetches a $ref
            )
            if err is not None:
                raise ValidationError(
                    f"example does not match the schema: {err.message}", details={"path": "example"}
                )
        existing = self.catalogue.event_types.get(name)
        if existing is not None and existing.builtin:
            raise ConflictError(f"{name} is a built-in event type")
        async with self.repo.transaction() as session:
            await session.put_event_type(
                {
                    "name": name,
                    "description": description or "",
                    "schema": schema,
                    "example": example,
                    "created_at": self.engine.clock.now(),
                }
            )
        await self.engine.changed()
        return EventType(name, description or "", schema, False, example).to_dict()
