"""Pipelines: definitions, versions, validation and manual runs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.responses import Response

from bud import demo, schemas
from bud.server.deps import BudDep
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json

router = APIRouter(tags=["pipelines"], route_class=CheckedRoute)


class PipelineIn(BaseModel):
    name: Any
    definition: Any
    description: str | None = None
    id: str | None = None


class PipelinePatch(BaseModel):
    name: Any = None
    definition: Any = None
    description: str | None = None


class ValidateIn(BaseModel):
    definition: Any


class RunIn(BaseModel):
    params: Any = None
    event: Any = None


@router.post(
    "/v1/pipelines",
    status_code=201,
    response_model=schemas.Pipeline,
    responses={
        200: {
            "model": schemas.Pipeline,
            "description": "Demo mode only: this is one of the demo's own example pipelines, "
            "already loaded; it is answered as is and nothing is created.",
        }
    },
)
async def pipelines_create(body: PipelineIn, bud: BudDep) -> Json:
    """Create a pipeline (version 1). The definition is validated: unique step ids, known
    actions, params against each action's schema, dependencies that exist, no cycle; every
    problem is listed in `details.errors`. `id` chooses the id (409 when taken)."""
    if bud.settings.demo:
        existing = await demo.existing_pipeline(bud, body.name, body.definition, body.id)
        if existing is not None:
            return Json(existing, status_code=200)
    return Json(
        await bud.pipelines.create(body.name, body.definition, body.description, body.id),
        status_code=201,
    )


@router.get("/v1/pipelines", response_model=schemas.Page[schemas.Pipeline])
async def pipelines_list(bud: BudDep, limit: int | None = None, cursor: str | None = None) -> Json:
    """Pipelines with their trigger count and last execution."""
    return Json(await bud.pipelines.list(limit, cursor))


@router.post("/v1/pipelines/validate", response_model=schemas.ValidationResult)
async def pipelines_validate(body: ValidateIn, bud: BudDep) -> Json:
    """Check a definition without saving it; always 200, with `valid` and every problem."""
    return Json(bud.pipelines.validate(body.definition))


@router.get("/v1/pipelines/{pipeline_id}", response_model=schemas.Pipeline)
async def pipelines_get(pipeline_id: str, bud: BudDep) -> Json:
    """One pipeline with its current definition and version."""
    return Json(await bud.pipelines.get(pipeline_id))


@router.patch("/v1/pipelines/{pipeline_id}", response_model=schemas.Pipeline)
async def pipelines_update(pipeline_id: str, body: PipelinePatch, bud: BudDep) -> Json:
    """Change a pipeline's name, description or definition (a new definition is a new
    version). `warnings` lists, per trigger, template references its event type lacks."""
    return Json(
        await bud.pipelines.update(
            pipeline_id, name=body.name, definition=body.definition, description=body.description
        )
    )


@router.delete("/v1/pipelines/{pipeline_id}", status_code=204)
async def pipelines_delete(pipeline_id: str, bud: BudDep) -> Response:
    """Delete a pipeline and its triggers."""
    await bud.pipelines.delete(pipeline_id)
    return Response(status_code=204)


@router.get(
    "/v1/pipelines/{pipeline_id}/versions",
    response_model=schemas.Items[schemas.PipelineVersion],
)
async def pipelines_versions(pipeline_id: str, bud: BudDep) -> Json:
    """Every version of a pipeline's definition, oldest first."""
    return Json(await bud.pipelines.versions(pipeline_id))


@router.post("/v1/pipelines/{pipeline_id}/run", status_code=201, response_model=schemas.Execution)
async def pipelines_run(pipeline_id: str, body: RunIn, bud: BudDep) -> Json:
    """Start an execution by hand, with run `params` and optionally an `event` for the
    templates (validated, not stored)."""
    execution_id = await bud.pipelines.run(pipeline_id, body.params, body.event)
    return Json(await bud.executions.get(execution_id), status_code=201)
