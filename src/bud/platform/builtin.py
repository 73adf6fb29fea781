"""The built-in platform: a registry of models, clusters and deployments that emits events.

Every change and the event it emits are written in one transaction, so an event is never
lost nor emitted for a change that did not happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import httpx

from bud import outbound
from bud.clock import Clock
from bud.engine.ingest import Ingestor
from bud.engine.records import derived_event_id
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.ids import new_id
from bud.platform.base import CLUSTER_STATUSES, DEPLOYMENT_STATUSES
from bud.platform.operations import PlatformOperations
from bud.settings import Settings
from bud.store import Repository, Session

log = logging.getLogger("bud.platform")

MODEL_FIELDS = {"name", "source", "uri", "created_by"}


def model_data(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **(row.get("metadata") or {}),
        "model_id": row["id"],
        "model_name": row["name"],
        "model_source": row["source"],
        "created_by": row.get("created_by"),
        "uri": row.get("uri"),
    }


class BuiltinPlatform(PlatformOperations):
    def __init__(
        self, repo: Repository, ingestor: Ingestor, clock: Clock, settings: Settings
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.ingestor = ingestor
        self.clock = clock
        self._probe: asyncio.Task[None] | None = None

    def _wake(self) -> None:
        self.ingestor.signals.wake()

    async def list_records(
        self, kind: str, where: dict[str, Any], limit: int, after: str | None
    ) -> list[dict[str, Any]]:
        async with self.repo.read() as session:
            return await session.list_records(kind, where=where, limit=limit, after=after)

    async def get_record(self, kind: str, record_id: str, noun: str) -> dict[str, Any]:
        async with self.repo.read() as session:
            row = await session.get_record(kind, record_id)
        if row is None:
            raise NotFoundError(f"{noun} {record_id} not found")
        return row

    async def _emit(
        self,
        tx: Session,
        event_type: str,
        data: dict[str, Any],
        *,
        cause: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> None:
        envelope: dict[str, Any] = {"event_type": event_type, "data": data, "source": "budplatform"}
        if cause:
            envelope.update(
                {k: v for k, v in cause.items() if k in ("correlation_id", "causation_id", "depth")}
            )
        if key:
            envelope["event_id"] = derived_event_id(key, event_type)
        await self.ingestor.ingest([envelope], default_source="budplatform", session=tx)

    # -- models --------------------------------------------------------------------------
    async def add_model(
        self,
        name: str,
        source: str,
        uri: str | None = None,
        created_by: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        model_id: str | None = None,
        idempotency_key: str | None = None,
        cause: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not name or not isinstance(name, str):
            raise ValidationError("name: a model needs a name", details={"path": "name"})
        if not source or not isinstance(source, str):
            raise ValidationError(
                "source: a model needs a source such as 'hugging_face'", details={"path": "source"}
            )
        now = self._now()
        if idempotency_key and not model_id:
            # a re-run step registers the same model, not a second one
            model_id = "model_" + derived_event_id(idempotency_key, "model")[4:]
        row = {
            "id": model_id or new_id("model"),
            "name": name,
            "source": source,
            "uri": uri,
            "metadata": dict(metadata or {}),
            "created_by": created_by,
            "created_at": now,
            "updated_at": now,
        }
        async with self.repo.transaction() as tx:
            if model_id:
                existing = await tx.get_record("models", model_id)
                if existing is not None and idempotency_key:
                    return existing
                if existing is not None:
                    raise ConflictError(f"model {model_id} already exists")
            await tx.insert_record("models", row)
            await self._emit(tx, "model.added", model_data(row), cause=cause, key=idempotency_key)
        self._wake()
        return row

    async def get_model(self, model_id: str) -> dict[str, Any]:
        async with self.repo.read() as tx:
            row = await tx.get_record("models", model_id)
        if row is None:
            raise NotFoundError(f"model {model_id} not found")
        return row

    async def update_model(self, model_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        if not changes:
            raise ValidationError("no changes given", details={"path": "body"})
        async with self.repo.transaction() as tx:
            row = await tx.get_record("models", model_id)
            if row is None:
                raise NotFoundError(f"model {model_id} not found")
            metadata = dict(row["metadata"] or {})
            values: dict[str, Any] = {}
            applied: dict[str, Any] = {}
            for key, value in changes.items():
                column = {"model_name": "name", "model_source": "source"}.get(key, key)
                if column in MODEL_FIELDS:
                    if row[column] != value:
                        values[column] = value
                        applied[key] = value
                elif metadata.get(key) != value or key not in metadata:
                    metadata[key] = value
                    applied[key] = value
            values.update(metadata=metadata, updated_at=self._now())
            await tx.update_record("models", model_id, values)
            row.update(values)
            if applied:
                await self._emit(tx, "model.updated", {**model_data(row), "changes": applied})
        self._wake()
        return row

    async def delete_model(self, model_id: str) -> None:
        async with self.repo.transaction() as tx:
            if not await tx.delete_record("models", model_id):
                raise NotFoundError(f"model {model_id} not found")

    # -- clusters ------------------------------------------------------------------------
    async def create_cluster(
        self,
        name: str,
        cluster_id: str | None = None,
        environment: str | None = None,
        status: str = "ready",
        health_url: str | None = None,
    ) -> dict[str, Any]:
        if status not in CLUSTER_STATUSES:
            raise ValidationError(
                f"status: must be one of {', '.join(CLUSTER_STATUSES)}", details={"path": "status"}
            )
        now = self._now()
        row = {
            "id": cluster_id or new_id("cluster"),
            "name": name,
            "environment": environment,
            "status": status,
            "reason": "created",
            "health_url": health_url,
            "created_at": now,
            "updated_at": now,
        }
        async with self.repo.transaction() as tx:
            if await tx.get_record("clusters", str(row["id"])):
                raise ConflictError(f"cluster {row['id']} already exists")
            await tx.insert_record("clusters", row)
            await self._record_check(tx, row, None, "created", "created")
            if status in ("ready", "unhealthy"):
                await self._emit(tx, f"cluster.{status}", self._cluster_data(row, None, "created"))
        self._wake()
        return row

    @staticmethod
    def _cluster_data(
        row: dict[str, Any], previous: str | None, reason: str | None
    ) -> dict[str, Any]:
        return {
            "cluster_id": row["id"],
            "cluster_name": row["name"],
            "environment": row["environment"],
            "previous_status": previous,
            "reason": reason,
        }

    async def get_cluster(self, cluster_id: str) -> dict[str, Any]:
        async with self.repo.read() as tx:
            row = await tx.get_record("clusters", cluster_id)
        if row is None:
            raise NotFoundError(f"cluster {cluster_id} not found")
        return row

    async def update_cluster(
        self,
        cluster_id: str,
        *,
        status: str | None = None,
        reason: str | None = None,
        source: str = "request",
        **fields: Any,
    ) -> dict[str, Any]:
        if status is not None and status not in CLUSTER_STATUSES:
            raise ValidationError(
                f"status: must be one of {', '.join(CLUSTER_STATUSES)}", details={"path": "status"}
            )
        async with self.repo.transaction() as tx:
            row = await tx.get_record("clusters", cluster_id)
            if row is None:
                raise NotFoundError(f"cluster {cluster_id} not found")
            values = {
                k: v
                for k, v in fields.items()
                if k in ("name", "environment", "health_url") and v is not None
            }
            previous = row["status"]
            if status is not None and status != previous:
                values.update(status=status, reason=reason or "set by request")
            values["updated_at"] = self._now()
            await tx.update_record("clusters", cluster_id, values)
            row.update(values)
            if status is not None and status != previous:
                await self._record_check(tx, row, previous, row["reason"], source)
            if status is not None and status != previous and status in ("ready", "unhealthy"):
                await self._emit(
                    tx, f"cluster.{status}", self._cluster_data(row, previous, row["reason"])
                )
        self._wake()
        return row

    async def delete_cluster(self, cluster_id: str) -> None:
        async with self.repo.transaction() as tx:
            if not await tx.delete_record("clusters", cluster_id):
                raise NotFoundError(f"cluster {cluster_id} not found")
            await self._forget_cluster(tx, cluster_id)

    async def probe_health(self) -> None:
        """Probe every cluster with a health URL once; a change of state emits its event."""
        async with self.repo.read() as tx:
            rows = await tx.list_records(
                "clusters", where={"health_url": ...}, limit=None, after=None
            )
        # Probes follow the outbound policy (bud.outbound).
        async with outbound.client(self.settings, timeout=5.0) as client:
            for row in rows:
                try:
                    response = await client.get(row["health_url"])
                    ok = response.is_success
                    reason = (
                        f"health check {row['health_url']} answered HTTP {response.status_code}"
                    )
                except httpx.HTTPError as exc:
                    ok, reason = (
                        False,
                        f"health check {row['health_url']} failed: {type(exc).__name__}",
                    )
                status = "ready" if ok else "unhealthy"
                if status != row["status"]:
                    await self.update_cluster(
                        row["id"], status=status, reason=reason, source="probe"
                    )

    def start_probing(self, interval: float) -> None:
        async def loop() -> None:
            while True:
                try:
                    await self.probe_health()
                except Exception:
                    log.exception("health probe failed")
                await asyncio.sleep(interval)

        self._probe = asyncio.create_task(loop(), name="bud-health-probe")

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe

    # -- deployments ---------------------------------------------------------------------
    async def create_deployment(
        self,
        model_id: str,
        cluster_id: str,
        deployment_name: str,
        *,
        idempotency_key: str | None = None,
        cause: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not deployment_name:
            raise ValidationError(
                "deployment_name: a deployment needs a name", details={"path": "deployment_name"}
            )
        now = self._now()
        async with self.repo.transaction() as tx:
            if idempotency_key:
                existing = await tx.deployment_by_key(idempotency_key)
                if existing is not None:
                    return existing
            model = await tx.get_record("models", model_id)
            cluster = await tx.get_record("clusters", cluster_id)
            error = None
            if model is None:
                error = f"model {model_id} not found"
            elif cluster is None:
                error = f"cluster {cluster_id} not found"
            elif cluster["status"] != "ready":
                error = f"cluster {cluster_id} is {cluster['status']}, not ready"
            row = {
                "id": new_id("dep"),
                "name": deployment_name,
                "model_id": model_id,
                "cluster_id": cluster_id,
                "status": "failed" if error else self._started_status(),
                "error_message": error,
                "idempotency_key": idempotency_key,
                "created_at": now,
                "updated_at": now,
            }
            await tx.insert_record("deployments", row)
            version = (model or {}).get("metadata", {}).get("version")
            await self._add_revision(
                tx,
                row,
                1,
                model_version=None if version is None else str(version),
                config={},
                reason="created",
            )
            data = {
                "deployment_id": row["id"],
                "deployment_name": deployment_name,
                "model_id": model_id,
                "model_name": model["name"] if model else None,
                "cluster_id": cluster_id,
                "environment": cluster["environment"] if cluster else None,
            }
            if error:
                data["error_message"] = error
            await self._emit(
                tx,
                "deployment.failed" if error else "deployment.created",
                data,
                cause=cause,
                key=idempotency_key,
            )
        self._wake()
        return row

    def _started_status(self) -> str:
        return (
            "pending"
            if getattr(self.settings, "platform_deployments_pending", False)
            else "running"
        )

    async def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        async with self.repo.read() as tx:
            row = await tx.get_record("deployments", deployment_id)
        if row is None:
            raise NotFoundError(f"deployment {deployment_id} not found")
        return row

    async def update_deployment(
        self, deployment_id: str, *, status: str | None = None, error_message: str | None = None
    ) -> dict[str, Any]:
        if status is not None and status not in DEPLOYMENT_STATUSES:
            raise ValidationError(
                f"status: must be one of {', '.join(DEPLOYMENT_STATUSES)}",
                details={"path": "status"},
            )
        async with self.repo.transaction() as tx:
            row = await tx.get_record("deployments", deployment_id)
            if row is None:
                raise NotFoundError(f"deployment {deployment_id} not found")
            previous = row["status"]
            values: dict[str, Any] = {"updated_at": self._now()}
            if status is not None:
                values["status"] = status
            if error_message is not None:
                values["error_message"] = error_message
            if status == "failed" and not (error_message or row["error_message"]):
                values["error_message"] = "marked failed"
            await tx.update_record("deployments", deployment_id, values)
            if status is not None and status != previous:
                await self._mark_revision(tx, {**row, **values})
            row.update(values)
            ready = status == "running" and previous == "pending"
            if (status == "failed" and previous != "failed") or ready:
                model = await tx.get_record("models", row["model_id"])
                cluster = await tx.get_record("clusters", row["cluster_id"])
                data = {
                    "deployment_id": row["id"],
                    "deployment_name": row["name"],
                    "model_id": row["model_id"],
                    "model_name": model["name"] if model else None,
                    "cluster_id": row["cluster_id"],
                    "environment": cluster["environment"] if cluster else None,
                }
                if ready:
                    await self._emit(tx, "deployment.ready", data)
                else:
                    data["error_message"] = row["error_message"]
                    await self._emit(tx, "deployment.failed", data)
        self._wake()
        return row

    async def delete_deployment(
        self, deployment_id: str, *, cause: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        async with self.repo.transaction() as tx:
            row = await tx.get_record("deployments", deployment_id)
            if row is None:
                raise NotFoundError(f"deployment {deployment_id} not found")
            await tx.delete_record("deployments", deployment_id)
            await self._forget_deployment(tx, deployment_id)
        return row
