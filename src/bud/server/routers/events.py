"""Events and event types: publish, read, register."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from bud import schemas
from bud.errors import BudError
from bud.server.deps import BudDep
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json
from bud.services import Bud

router = APIRouter(tags=["events"], route_class=CheckedRoute)
log = logging.getLogger("bud.server.events")


class EventIn(BaseModel):
    """An event envelope to publish; only ``event_type`` is required."""

    model_config = ConfigDict(extra="allow")
    event_type: str = Field(description="a built-in or registered type, e.g. model.added")
    data: dict[str, Any] = Field(default_factory=dict, description="checked against the type")
    source: str | None = Field(None, description="who sent it; default 'api'")
    event_id: str | None = Field(None, description="the dedup key; generated when absent")
    timestamp: str | None = Field(None, description="ISO 8601; default now")
    test: bool = Field(False, description="record and explain, start nothing")


class BatchIn(BaseModel):
    events: list[dict[str, Any]] = Field(description="envelopes, as for POST /v1/events")


class EventTypeIn(BaseModel):
    name: str = Field(max_length=128)
    description: str = ""
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    example: dict[str, Any] | None = None


# The publish body is read as a plain dict (the engine validates the envelope itself, faster
# than a model would); the document still shows the envelope's shape.
_ENVELOPE = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": EventIn.model_json_schema()}},
    }
}


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


@router.post(
    "/v1/events",
    status_code=202,
    response_model=schemas.Event,
    openapi_extra=_ENVELOPE,
)
async def events_publish(body: dict[str, Any], bud: BudDep, request: Request) -> Json:
    """Publish one event. It is stored, matched against every enabled trigger of its type and
    starts their executions before the answer (202). Publishing an `event_id` again stores
    and fires nothing and answers `duplicate: true`. `fired_count` says how many triggers
    fired. A refused publish is kept in the ingest error log."""
    (envelope,) = await _publish(request, bud, [body])
    return Json(envelope, status_code=202)


@router.post("/v1/events/batch", status_code=202, response_model=schemas.BatchResult)
async def events_publish_many(body: BatchIn, bud: BudDep, request: Request) -> Json:
    """Publish many events at once: all are validated first, then stored and matched in one
    transaction. Answers every accepted envelope and the counts of accepted and duplicate
    events."""
    envelopes = await _publish(request, bud, body.events)
    dups = sum(1 for e in envelopes if e["duplicate"])
    return Json(
        {"events": envelopes, "accepted": len(envelopes) - dups, "duplicates": dups},
        status_code=202,
    )


@router.get("/v1/events", response_model=schemas.Page[schemas.Event])
async def events_list(
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
    """Stored events, newest first, filtered by type, source, received time (`since`, ISO
    8601) and whether they were test events."""
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


@router.get("/v1/ingest-errors", response_model=schemas.Page[schemas.IngestError])
async def ingest_errors_list(
    bud: BudDep, limit: int | None = None, cursor: str | None = None
) -> Json:
    """Publishes the server refused, newest first: error, time, source and the body (truncated)."""
    return Json(await bud.events.rejections(limit=limit, cursor=cursor))


@router.get("/v1/events/{event_id}", response_model=schemas.Event)
async def events_get(event_id: str, bud: BudDep) -> Json:
    """One event with its `decisions` (one per candidate trigger: fired, filtered with the
    failing clause, disabled, suppressed...) and the `executions` it started."""
    return Json(await bud.events.get(event_id))


@router.get("/v1/event-types", response_model=schemas.Page[schemas.EventType])
async def event_types_list(bud: BudDep) -> Json:
    """Every event type: the built-in platform types and the registered custom ones, each
    with its data schema and an example."""
    return Json({**bud.events.list_types(), "next_cursor": None})


@router.post("/v1/event-types", status_code=201, response_model=schemas.EventType)
async def event_types_register(body: EventTypeIn, bud: BudDep) -> Json:
    """Register a custom event type (`team.thing_happened`), optionally with a JSON Schema
    for its data and an example event data."""
    return Json(
        await bud.events.register_type(body.name, body.description, body.schema_, body.example),
        status_code=201,
    )


@router.get("/v1/event-types/{name}", response_model=schemas.EventType)
async def event_types_get(name: str, bud: BudDep) -> Json:
    """One event type by name."""
    return Json(bud.events.get_type(name))
