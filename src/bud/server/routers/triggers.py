"""Event triggers: which events start which pipeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from bud import demo, schemas
from bud.server.deps import BudDep
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json

router = APIRouter(tags=["event-triggers"], route_class=CheckedRoute)


class TriggerIn(BaseModel):
    pipeline_id: Annotated[str, Field(max_length=64)]
    event_type: Annotated[str, Field(max_length=128)] | None = Field(
        None, description="required, except for a schedule trigger (schedule.tick)"
    )
    schedule: Any = Field(
        None,
        description='a schedule trigger: {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"} '
        'or {"interval_seconds": 300}',
    )
    filter: Any = None
    enabled: Any = True
    name: Annotated[str, Field(max_length=256)] | None = None
    description: str | None = None
    id: str | None = None
    flow: Any = None


class TriggerPatch(BaseModel):
    filter: Any = None
    enabled: Any = None
    name: Annotated[str, Field(max_length=256)] | None = None
    description: str | None = None
    event_type: Annotated[str, Field(max_length=128)] | None = None
    flow: Any = None
    schedule: Any = None


class TestIn(BaseModel):
    event: Any


class DraftIn(BaseModel):
    pipeline_id: Any = None
    event_type: Any = None
    filter: Any = None
    flow: Any = None
    enabled: Any = True
    event: Any = None


@router.post(
    "/v1/event-triggers",
    status_code=201,
    response_model=schemas.EventTrigger,
    responses={
        200: {
            "model": schemas.EventTrigger,
            "description": "Demo mode only: this is the demo's own example trigger, already "
            "loaded; it is answered as is and nothing is created.",
        }
    },
)
async def event_triggers_create(body: TriggerIn, bud: BudDep) -> Json:
    """Create a trigger: every enabled trigger whose filter matches an event of its type starts one
    execution of its pipeline. The filter is validated and compiled here (422 `invalid_filter`
    names the clause); an unknown event type or a missing pipeline is refused. `warnings` lists
    template references the event type lacks."""
    if bud.settings.demo:
        existing = await demo.existing_trigger(
            bud, body.pipeline_id, body.event_type, body.filter, body.id
        )
        if existing is not None:
            return Json(existing, status_code=200)
    return Json(
        await bud.triggers.create(
            body.pipeline_id,
            body.event_type,
            body.filter,
            body.enabled,
            body.name,
            body.description,
            body.id,
            body.flow,
            body.schedule,
        ),
        status_code=201,
    )


@router.post("/v1/event-triggers/check", response_model=schemas.TriggerCheck)
async def event_triggers_check(body: DraftIn, bud: BudDep) -> Json:
    """Check an unsaved trigger (all errors at once, template warnings, an optional test)."""
    return Json(
        await bud.triggers.check_draft(
            body.pipeline_id, body.event_type, body.filter, body.flow, body.enabled, body.event
        )
    )


@router.get("/v1/event-triggers", response_model=schemas.Page[schemas.EventTrigger])
async def event_triggers_list(
    bud: BudDep,
    pipeline_id: str | None = None,
    event_type: str | None = None,
    enabled: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Json:
    """Triggers, filtered by pipeline, event type and enabled."""
    return Json(
        await bud.triggers.list(
            pipeline_id=pipeline_id,
            event_type=event_type,
            enabled=enabled,
            limit=limit,
            cursor=cursor,
        )
    )


@router.get("/v1/event-triggers/{trigger_id}", response_model=schemas.EventTrigger)
async def event_triggers_get(trigger_id: str, bud: BudDep) -> Json:
    """One trigger with its statistics (`fire_count`, `last_fired_at`)."""
    return Json(await bud.triggers.get(trigger_id))


@router.patch("/v1/event-triggers/{trigger_id}", response_model=schemas.EventTrigger)
async def event_triggers_update(trigger_id: str, body: TriggerPatch, bud: BudDep) -> Json:
    """Change only the fields given; `filter: {}` clears the filter."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    return Json(await bud.triggers.update(trigger_id, **changes))


@router.post("/v1/event-triggers/{trigger_id}/enable", response_model=schemas.EventTrigger)
async def event_triggers_enable(trigger_id: str, bud: BudDep) -> Json:
    """Enable a trigger (and reset a tripped circuit breaker)."""
    return Json(await bud.triggers.update(trigger_id, enabled=True))


@router.post("/v1/event-triggers/{trigger_id}/disable", response_model=schemas.EventTrigger)
async def event_triggers_disable(trigger_id: str, bud: BudDep) -> Json:
    """Disable a trigger; its events are recorded as `disabled` decisions."""
    return Json(await bud.triggers.update(trigger_id, enabled=False))


@router.delete("/v1/event-triggers/{trigger_id}", status_code=204)
async def event_triggers_delete(trigger_id: str, bud: BudDep) -> Response:
    """Delete a trigger."""
    await bud.triggers.delete(trigger_id)
    return Response(status_code=204)


@router.post("/v1/event-triggers/{trigger_id}/test", response_model=schemas.TriggerTest)
async def event_triggers_test(trigger_id: str, body: TestIn, bud: BudDep) -> Json:
    """Explain how the trigger would treat an event; nothing is stored or fired. The event is an
    envelope, `{"data": {...}}` or the bare data, and may be partial: what its type's schema
    misses is listed in `warnings` beside the verdict tree."""
    return Json(await bud.triggers.test(trigger_id, body.event))
