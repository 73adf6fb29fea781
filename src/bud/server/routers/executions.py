from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from bud import schemas
from bud.server.deps import BudDep
from bud.server.responses import Json

router = APIRouter(tags=["executions"])


@router.get("/v1/executions", response_model=schemas.Page[schemas.Execution])
async def list_executions(
    bud: BudDep,
    pipeline_id: str | None = None,
    trigger_id: str | None = None,
    event_id: str | None = None,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Json:
    return Json(
        await bud.executions.list(
            pipeline_id=pipeline_id,
            trigger_id=trigger_id,
            event_id=event_id,
            status=status,
            since=since,
            until=until,
            limit=limit,
            cursor=cursor,
        )
    )


@router.get("/v1/executions/{execution_id}", response_model=schemas.Execution)
async def get_execution(execution_id: str, bud: BudDep) -> Json:
    return Json(await bud.executions.get(execution_id))


@router.get("/v1/executions/{execution_id}/attempts")
async def execution_attempts(execution_id: str, bud: BudDep) -> Json:
    return Json(await bud.executions.attempts(execution_id))


@router.post("/v1/executions/{execution_id}/cancel", response_model=schemas.Execution)
async def cancel_execution(execution_id: str, bud: BudDep) -> Json:
    return Json(await bud.executions.cancel(execution_id))


class RetryIn(BaseModel):
    from_step: str | None = None


@router.post("/v1/executions/{execution_id}/retry", response_model=schemas.Execution)
async def retry_execution(execution_id: str, bud: BudDep, body: RetryIn | None = None) -> Json:
    """Run the unfinished steps again; with ``from_step``, that step and all after it too."""
    from_step = body.from_step if body else None
    return Json(await bud.executions.retry(execution_id, from_step=from_step))


@router.get("/v1/deliveries", response_model=schemas.Page[schemas.Delivery])
async def list_deliveries(
    bud: BudDep,
    execution_id: str | None = None,
    channel: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Json:
    return Json(
        await bud.executions.deliveries(
            execution_id=execution_id, channel=channel, limit=limit, cursor=cursor
        )
    )
