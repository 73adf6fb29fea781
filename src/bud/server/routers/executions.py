"""Executions, their attempts, and notification deliveries."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from bud import schemas
from bud.server.deps import BudDep
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json

router = APIRouter(tags=["executions"], route_class=CheckedRoute)


@router.get("/v1/executions", response_model=schemas.Page[schemas.Execution])
async def executions_list(
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
    """Executions, newest first (without their steps), filtered by pipeline, trigger, event,
    status and creation time (`since`, `until`: ISO 8601)."""
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
async def executions_get(execution_id: str, bud: BudDep) -> Json:
    """One execution with its steps: status, attempts, rendered params (secrets masked),
    outputs, logs, error and timestamps."""
    return Json(await bud.executions.get(execution_id))


@router.get("/v1/executions/{execution_id}/attempts", response_model=schemas.Items[schemas.Attempt])
async def executions_attempts(execution_id: str, bud: BudDep) -> Json:
    """Every attempt of every step of an execution, oldest first."""
    return Json(await bud.executions.attempts(execution_id))


@router.post("/v1/executions/{execution_id}/cancel", response_model=schemas.Execution)
async def executions_cancel(execution_id: str, bud: BudDep) -> Json:
    """Cancel a queued or running execution (409 when it is already final)."""
    return Json(await bud.executions.cancel(execution_id))


class RetryIn(BaseModel):
    from_step: str | None = None


@router.post("/v1/executions/{execution_id}/retry", response_model=schemas.Execution)
async def executions_retry(execution_id: str, bud: BudDep, body: RetryIn | None = None) -> Json:
    """Run a failed or cancelled execution's unfinished steps again (409 otherwise); with
    `from_step`, that step and every step after it too (a succeeded execution as well)."""
    from_step = body.from_step if body else None
    return Json(await bud.executions.retry(execution_id, from_step=from_step))


@router.get("/v1/deliveries", response_model=schemas.Page[schemas.Delivery])
async def deliveries_list(
    bud: BudDep,
    execution_id: str | None = None,
    channel: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Json:
    """Notification deliveries, newest first: channel, target, status and error."""
    return Json(
        await bud.executions.deliveries(
            execution_id=execution_id, channel=channel, limit=limit, cursor=cursor
        )
    )
