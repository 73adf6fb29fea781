"""Inbound webhooks: create, list, get, delete (admin scope), and deliveries (signed, no key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from bud import schemas
from bud.server.deps import BudDep
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json

router = APIRouter(tags=["hooks"], route_class=CheckedRoute)


class HookIn(BaseModel):
    event_type: Any = Field(None, description="the custom event type deliveries become")
    name: Any = None
    description: Any = None
    schema_: Any = Field(None, alias="schema", description="JSON Schema of the deliveries' data")


_DELIVERY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": True}}
        },
    },
    "security": [],
    "parameters": [
        {
            "name": "X-Hub-Signature-256",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "sha256=<hex HMAC-SHA256 of the body under the hook's secret>",
        },
        {
            "name": "X-Hub-Delivery",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "the delivery id (or X-GitHub-Delivery, X-Bud-Delivery): one is "
            "required; a delivery id seen before stores nothing (409)",
        },
        {
            "name": "X-Bud-Timestamp",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "unix seconds; when sent, the signature covers '<timestamp>.<body>' "
            "and the time must be within 300 s of the server's",
        },
    ],
}


@router.post("/v1/hooks", status_code=201, response_model=schemas.Hook)
async def hooks_create(body: HookIn, bud: BudDep) -> Json:
    """Create an inbound webhook for a custom event type (registered now when new, with the
    optional `schema`). The answer holds the hook's `secret`, once: deliveries are signed
    with it."""
    return Json(
        await bud.hooks.create(body.event_type, body.name, body.schema_, body.description),
        status_code=201,
    )


@router.get("/v1/hooks", response_model=schemas.Items[schemas.Hook])
async def hooks_list(bud: BudDep) -> Json:
    """Every hook: id, name, event type, URL path (never the secret)."""
    return Json(await bud.hooks.list())


@router.get("/v1/hooks/{hook_id}", response_model=schemas.Hook)
async def hooks_get(hook_id: str, bud: BudDep) -> Json:
    """One hook (never its secret)."""
    return Json(await bud.hooks.get(hook_id))


@router.delete("/v1/hooks/{hook_id}", status_code=204)
async def hooks_delete(hook_id: str, bud: BudDep) -> Response:
    """Delete a hook: its deliveries are refused (404) from now on."""
    await bud.hooks.delete(hook_id)
    return Response(status_code=204)


@router.post(
    "/v1/hooks/{hook_id}",
    status_code=202,
    response_model=schemas.HookDelivery,
    openapi_extra=_DELIVERY,
)
async def hooks_deliver(hook_id: str, request: Request, bud: BudDep) -> Json:
    """A delivery: the JSON body becomes an event of the hook's type. No API key: the
    `X-Hub-Signature-256` HMAC is the credential (401 when it is missing or wrong, and
    nothing is stored). A delivery id seen before answers 409 `duplicate_delivery`."""
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    return Json(await bud.hooks.deliver(hook_id, body, headers), status_code=202)
