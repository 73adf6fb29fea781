"""Events: publish (one or a batch), get with decisions and executions, list; event types."""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import orjson
from sqlalchemy import ColumnElement, exists, func, literal, literal_column, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from bud.engine.core import Engine, envelope_from_row
from bud.engine.matcher import explain_decision
from bud.errors import BudError, ConflictError, NotFoundError, ValidationError
from bud.events import EventType, check_schema, validate_event_type_name
from bud.services.common import check_limit, decode_cursor, iso_times, page, strip
from bud.store import schema as t
from bud.timeutil import now as _now
from bud.timeutil import parse_iso

KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


INGEST_ERRORS_KEPT = 1000  # helper:ui: the ingest error log keeps this many rows
INGEST_BODY_CHARS = 2000


def payload_clause(dialect: str, path: str, value: str | None) -> ColumnElement[bool]:
    """helper:ui: events whose ``data`` holds ``value`` at the dotted ``path``.

    ``value`` is read as JSON when it parses (``5``, ``true``, ``"5"``), else as a string;
    without a value the path only has to exist.
    """
    parts = path.removeprefix("data.").split(".")
    if not parts or not all(KEY_RE.match(p) for p in parts):
        raise ValidationError(
            f"data_path: {path!r} is not a dotted path of field names such as model.source",
            details={"path": "data_path"},
        )
    if dialect == "postgresql":
        at = t.events.c.data[tuple(parts)]
        if value is None:
            return at.is_not(None)
        return at == literal(_json_or_text(value), type_=JSONB)
    where = "$" + "".join(f'."{p}"' for p in parts)
    clause: ColumnElement[bool]
    if value is None:
        clause = func.json_type(t.events.c.data, where).is_not(None)
        return clause
    wanted = _json_or_text(value)
    if wanted is None:
        clause = func.json_type(t.events.c.data, where) == "null"
    elif isinstance(wanted, (dict, list)):
        extracted = func.json_extract(t.events.c.data, where)
        clause = func.json(extracted) == func.json(orjson.dumps(wanted).decode())
    else:  # SQLite's json_extract answers numbers, text, and 1/0 for true/false
        clause = func.json_extract(t.events.c.data, where) == wanted
    return clause


def filtered_clause(dialect: str, trigger_id: str) -> ColumnElement[bool]:
    """helper:ui: events whose ``filtered`` list (triggers that did not match) holds the id."""
    column = t.events.c.filtered
    if dialect == "postgresql":
        return type_coerce(column, JSONB).contains([trigger_id])
    member = (
        select(literal(1))
        .select_from(func.json_each(column))
        .where(literal_column("json_each.value") == trigger_id)
    )
    return exists(member)


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
        for d in out["decisions"]:  # helper:ui: trigger names (None when unnamed or deleted)
            view = self.engine.matcher.get(d["trigger_id"])
            d["trigger_name"] = getattr(view, "name", None) if view else None
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
        data_path: str | None = None,
        data_value: str | None = None,
        started_nothing: bool | None = None,
        filtered_by: str | None = None,
    ) -> dict[str, Any]:
        limit = check_limit(limit)
        where = []
        if filtered_by:  # helper:ui: events whose filter check failed for this trigger
            where.append(filtered_clause(self.store.dialect, filtered_by))
        if data_path:  # helper:ui: search by payload path and value
            where.append(payload_clause(self.store.dialect, data_path, data_value))
        if started_nothing is not None:  # helper:ui
            fired = t.events.c.fired_count
            where.append(fired == 0 if started_nothing else fired > 0)
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

    # -- ingest error log (helper:ui) ----------------------------------------------------
    async def record_rejection(
        self, body: Any, error: BudError, *, client: str | None = None
    ) -> None:
        """helper:ui: keep a refused publish (bounded log) for ``GET /v1/ingest-errors``."""
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
            "created_at": _now(),
            "source": (source or client or "unknown")[:128],
            "event_type": event_type[:128] if isinstance(event_type, str) else None,
            "status_code": error.status_code,
            "code": error.code,
            "error": str(error.message),
            "path": path if isinstance(path, str) else None,
            "body": text[:INGEST_BODY_CHARS],
        }
        async with self.store.transaction() as tx:
            await tx.insert(t.ingest_errors, row)
            newest = await tx.scalar(select(func.max(t.ingest_errors.c.seq)))
            await tx.delete(t.ingest_errors, t.ingest_errors.c.seq <= newest - INGEST_ERRORS_KEPT)

    async def rejections(
        self, *, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """helper:ui: the newest refused publishes first."""
        limit = check_limit(limit)
        async with self.store.read() as tx:
            rows = await tx.list(
                t.ingest_errors, order="seq", limit=limit + 1, after=decode_cursor(cursor, int)
            )
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
                jsonschema.Draft202012Validator(schema).iter_errors(example)
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
