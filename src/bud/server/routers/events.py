from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from bud import schemas
from bud.server.deps import BudDep
from bud.server.responses import Json

router = APIRouter(tags=["events"])


class EventIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    event_type: str
    data: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None
    event_id: str | None = None
    timestamp: str | None = None
    test: bool = False


class BatchIn(BaseModel):
    events: list[dict[str, Any]]


class EventTypeIn(BaseModel):
    name: str = Field(max_length=128)
    description: str = ""
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    example: dict[str, Any] | None = None


@router.post("/v1/events", status_code=202, response_model=schemas.Event)
async def publish_event(body: dict[str, Any], bud: BudDep) -> Json:
    """Publish one event (see EventIn for the envelope)."""
    (envelope,) = await bud.events.publish([body])
    return Json(envelope, status_code=202)


@router.post("/v1/events/batch", status_code=202, response_model=schemas.BatchResult)
async def publish_batch(body: BatchIn, bud: BudDep) -> Json:
    envelopes = await bud.events.publish(body.events)
    dups = sum(1 for e in envelopes if e["duplicate"])
    return Json(
        {"events": envelopes, "accepted": len(envelopes) - dups, "duplicates": dups},
        status_code=202,
    )


@router.get("/v1/events", response_model=schemas.Page[schemas.Event])
async def list_events(
    bud: BudDep,
    event_type: str | None = None,
    source: str | None = None,
    since: str | None = None,
    test: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Json:
    return Json(
        await bud.events.list(
            event_type=event_type, source=source, since=since, test=test, limit=limit, cursor=cursor
        )
    )


@router.get("/v1/events/{event_id}", response_model=schemas.Event)
async def get_event(event_id: str, bud: BudDep) -> Json:
    return Json(await bud.events.get(event_id))


@router.get("/v1/event-types", response_model=schemas.Page[schemas.EventType])
async def list_event_types(bud: BudDep) -> Json:
    return Json({**bud.events.list_types(), "next_cursor": None})


@router.post("/v1/event-types", status_code=201, response_model=schemas.EventType)
async def register_event_type(body: EventTypeIn, bud: BudDep) -> Json:
    return Json(
        await bud.events.register_type(body.name, body.description, body.schema_, body.example),
        status_code=201,
    )


@router.get("/v1/event-types/{name}", response_model=schemas.EventType)
async def get_event_type(name: str, bud: BudDep) -> Json:
    return Json(bud.events.get_type(name))
