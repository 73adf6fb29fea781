from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from starlette.responses import Response

from bud import schemas
from bud.server.deps import BudDep
from bud.server.responses import Json

router = APIRouter(tags=["pipelines"])


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


@router.post("/v1/pipelines", status_code=201, response_model=schemas.Pipeline)
async def create_pipeline(body: PipelineIn, bud: BudDep) -> Json:
    return Json(
        await bud.pipelines.create(body.name, body.definition, body.description, body.id),
        status_code=201,
    )


@router.get("/v1/pipelines", response_model=schemas.Page[schemas.Pipeline])
async def list_pipelines(bud: BudDep, limit: int | None = None, cursor: str | None = None) -> Json:
    return Json(await bud.pipelines.list(limit, cursor))


@router.post("/v1/pipelines/validate", response_model=schemas.ValidationResult)
async def validate_pipeline(body: ValidateIn, bud: BudDep) -> Json:
    return Json(bud.pipelines.validate(body.definition))


@router.get("/v1/pipelines/{pipeline_id}", response_model=schemas.Pipeline)
async def get_pipeline(pipeline_id: str, bud: BudDep) -> Json:
    return Json(await bud.pipelines.get(pipeline_id))


@router.patch("/v1/pipelines/{pipeline_id}", response_model=schemas.Pipeline)
async def update_pipeline(pipeline_id: str, body: PipelinePatch, bud: BudDep) -> Json:
    return Json(
        await bud.pipelines.update(
            pipeline_id, name=body.name, definition=body.definition, description=body.description
        )
    )


@router.delete("/v1/pipelines/{pipeline_id}", status_code=204)
async def delete_pipeline(pipeline_id: str, bud: BudDep) -> Response:
    await bud.pipelines.delete(pipeline_id)
    return Response(status_code=204)


@router.get("/v1/pipelines/{pipeline_id}/versions")
async def pipeline_versions(pipeline_id: str, bud: BudDep) -> Json:
    return Json(await bud.pipelines.versions(pipeline_id))


@router.post("/v1/pipelines/{pipeline_id}/run", status_code=201, response_model=schemas.Execution)
async def run_pipeline(pipeline_id: str, body: RunIn, bud: BudDep) -> Json:
    execution_id = await bud.pipelines.run(pipeline_id, body.params, body.event)
    return Json(await bud.executions.get(execution_id), status_code=201)
