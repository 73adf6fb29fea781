from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from bud import schemas
from bud.errors import BudError
from bud.server.deps import BudDep
from bud.server.responses import Json
from bud.services import Bud

router = APIRouter(tags=["events"])
log = logging.getLogger("bud.server.events")


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
    name: str
    description: str = ""
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    example: dict[str, Any] | None = None


async def _publish(request: Request, bud: Bud, raws: list[Any]) -> list[dict[str, Any]]:
    """Publish, keeping a refused publish in the ingest error log (``GET /v1/ingest-errors``)."""
    try:
        envelopes: list[dict[str, Any]] = await bud.events.publish(raws)
    except BudError as exc:
        if exc.status_code < 500:
            client = request.client.host if request.client else None
            body = raws if len(raws) != 1 else raws[0]
            try:
                await bud.events.record_rejection(body, exc, client=client)
            except Exception:  # the log is a help: never let it hide the refusal itself
                log.exception("could not record a refused publish")
        raise
    return envelopes


@router.post("/v1/events", status_code=202, response_model=schemas.Event)
async def publish_event(body: dict[str, Any], bud: BudDep, request: Request) -> Json:
    """Publish one event (see EventIn for the envelope)."""
    (envelope,) = await _publish(request, bud, [body])
    return Json(envelope, status_code=202)


@router.post("/v1/events/batch", status_code=202, response_model=schemas.BatchResult)
async def publish_batch(body: BatchIn, bud: BudDep, request: Request) -> Json:
    envelopes = await _publish(request, bud, body.events)
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
    data_path: str | None = None,
    data_value: str | None = None,
    started_nothing: bool | None = None,
    filtered_by: str | None = None,
) -> Json:
    return Json(
        await bud.events.list(
            event_type=event_type,
            source=source,
            since=since,
            test=test,
            limit=limit,
            cursor=cursor,
            data_path=data_path,
            data_value=data_value,
            started_nothing=started_nothing,
            filtered_by=filtered_by,
        )
    )


@router.get("/v1/ingest-errors")
async def list_ingest_errors(
    bud: BudDep, limit: int | None = None, cursor: str | None = None
) -> Json:
    """Publishes the server refused, newest first: error, time, source and the body (truncated)."""
    return Json(await bud.events.rejections(limit=limit, cursor=cursor))


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
