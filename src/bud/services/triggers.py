"""Event triggers: CRUD, enable/disable, test (explain without firing), template warnings."""

from __future__ import annotations

from typing import Any

from bud.engine.core import Engine
from bud.engine.flow import check_flow
from bud.engine.schedules import check_schedule, first_tick
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.events import ENVELOPE_FIELDS, normalize_partial_event
from bud.filters import compile_filter, summarize
from bud.ids import new_id
from bud.services.common import check_chosen_id, check_limit, decode_cursor, iso_times, page
from bud.store import Session
from bud.store.records import Row, TriggerRecord
from bud.templates import event_references, iter_templates
from bud.timeutil import now as _now
from bud.timeutil import to_iso

ENVELOPE_NAMES = {*ENVELOPE_FIELDS, "correlation_id", "causation_id", "depth", "test"}


TICK = "schedule.tick"


def _out(
    row: dict[str, Any], warnings: list[str] | None = None, state: Row | None = None
) -> dict[str, Any]:
    out = iso_times(row, "created_at", "updated_at", "last_fired_at", "tripped_at")
    out["warnings"] = warnings or []
    out["kind"] = "schedule" if row.get("schedule") else "event"
    if row.get("schedule"):
        state = state or {}
        out["next_run_at"] = to_iso(state.get("next_at"))
        out["last_tick_at"] = to_iso(state.get("last_tick_at"))
        out["skipped_ticks"] = int(state.get("skipped") or 0)
    return out


async def _with_states(session: Session, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    states = await session.schedules_of(r["id"] for r in rows if r.get("schedule"))
    return [_out(r, state=states.get(r["id"])) for r in rows]


class TriggerService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.repo = engine.repo
        self.catalogue = engine.catalogue

    def _check_event_type(self, event_type: Any) -> str:
        known_types = self.catalogue.event_types
        if not isinstance(event_type, str) or event_type not in known_types:
            known = ", ".join(sorted(known_types))
            raise ValidationError(
                f"event_type: unknown event type {event_type!r}; known types: {known}",
                details={"path": "event_type", "known": sorted(known_types)},
            )
        return event_type

    @staticmethod
    def _check_filter(filter: Any) -> dict[str, Any]:
        if filter is None:
            return {}
        if not isinstance(filter, dict):
            raise ValidationError(
                'filter must be a JSON object such as {"model_source": "hugging_face"}',
                details={"path": "filter"},
            )
        compile_filter(filter)
        return filter

    def template_warnings(self, definition: dict[str, Any], event_type: str) -> list[str]:
        """References to ``event.<field>`` that the event type's schema does not carry."""
        etype = self.catalogue.event_types.get(event_type)
        if etype is None or not etype.schema:
            return []
        known = etype.properties()
        additional = etype.schema.get("additionalProperties", True)
        warnings = []
        for i, step in enumerate(definition.get("steps", [])):
            if not isinstance(step, dict):
                continue
            texts = list(
                iter_templates(step.get("params", {}), f"steps[{i}] ({step.get('id')}).params")
            )
            if isinstance(step.get("condition"), str):
                texts.append((f"steps[{i}] ({step.get('id')}).condition", step["condition"]))
            for where, text in texts:
                for field, has_default in event_references(text):
                    if field in ENVELOPE_NAMES or field in known or has_default:
                        continue
                    note = (
                        " (the schema allows other fields, so it may still arrive)"
                        if additional
                        else ""
                    )
                    warnings.append(
                        f"{where}: event.{field} is not a field of {event_type} events"
                        f"{note}; add a fallback such as | default(...)"
                    )
        return warnings

    async def create(
        self,
        pipeline_id: Any,
        event_type: Any,
        filter: Any = None,
        enabled: bool = True,
        name: str | None = None,
        description: str | None = None,
        trigger_id: str | None = None,
        flow: Any = None,
        schedule: Any = None,
    ) -> dict[str, Any]:
        check_chosen_id(trigger_id, "id")
        flow = check_flow(flow)
        if schedule is not None:
            schedule = check_schedule(schedule)
            if event_type not in (None, TICK):
                raise ValidationError(
                    f"event_type: a schedule trigger fires with {TICK} events; leave "
                    "event_type out (or give schedule.tick)",
                    details={"path": "event_type"},
                )
            if filter:
                raise ValidationError(
                    "filter: a schedule trigger has no filter (every tick fires)",
                    details={"path": "filter"},
                )
            event_type = TICK
        elif event_type == TICK:
            raise ValidationError(
                f"schedule: {TICK} events come from schedule triggers; give a schedule such as "
                '{"cron": "0 9 * * 1-5", "timezone": "UTC"} or {"interval_seconds": 300}',
                details={"path": "schedule"},
            )
        event_type = self._check_event_type(event_type)
        filter = self._check_filter(filter)
        if not isinstance(enabled, bool):
            raise ValidationError("enabled must be true or false", details={"path": "enabled"})
        now = _now()
        row: TriggerRecord = {
            "id": trigger_id or new_id("trig"),
            "pipeline_id": pipeline_id,
            "event_type": event_type,
            "name": name,
            "description": description,
            "filter": filter,
            "enabled": enabled,
            "created_at": now,
            "updated_at": now,
            "fire_count": 0,
            "last_fired_at": None,
            "flow": flow or None,
            "tripped_at": None,
            "tripped_reason": None,
            "schedule": schedule,
        }
        state: Row | None = None
        async with self.repo.transaction() as session:
            pipeline = (
                await session.get_pipeline(pipeline_id) if isinstance(pipeline_id, str) else None
            )
            if pipeline is None:
                raise NotFoundError(
                    f"pipeline_id: pipeline {pipeline_id!r} not found",
                    details={"path": "pipeline_id"},
                )
            if trigger_id and await session.get_trigger(trigger_id):
                raise ConflictError(
                    f"id: event trigger {trigger_id} already exists", details={"path": "id"}
                )
            await session.create_trigger(row)
            if schedule is not None:
                clock_now = self.engine.clock.now()
                next_at = first_tick(schedule, clock_now) if enabled else None
                await session.put_schedule(row["id"], next_at, clock_now)
                state = {"next_at": next_at}
        await self.engine.changed()
        return _out(dict(row), self.template_warnings(pipeline["definition"], event_type), state)

    async def _row(self, session: Session, trigger_id: str) -> dict[str, Any]:
        row = await session.get_trigger(trigger_id)
        if row is None:
            raise NotFoundError(
                f"event trigger {trigger_id} not found", details={"trigger_id": trigger_id}
            )
        return dict(row)

    async def get(self, trigger_id: str) -> dict[str, Any]:
        async with self.repo.read() as session:
            [out] = await _with_states(session, [await self._row(session, trigger_id)])
            return out

    async def list(
        self,
        *,
        pipeline_id: str | None = None,
        event_type: str | None = None,
        enabled: bool | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        limit = check_limit(limit)
        async with self.repo.read() as session:
            rows = await session.list_triggers(
                pipeline_id=pipeline_id,
                event_type=event_type,
                enabled=enabled,
                limit=limit + 1,
                after=decode_cursor(cursor),
            )
            outs = await _with_states(session, [dict(r) for r in rows])
        return page(outs, limit, "id")

    async def update(self, trigger_id: str, **changes: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "filter":
                values["filter"] = self._check_filter(value)
            elif key == "event_type":
                values["event_type"] = self._check_event_type(value)
            elif key == "enabled":
                if not isinstance(value, bool):
                    raise ValidationError(
                        "enabled must be true or false", details={"path": "enabled"}
                    )
                values["enabled"] = value
                if value:
                    values.update(tripped_at=None, tripped_reason=None)
            elif key == "flow":
                values["flow"] = check_flow(value) or None
            elif key == "schedule":
                values["schedule"] = check_schedule(value)
            elif key in ("name", "description"):
                values[key] = value
            else:
                raise ValidationError(
                    f"{key}: cannot be changed; allowed: filter, enabled, name, "
                    "description, event_type, flow, schedule",
                    details={"path": key},
                )
        values["updated_at"] = _now()
        async with self.repo.transaction() as session:
            row = await self._row(session, trigger_id)
            self._check_kind(row, values)
            await session.update_trigger(trigger_id, values)
            if values.get("enabled"):
                await session.reset_breaker(trigger_id)
            row.update(values)
            if row.get("schedule") and ({"schedule", "enabled"} & set(values)):
                # A changed or re-enabled schedule counts from now: no catch-up of the pause.
                clock_now = self.engine.clock.now()
                next_at = first_tick(row["schedule"], clock_now) if row["enabled"] else None
                await session.put_schedule(trigger_id, next_at, clock_now)
            [out] = await _with_states(session, [row])
            pipeline = await session.get_pipeline(row["pipeline_id"])
        await self.engine.changed()
        out["warnings"] = (
            self.template_warnings(pipeline["definition"], row["event_type"]) if pipeline else []
        )
        return out

    @staticmethod
    def _check_kind(row: dict[str, Any], values: dict[str, Any]) -> None:
        """A schedule trigger stays one, an event trigger too."""
        if row.get("schedule"):
            if "event_type" in values and values["event_type"] != TICK:
                raise ValidationError(
                    "event_type: a schedule trigger fires with schedule.tick events; delete it "
                    "and create an event trigger instead",
                    details={"path": "event_type"},
                )
            if values.get("filter"):
                raise ValidationError(
                    "filter: a schedule trigger has no filter (every tick fires)",
                    details={"path": "filter"},
                )
        elif "schedule" in values:
            raise ValidationError(
                "schedule: this is an event trigger; create a schedule trigger instead",
                details={"path": "schedule"},
            )
        elif values.get("event_type") == TICK:
            raise ValidationError(
                f"event_type: {TICK} events come from schedule triggers",
                details={"path": "event_type"},
            )

    async def delete(self, trigger_id: str) -> None:
        async with self.repo.transaction() as session:
            await self._row(session, trigger_id)
            await session.delete_trigger(trigger_id)
        await self.engine.changed()

    async def check_draft(
        self,
        pipeline_id: Any,
        event_type: Any,
        filter: Any = None,
        flow: Any = None,
        enabled: Any = True,
        event: Any = None,
    ) -> dict[str, Any]:
        """Check an unsaved trigger: every error at once, warnings, and a test.

        Nothing is stored. ``errors`` lists ``{path, message}`` for each field that would be
        refused on save; ``warnings`` are the template warnings; ``test`` is the answer of
        ``test`` for ``event`` (when given and the type and filter are valid).
        """
        errors: list[dict[str, Any]] = []

        def collect(check: Any, *args: Any) -> Any:
            try:
                return check(*args)
            except ValidationError as exc:
                path = exc.details.get("path") if isinstance(exc.details, dict) else None
                errors.append({"path": path or "", "message": exc.message})
                return None

        etype = collect(self._check_event_type, event_type)
        if etype == TICK:
            errors.append(
                {
                    "path": "schedule",
                    "message": f"{TICK} events come from schedule triggers: create one with a "
                    "schedule (the API, the SDK or bud triggers create --cron/--interval)",
                }
            )
            etype = None
        compiled = collect(self._check_filter, filter)
        collect(check_flow, flow)
        if not isinstance(enabled, bool):
            errors.append({"path": "enabled", "message": "enabled must be true or false"})
        pipeline = None
        if isinstance(pipeline_id, str):
            async with self.repo.read() as session:
                pipeline = await session.get_pipeline(pipeline_id)
        if pipeline is None:
            errors.append(
                {
                    "path": "pipeline_id",
                    "message": f"pipeline_id: pipeline {pipeline_id!r} not found",
                }
            )
        warnings = (
            self.template_warnings(pipeline["definition"], etype) if pipeline and etype else []
        )
        test = None
        if event is not None and etype is not None and compiled is not None:
            row = {"event_type": etype, "filter": compiled, "enabled": enabled is not False}
            try:
                test = {"trigger_id": None, **self._explain(row, event)}
            except ValidationError as exc:
                path = exc.details.get("path") if isinstance(exc.details, dict) else None
                errors.append({"path": path or "event", "message": exc.message})
        return {"valid": not errors, "errors": errors, "warnings": warnings, "test": test}

    async def test(self, trigger_id: str, event: Any) -> dict[str, Any]:
        """Explain how the trigger would treat an event; nothing is stored or fired."""
        async with self.repo.read() as session:
            row = await self._row(session, trigger_id)
        return {"trigger_id": trigger_id, **self._explain(row, event)}

    def _explain(self, row: dict[str, Any], event: Any) -> dict[str, Any]:
        """How a trigger (stored or not) treats an event: the verdict, nothing stored."""
        if not isinstance(event, dict):
            raise ValidationError(
                'event must be a JSON object (an envelope, or {"data": {...}})',
                details={"path": "event"},
            )
        raw = dict(event)
        if "event_type" not in raw:
            raw["event_type"] = row["event_type"]
        if "data" not in raw and not set(raw) & {"event_id", "timestamp", "source"}:
            raw = {"event_type": raw.pop("event_type"), "data": raw}
        envelope, warnings = normalize_partial_event(
            raw,
            self.catalogue.event_types,
            max_bytes=self.engine.settings.max_event_bytes,
            default_source="test",
        )
        verdict = compile_filter(row["filter"]).explain(envelope)
        if envelope["event_type"] != row["event_type"]:
            verdict = {
                "op": "$and",
                "path": "",
                "matched": False,
                "children": [
                    {
                        "path": "event_type",
                        "op": "$eq",
                        "expected": row["event_type"],
                        "actual": envelope["event_type"],
                        "outcome": "value_differs",
                        "matched": False,
                    },
                    verdict,
                ],
            }
        matched = bool(verdict["matched"])
        return {
            "matched": matched,
            "enabled": row["enabled"],
            "would_fire": matched and row["enabled"],
            "summary": summarize(verdict),
            "verdict": verdict,
            "warnings": warnings,
        }
