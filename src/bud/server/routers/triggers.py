from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from bud import schemas
from bud.server.deps import BudDep
from bud.server.responses import Json

router = APIRouter(tags=["event-triggers"])


class TriggerIn(BaseModel):
    pipeline_id: Annotated[str, Field(max_length=64)]
    event_type: Annotated[str, Field(max_length=128)]
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


class TestIn(BaseModel):
    event: Any


@router.post("/v1/event-triggers", status_code=201, response_model=schemas.EventTrigger)
async def create_trigger(body: TriggerIn, bud: BudDep) -> Json:
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
        ),
        status_code=201,
    )


@router.get("/v1/event-triggers", response_model=schemas.Page[schemas.EventTrigger])
async def list_triggers(
    bud: BudDep,
    pipeline_id: str | None = None,
    event_type: str | None = None,
    enabled: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Json:
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
async def get_trigger(trigger_id: str, bud: BudDep) -> Json:
    return Json(await bud.triggers.get(trigger_id))


@router.patch("/v1/event-triggers/{trigger_id}", response_model=schemas.EventTrigger)
async def update_trigger(trigger_id: str, body: TriggerPatch, bud: BudDep) -> Json:
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    return Json(await bud.triggers.update(trigger_id, **changes))


@router.post("/v1/event-triggers/{trigger_id}/enable", response_model=schemas.EventTrigger)
async def enable_trigger(trigger_id: str, bud: BudDep) -> Json:
    return Json(await bud.triggers.update(trigger_id, enabled=True))


@router.post("/v1/event-triggers/{trigger_id}/disable", response_model=schemas.EventTrigger)
async def disable_trigger(trigger_id: str, bud: BudDep) -> Json:
    return Json(await bud.triggers.update(trigger_id, enabled=False))


@router.delete("/v1/event-triggers/{trigger_id}", status_code=204)
async def delete_trigger(trigger_id: str, bud: BudDep) -> Response:
    await bud.triggers.delete(trigger_id)
    return Response(status_code=204)


@router.post("/v1/event-triggers/{trigger_id}/test", response_model=schemas.TriggerTest)
async def test_trigger(trigger_id: str, body: TestIn, bud: BudDep) -> Json:
    return Json(await bud.triggers.test(trigger_id, body.event))
