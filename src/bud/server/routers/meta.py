from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from bud import outbound, schemas
from bud.server.deps import BudDep
from bud.server.responses import Json
from bud.store import schema as t

router = APIRouter(tags=["meta"])


@router.get("/healthz")
async def healthz(bud: BudDep) -> Json:
    async with bud.store.read() as tx:
        await tx.count(t.pipelines)
    return Json(
        {
            "status": "ok",
            "store": bud.store.dialect,
            "triggers": len(bud.engine.matcher),
            "worker": bud.engine.worker_id,
        }
    )


@router.get("/metrics")
async def metrics(bud: BudDep) -> Response:
    return Response(generate_latest(bud.engine.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/actions")
async def list_actions(bud: BudDep) -> Json:
    return Json({"items": [a.to_dict() for a in bud.registry.all()], "next_cursor": None})


@router.get("/v1/actions/{name}", response_model=schemas.Action)
async def get_action(name: str, bud: BudDep) -> Json:
    return Json(bud.registry.get(name).to_dict())


@router.get("/v1/channels")
async def list_channels(bud: BudDep) -> Json:
    return Json(await bud.config.channels())


@router.put("/v1/channels/{name}", response_model=schemas.Channel)
async def set_channel(name: str, bud: BudDep, body: dict[str, Any] = Body(...)) -> Json:
    if name in ("slack", "webhook"):
        await outbound.validate_url(bud.settings, body.get("url"), "url")
    return Json(await bud.config.set_channel(name, body))


@router.delete("/v1/channels/{name}", status_code=204)
async def delete_channel(name: str, bud: BudDep) -> Response:
    await bud.config.delete_channel(name)
    return Response(status_code=204)


@router.get("/v1/secrets")
async def list_secrets(bud: BudDep) -> Json:
    return Json(await bud.config.secrets())


@router.put("/v1/secrets/{name}", response_model=schemas.Secret)
async def set_secret(name: str, bud: BudDep, body: dict[str, Any] = Body(...)) -> Json:
    return Json(await bud.config.set_secret(name, body.get("value")))


@router.delete("/v1/secrets/{name}", status_code=204)
async def delete_secret(name: str, bud: BudDep) -> Response:
    await bud.config.delete_secret(name)
    return Response(status_code=204)
