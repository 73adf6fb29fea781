"""Health, metrics, actions, channels and secrets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import PlainTextResponse, Response

from bud import outbound, schemas
from bud.server.deps import BudDep
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json
from bud.services.common import iso_times

router = APIRouter(tags=["meta"], route_class=CheckedRoute)

_CHANNEL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "`{url}` for slack and webhook, `{smtp_url, from}` for email",
                    "properties": {
                        "url": {"type": "string"},
                        "smtp_url": {"type": "string"},
                        "from": {"type": "string"},
                    },
                }
            }
        },
    }
}
_SECRET_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["value"],
                    "properties": {"value": {"type": "string"}},
                }
            }
        },
    }
}


@router.get("/healthz", response_model=schemas.Health)
async def health(bud: BudDep) -> Json:
    """Liveness and readiness: the store answers; which store, how many triggers are loaded,
    this process's worker id, the processes sharing the store and the NATS consumer's lag.
    Open without an API key."""
    async with bud.repo.read() as session:
        await session.ping()
    processes = [iso_times(p, "started_at", "last_seen") for p in await bud.engine.processes()]
    return Json(
        {
            "status": "ok",
            "store": bud.repo.dialect,
            "processes": processes,
            "nats": await bud.nats.lag() if bud.nats is not None else None,
            "triggers": len(bud.engine.catalogue.matcher),
            "worker": bud.engine.worker_id,
        }
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(bud: BudDep) -> Response:
    """Prometheus metrics in the text exposition format (listed in docs/operations.md)."""
    return Response(generate_latest(bud.engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/actions", response_model=schemas.Page[schemas.Action])
async def actions_list(bud: BudDep) -> Json:
    """Every registered action with its params schema, outputs, timeout, retry policy and
    whether it is idempotent."""
    return Json({"items": [a.to_dict() for a in bud.registry.all()], "next_cursor": None})


@router.get("/v1/actions/{name}", response_model=schemas.Action)
async def actions_get(name: str, bud: BudDep) -> Json:
    """One action by name."""
    return Json(bud.registry.get(name).to_dict())


@router.get("/v1/channels", response_model=schemas.Items[schemas.Channel])
async def channels_list(bud: BudDep) -> Json:
    """Notification channels, from settings and set through the API (credentials in URLs
    masked)."""
    return Json(await bud.config.channels())


@router.put("/v1/channels/{name}", response_model=schemas.Channel, openapi_extra=_CHANNEL_BODY)
async def channels_set(name: str, bud: BudDep, body: dict[str, Any] = Body(...)) -> Json:
    """Configure a channel: `slack` or `webhook` take `{url}`, `email` takes
    `{smtp_url, from}`. URLs follow the outbound policy (docs/operations.md)."""
    if name in ("slack", "webhook"):
        await outbound.validate_url(bud.settings, body.get("url"), "url")
    return Json(await bud.config.set_channel(name, body))


@router.delete("/v1/channels/{name}", status_code=204)
async def channels_delete(name: str, bud: BudDep) -> Response:
    """Remove a channel set through the API."""
    await bud.config.delete_channel(name)
    return Response(status_code=204)


@router.get("/v1/secrets", response_model=schemas.Items[schemas.Secret])
async def secrets_list(bud: BudDep) -> Json:
    """Secret names (never their values), from settings and the API."""
    return Json(await bud.config.secrets())


@router.put("/v1/secrets/{name}", response_model=schemas.Secret, openapi_extra=_SECRET_BODY)
async def secrets_set(name: str, bud: BudDep, body: dict[str, Any] = Body(...)) -> Json:
    """Set a secret for templates (`{{ secrets.<name> }}`); it is masked wherever recorded."""
    return Json(await bud.config.set_secret(name, body.get("value")))


@router.delete("/v1/secrets/{name}", status_code=204)
async def secrets_delete(name: str, bud: BudDep) -> Response:
    """Delete a secret set through the API."""
    await bud.config.delete_secret(name)
    return Response(status_code=204)
