"""The platform interface: what deployment actions need from the system they act on.

The built-in platform keeps models, clusters and deployments in the store and emits the
platform events itself; another implementation could call a real platform's API.
"""

from __future__ import annotations

from typing import Any, Protocol

CLUSTER_STATUSES = ("ready", "unhealthy", "provisioning", "offline")
DEPLOYMENT_STATUSES = ("pending", "running", "failed", "stopped")


class Platform(Protocol):
    async def get_cluster(self, cluster_id: str) -> dict[str, Any]: ...

    async def get_deployment(self, deployment_id: str) -> dict[str, Any]: ...

    async def list_records(
        self, kind: str, where: dict[str, Any], limit: int, after: str | None
    ) -> list[dict[str, Any]]: ...

    async def create_deployment(
        self,
        model_id: str,
        cluster_id: str,
        deployment_name: str,
        *,
        idempotency_key: str | None = None,
        cause: dict[str, Any] | None = None,
    ) -> dict[str, Any]: ...

    async def delete_deployment(
        self, deployment_id: str, *, cause: dict[str, Any] | None = None
    ) -> dict[str, Any]: ...

    async def revise_deployment(
        self,
        deployment_id: str,
        *,
        model_version: str | None = None,
        config: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """A new revision: ``{"deployment", "revision", "previous", "changed"}``."""

    async def rollback_deployment(
        self,
        deployment_id: str,
        *,
        to_revision: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any] | None:
        """Back to the last good revision: ``{"deployment", "revision", "previous",
        "target"}``, or None when there is none."""

    async def models_waiting_for(self, cluster_id: str) -> list[dict[str, Any]]: ...

    async def diagnose_cluster(self, cluster_id: str, checks: int = 10) -> dict[str, Any]:
        """``{"cluster", "deployments", "checks"}`` (health results newest first)."""

    async def configure_monitoring(
        self, deployment_id: str, config: dict[str, Any], *, configured_by: str | None = None
    ) -> tuple[dict[str, Any], bool]: ...
