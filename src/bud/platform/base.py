"""The platform interface: what deployment actions need from the system they act on.

The built-in platform keeps models, clusters and deployments in the store and emits the
platform events itself; another implementation could call a real platform's API.
"""

from __future__ import annotations

from typing import Any, Protocol


class Platform(Protocol):
    async def get_cluster(self, cluster_id: str) -> dict[str, Any]: ...

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
