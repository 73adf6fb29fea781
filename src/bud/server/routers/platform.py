"""The built-in platform: models, clusters and deployments, whose changes emit events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, field_validator
from starlette.responses import Response

from bud import outbound, schemas
from bud.platform.base import DEPLOYMENT_STATUSES
from bud.server.deps import BudDep
from bud.server.openapi import CheckedRoute
from bud.server.responses import Json
from bud.services.common import check_choice, check_limit, decode_cursor, iso_times, page

router = APIRouter(tags=["platform"], route_class=CheckedRoute)
TIMES = ("created_at", "updated_at")


# Lengths are those of the store's columns, the same on SQLite and PostgreSQL.
Name = Annotated[str, Field(max_length=256)]
Label = Annotated[str, Field(max_length=64)]
RefId = Annotated[str, Field(max_length=64)]
# A model's own fields that ``changes`` may set, and the longest value each column keeps.
MODEL_COLUMNS = {
    "name": 256,
    "model_name": 256,
    "source": 64,
    "model_source": 64,
    "created_by": 256,
}


class ModelIn(BaseModel):
    name: Name
    source: Label
    uri: str | None = None
    created_by: Name | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ModelPatch(BaseModel):
    changes: dict[str, Any]

    @field_validator("changes")
    @classmethod
    def _columns_fit(cls, changes: dict[str, Any]) -> dict[str, Any]:
        for key, limit in MODEL_COLUMNS.items():
            value = changes.get(key)
            nullable = key in ("created_by",)
            if key in changes and not (
                (value is None and nullable) or (isinstance(value, str) and len(value) <= limit)
            ):
                raise ValueError(f"changes.{key} must be a string of at most {limit} characters")
        if "uri" in changes and not isinstance(changes["uri"], str | None):
            raise ValueError("changes.uri must be a string or null")
        return changes


class ClusterIn(BaseModel):
    name: Name
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    environment: Label | None = None
    status: str = "ready"
    health_url: str | None = None


class ClusterPatch(BaseModel):
    status: str | None = None
    reason: str | None = None
    name: Name | None = None
    environment: Label | None = None
    health_url: str | None = None


class DeploymentIn(BaseModel):
    model_id: RefId
    cluster_id: RefId
    deployment_name: Name


class DeploymentPatch(BaseModel):
    status: str | None = None
    error_message: str | None = None


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return iso_times({k: v for k, v in row.items() if k != "idempotency_key"}, *TIMES)


async def _list(
    bud: BudDep,
    kind: str,
    where: dict[str, Any],
    limit: int | None,
    cursor: str | None,
) -> Json:
    limit = check_limit(limit)
    rows = await bud.platform.list_records(kind, where, limit + 1, decode_cursor(cursor))
    result = page(rows, limit, "id")
    result["items"] = [_out(r) for r in result["items"]]
    return Json(result)


@router.post("/v1/models", status_code=201, response_model=schemas.Model)
async def models_add(body: ModelIn, bud: BudDep) -> Json:
    """Register a model; emits `model.added`, whose `data` carries the model's metadata (e.g.
    `auto_deploy`)."""
    row = await bud.platform.add_model(
        body.name, body.source, body.uri, body.created_by, body.metadata
    )
    return Json(_out(row), status_code=201)


@router.get("/v1/models", response_model=schemas.Page[schemas.Model])
async def models_list(bud: BudDep, limit: int | None = None, cursor: str | None = None) -> Json:
    """Registered models."""
    return await _list(bud, "models", {}, limit, cursor)


@router.get("/v1/models/{model_id}", response_model=schemas.Model)
async def models_get(model_id: str, bud: BudDep) -> Json:
    """One model."""
    return Json(_out(await bud.platform.get_model(model_id)))


@router.patch("/v1/models/{model_id}", response_model=schemas.Model)
async def models_update(model_id: str, body: ModelPatch, bud: BudDep) -> Json:
    """Change a model's fields or metadata (`changes`); emits `model.updated` with the changes."""
    return Json(_out(await bud.platform.update_model(model_id, body.changes)))


@router.delete("/v1/models/{model_id}", status_code=204)
async def models_delete(model_id: str, bud: BudDep) -> Response:
    """Delete a model."""
    await bud.platform.delete_model(model_id)
    return Response(status_code=204)


@router.post("/v1/clusters", status_code=201, response_model=schemas.Cluster)
async def clusters_create(body: ClusterIn, bud: BudDep) -> Json:
    """Create a cluster, with a chosen `id` if given (409 when taken), an environment label, a
    status and an optional health URL that is probed (it follows the outbound policy)."""
    await outbound.validate_url(bud.settings, body.health_url, "health_url")
    row = await bud.platform.create_cluster(
        body.name, body.id, body.environment, body.status, body.health_url
    )
    return Json(_out(row), status_code=201)


@router.get("/v1/clusters", response_model=schemas.Page[schemas.Cluster])
async def clusters_list(bud: BudDep, limit: int | None = None, cursor: str | None = None) -> Json:
    """Clusters with their status."""
    return await _list(bud, "clusters", {}, limit, cursor)


@router.get("/v1/clusters/{cluster_id}", response_model=schemas.Cluster)
async def clusters_get(cluster_id: str, bud: BudDep) -> Json:
    """One cluster."""
    return Json(_out(await bud.platform.get_cluster(cluster_id)))


@router.patch("/v1/clusters/{cluster_id}", response_model=schemas.Cluster)
async def clusters_update(cluster_id: str, body: ClusterPatch, bud: BudDep) -> Json:
    """Change a cluster; a status change to `ready` or `unhealthy` emits `cluster.ready` /
    `cluster.unhealthy`."""
    await outbound.validate_url(bud.settings, body.health_url, "health_url")
    return Json(
        _out(
            await bud.platform.update_cluster(
                cluster_id,
                status=body.status,
                reason=body.reason,
                name=body.name,
                environment=body.environment,
                health_url=body.health_url,
            )
        )
    )


@router.delete("/v1/clusters/{cluster_id}", status_code=204)
async def clusters_delete(cluster_id: str, bud: BudDep) -> Response:
    """Delete a cluster."""
    await bud.platform.delete_cluster(cluster_id)
    return Response(status_code=204)


@router.post("/v1/deployments", status_code=201, response_model=schemas.Deployment)
async def deployments_create(body: DeploymentIn, bud: BudDep) -> Json:
    """Deploy a model to a cluster; emits `deployment.created`, or answers status `failed` with
    `error_message` and emits `deployment.failed` when it cannot be placed (unknown model,
    unhealthy cluster)."""
    row = await bud.platform.create_deployment(body.model_id, body.cluster_id, body.deployment_name)
    return Json(_out(row), status_code=201)


@router.get("/v1/deployments", response_model=schemas.Page[schemas.Deployment])
async def deployments_list(
    bud: BudDep,
    model_id: str | None = None,
    cluster_id: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Json:
    """Deployments, filtered by model, cluster and status."""
    where: dict[str, Any] = {}
    if model_id:
        where["model_id"] = model_id
    if cluster_id:
        where["cluster_id"] = cluster_id
    if status:
        check_choice(status, DEPLOYMENT_STATUSES, "status")
        where["status"] = status
    return await _list(bud, "deployments", where, limit, cursor)


@router.get("/v1/deployments/{deployment_id}", response_model=schemas.Deployment)
async def deployments_get(deployment_id: str, bud: BudDep) -> Json:
    """One deployment."""
    return Json(_out(await bud.platform.get_deployment(deployment_id)))


@router.patch("/v1/deployments/{deployment_id}", response_model=schemas.Deployment)
async def deployments_update(deployment_id: str, body: DeploymentPatch, bud: BudDep) -> Json:
    """Change a deployment's status; `failed` (with `error_message`) emits `deployment.failed`."""
    return Json(
        _out(
            await bud.platform.update_deployment(
                deployment_id, status=body.status, error_message=body.error_message
            )
        )
    )


@router.get(
    "/v1/deployments/{deployment_id}/revisions",
    response_model=schemas.Items[schemas.DeploymentRevision],
)
async def deployments_revisions(deployment_id: str, bud: BudDep) -> Json:
    """A deployment's revisions, oldest first: the model version and config each ran, whether
    it ran successfully (`good`) and why it was made (`created`, `updated`, `rollback`)."""
    rows = await bud.platform.list_revisions(deployment_id)
    return Json({"items": [iso_times(r, *TIMES) for r in rows]})


@router.get("/v1/monitors", response_model=schemas.Page[schemas.Monitor])
async def monitors_list(
    bud: BudDep,
    deployment_id: str | None = None,
    cluster_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Json:
    """The monitoring configured for deployments (by the `monitoring_configure` action),
    filtered by deployment and cluster."""
    where = {k: v for k, v in (("deployment_id", deployment_id), ("cluster_id", cluster_id)) if v}
    return await _list(bud, "monitors", where, limit, cursor)


@router.get("/v1/monitors/{monitor_id}", response_model=schemas.Monitor)
async def monitors_get(monitor_id: str, bud: BudDep) -> Json:
    """One monitor."""
    return Json(_out(await bud.platform.get_record("monitors", monitor_id, "monitor")))


@router.delete("/v1/deployments/{deployment_id}", status_code=204)
async def deployments_delete(deployment_id: str, bud: BudDep) -> Response:
    """Delete a deployment."""
    await bud.platform.delete_deployment(deployment_id)
    return Response(status_code=204)
