"""Operator insight: dry runs, backtests, trigger stats and replay (fire nothing by themselves)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from bud import schemas
from bud.server.deps import BudDep
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json
from bud.services import Bud
from bud.services.insights import InsightService

router = APIRouter(tags=["insights"], route_class=CheckedRoute)


def _insights(bud: Bud) -> InsightService:
    return bud.insights


class DryRunIn(BaseModel):
    event: Any = None
    params: Any = None


class BacktestIn(BaseModel):
    event_type: Any = None
    filter: Any = None
    limit: Any = None


class TriggerBacktestIn(BaseModel):
    limit: Any = None


class ReplayIn(BaseModel):
    event_ids: Any = None
    event_type: Any = None
    since: Any = None
    until: Any = None
    trigger_id: str | None = None
    bypass_dedup: bool = False
    limit: Any = None


@router.post("/v1/pipelines/{pipeline_id}/dry-run", response_model=schemas.DryRunResult)
async def pipelines_dry_run(pipeline_id: str, bud: BudDep, body: DryRunIn | None = None) -> Json:
    """Render every step's params and condition against an event (secrets masked); nothing is
    stored or run. The event may be partial: what its type's schema misses is listed in
    `warnings`, and a step that cannot render says why in its `error`."""
    body = body or DryRunIn()
    return Json(await _insights(bud).dry_run(pipeline_id, body.event, body.params))


@router.post("/v1/event-triggers/backtest", response_model=schemas.BacktestResult)
async def event_triggers_backtest_filter(body: BacktestIn, bud: BudDep) -> Json:
    """How a filter would have treated the newest stored events of a type: how many matched,
    examples, and near misses with the clause that failed."""
    return Json(await _insights(bud).backtest(body.event_type, body.filter, body.limit))


@router.post("/v1/event-triggers/{trigger_id}/backtest", response_model=schemas.BacktestResult)
async def event_triggers_backtest(
    trigger_id: str, bud: BudDep, body: TriggerBacktestIn | None = None
) -> Json:
    """Backtest a trigger's own event type and filter over the newest stored events."""
    return Json(await _insights(bud).backtest_trigger(trigger_id, body.limit if body else None))


@router.get("/v1/event-triggers/{trigger_id}/stats", response_model=schemas.TriggerStats)
async def event_triggers_stats(trigger_id: str, bud: BudDep) -> Json:
    """A trigger's fire count, its decisions by outcome, suppressions by reason and fire
    rates."""
    return Json(await _insights(bud).stats(trigger_id))


@router.post("/v1/events/replay", response_model=schemas.ReplayResult)
async def events_replay(body: ReplayIn, bud: BudDep) -> Json:
    """Deliver stored events again, to their triggers or to one chosen trigger (dedup honoured
    unless `bypass_dedup`). Give event ids, or a type with an optional received-time range."""
    return Json(
        await _insights(bud).replay(
            event_ids=body.event_ids,
            event_type=body.event_type,
            since=body.since,
            until=body.until,
            trigger_id=body.trigger_id,
            bypass_dedup=body.bypass_dedup,
            limit=body.limit,
        )
    )
