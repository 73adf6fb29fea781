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
from bud.settings import Settings
from bud.store import Repository, Session

log = logging.getLogger("bud.platform")

MODEL_FIELDS = {"name", "source", "uri", "created_by"}
# A model waits for cluster C when its metadata names C here and it has no live deployment on C.
TARGET_CLUSTER = "target_cluster"
LIVE_DEPLOYMENT = ("pending", "running")
HEALTH_HISTORY = 50  # health results kept per cluster


def model_data(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **(row.get("metadata") or {}),
        "model_id": row["id"],
        "model_name": row["name"],
        "model_source": row["source"],
        "created_by": row.get("created_by"),
        "uri": row.get("uri"),
    }


class BuiltinPlatform:
    def __init__(
        self, repo: Repository, ingestor: Ingestor, clock: Clock, settings: Settings
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.ingestor = ingestor
        self.clock = clock
        self._probe: asyncio.Task[None] | None = None

    def _now(self) -> float:
        return self.clock.now()

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
            for check in await self._checks(tx, cluster_id, None):
                await tx.delete_record("cluster_checks", check["id"])

    async def _record_check(
        self,
        tx: Session,
        row: dict[str, Any],
        previous: str | None,
        reason: str | None,
        source: str,
    ) -> None:
        """Keep a health result (a change of status) and drop the oldest past the limit."""
        await tx.insert_record(
            "cluster_checks",
            {
                "id": new_id("chk"),
                "cluster_id": row["id"],
                "status": row["status"],
                "previous_status": previous,
                "reason": reason,
                "source": source,
                "created_at": self._now(),
            },
        )
        for old in (await self._checks(tx, row["id"], None))[HEALTH_HISTORY:]:
            await tx.delete_record("cluster_checks", old["id"])

    @staticmethod
    async def _checks(tx: Session, cluster_id: str, limit: int | None) -> list[dict[str, Any]]:
        """A cluster's health results, newest first."""
        rows = await tx.list_records(
            "cluster_checks", where={"cluster_id": cluster_id}, limit=None, after=None
        )
        rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return rows if limit is None else rows[:limit]

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
                "status": "failed" if error else "running",
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
            row.update(values)
            if status is not None and status != previous:
                current = (await self._revisions(tx, deployment_id))[-1:]
                for rev in current:  # the current revision did (not) work out
                    marks: dict[str, Any] = {"status": status, "updated_at": self._now()}
                    if status == "running":
                        marks["good"] = True
                    elif status == "failed":
                        marks.update(good=False, error_message=row["error_message"])
                    await tx.update_record("deployment_revisions", rev["id"], marks)
            if status == "failed" and previous != "failed":
                model = await tx.get_record("models", row["model_id"])
                cluster = await tx.get_record("clusters", row["cluster_id"])
                await self._emit(
                    tx,
                    "deployment.failed",
                    {
                        "deployment_id": row["id"],
                        "deployment_name": row["name"],
                        "model_id": row["model_id"],
                        "model_name": model["name"] if model else None,
                        "cluster_id": row["cluster_id"],
                        "environment": cluster["environment"] if cluster else None,
                        "error_message": row["error_message"],
                    },
                )
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
            for rev in await self._revisions(tx, deployment_id):
                await tx.delete_record("deployment_revisions", rev["id"])
            for monitor in await tx.list_records(
                "monitors", where={"deployment_id": deployment_id}, limit=None, after=None
            ):
                await tx.delete_record("monitors", monitor["id"])
        return row

    # -- revisions: what a deployment ran, and whether it was good -------------------------
    async def _add_revision(
        self,
        tx: Session,
        deployment: dict[str, Any],
        number: int,
        *,
        model_version: str | None,
        config: dict[str, Any],
        reason: str,
        source_revision: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        now = self._now()
        rev = {
            "id": new_id("rev"),
            "deployment_id": deployment["id"],
            "revision": number,
            "model_version": model_version,
            "config": config,
            "status": deployment["status"],
            "good": deployment["status"] == "running",
            "reason": reason,
            "source_revision": source_revision,
            "error_message": deployment.get("error_message"),
            "idempotency_key": idempotency_key,
            "created_at": now,
            "updated_at": now,
        }
        await tx.insert_record("deployment_revisions", rev)
        return rev

    @staticmethod
    async def _revisions(tx: Session, deployment_id: str) -> list[dict[str, Any]]:
        """A deployment's revisions, oldest first (the last is the current one)."""
        rows = await tx.list_records(
            "deployment_revisions", where={"deployment_id": deployment_id}, limit=None, after=None
        )
        return sorted(rows, key=lambda r: int(r["revision"]))

    async def list_revisions(self, deployment_id: str) -> list[dict[str, Any]]:
        async with self.repo.read() as tx:
            if await tx.get_record("deployments", deployment_id) is None:
                raise NotFoundError(f"deployment {deployment_id} not found")
            return [_public(r) for r in await self._revisions(tx, deployment_id)]

    async def _by_key(self, tx: Session, key: str | None) -> dict[str, Any] | None:
        if not key:
            return None
        found = await tx.list_records(
            "deployment_revisions", where={"idempotency_key": key}, limit=1, after=None
        )
        return found[0] if found else None

    async def _ready_deployment(self, tx: Session, deployment_id: str) -> dict[str, Any]:
        row = await tx.get_record("deployments", deployment_id)
        if row is None:
            raise NotFoundError(f"deployment {deployment_id} not found")
        cluster = await tx.get_record("clusters", row["cluster_id"])
        if cluster is None or cluster["status"] != "ready":
            state = "gone" if cluster is None else cluster["status"]
            raise ConflictError(
                f"cluster {row['cluster_id']} is {state}, not ready: "
                f"deployment {deployment_id} is unchanged",
                details={"cluster_id": row["cluster_id"], "deployment_id": deployment_id},
            )
        return row

    async def _roll_out(
        self,
        tx: Session,
        row: dict[str, Any],
        previous: dict[str, Any] | None,
        **revision: Any,
    ) -> dict[str, Any]:
        """Make a new current revision of ``row``; the simulated platform rolls it out at once."""
        now = self._now()
        if previous is not None and previous["status"] == "running":
            await tx.update_record(
                "deployment_revisions", previous["id"], {"status": "superseded", "updated_at": now}
            )
        values = {"status": "running", "error_message": None, "updated_at": now}
        await tx.update_record("deployments", row["id"], values)
        row.update(values)
        number = (int(previous["revision"]) if previous else 0) + 1
        return await self._add_revision(tx, row, number, **revision)

    async def revise_deployment(
        self,
        deployment_id: str,
        *,
        model_version: str | None = None,
        config: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Move a deployment to a new model version and/or config: a new revision.

        ``config`` is merged over the current one (a key set to null is removed). Nothing
        changes, and no revision is made, when both are what the deployment runs already.
        Returns ``{"deployment", "revision", "previous", "changed"}``.
        """
        async with self.repo.transaction() as tx:
            done = await self._by_key(tx, idempotency_key)
            if done is not None:  # a re-run of the same step
                row = await tx.get_record("deployments", deployment_id)
                revs = await self._revisions(tx, deployment_id)
                before = next((r for r in revs if r["revision"] == done["revision"] - 1), None)
                return {"deployment": row, "revision": done, "previous": before, "changed": True}
            row = await self._ready_deployment(tx, deployment_id)
            revs = await self._revisions(tx, deployment_id)
            current = revs[-1] if revs else None
            base_config = dict(current["config"] or {}) if current else {}
            merged = dict(base_config)
            for key, value in (config or {}).items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            version = (
                model_version
                if model_version is not None
                else (current["model_version"] if current else None)
            )
            unchanged = (
                current is not None
                and current["status"] == "running"
                and version == current["model_version"]
                and merged == base_config
            )
            if unchanged:
                return {
                    "deployment": row,
                    "revision": current,
                    "previous": current,
                    "changed": False,
                }
            rev = await self._roll_out(
                tx,
                row,
                current,
                model_version=version,
                config=merged,
                reason="updated",
                idempotency_key=idempotency_key,
            )
        return {"deployment": row, "revision": rev, "previous": current, "changed": True}

    async def rollback_deployment(
        self,
        deployment_id: str,
        *,
        to_revision: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any] | None:
        """Go back to the last good revision before the current one (or ``to_revision``).

        The rollback is a new revision that copies the target's model version and config, as
        ``kubectl rollout undo`` does. None when there is no earlier good revision.
        Returns ``{"deployment", "revision", "previous", "target"}``.
        """
        async with self.repo.transaction() as tx:
            done = await self._by_key(tx, idempotency_key)
            if done is not None:
                row = await tx.get_record("deployments", deployment_id)
                revs = await self._revisions(tx, deployment_id)
                by_number = {r["revision"]: r for r in revs}
                return {
                    "deployment": row,
                    "revision": done,
                    "previous": by_number.get(done["revision"] - 1),
                    "target": by_number.get(done["source_revision"]),
                }
            row = await tx.get_record("deployments", deployment_id)
            if row is None:
                raise NotFoundError(f"deployment {deployment_id} not found")
            revs = await self._revisions(tx, deployment_id)
            if not revs:
                return None
            current = revs[-1]
            if to_revision is not None:
                target = next((r for r in revs if r["revision"] == to_revision), None)
                if target is None or to_revision == current["revision"]:
                    raise ValidationError(
                        f"to_revision: deployment {deployment_id} has no earlier revision "
                        f"{to_revision}; its revisions are 1 to {current['revision']}",
                        details={"path": "to_revision"},
                    )
                if not target["good"]:
                    raise ValidationError(
                        f"to_revision: revision {to_revision} of deployment {deployment_id} "
                        "never ran successfully",
                        details={"path": "to_revision"},
                    )
            else:
                good = [r for r in revs[:-1] if r["good"]]
                if not good:
                    return None
                target = good[-1]
            await self._ready_deployment(tx, deployment_id)
            rev = await self._roll_out(
                tx,
                row,
                current,
                model_version=target["model_version"],
                config=dict(target["config"] or {}),
                reason="rollback",
                source_revision=target["revision"],
                idempotency_key=idempotency_key,
            )
        return {"deployment": row, "revision": rev, "previous": current, "target": target}

    # -- what the use-case actions read ------------------------------------------------------
    async def models_waiting_for(self, cluster_id: str) -> list[dict[str, Any]]:
        """Models waiting for a cluster, oldest first.

        A model waits for cluster C when its metadata's ``target_cluster`` is C and it has no
        live (pending or running) deployment on C.
        """
        async with self.repo.read() as tx:
            if await tx.get_record("clusters", cluster_id) is None:
                raise NotFoundError(f"cluster {cluster_id} not found")
            models = await tx.list_records("models", where={}, limit=None, after=None)
            wanted = [m for m in models if (m["metadata"] or {}).get(TARGET_CLUSTER) == cluster_id]
            if not wanted:
                return []
            deployed = {
                d["model_id"]
                for d in await tx.list_records(
                    "deployments", where={"cluster_id": cluster_id}, limit=None, after=None
                )
                if d["status"] in LIVE_DEPLOYMENT
            }
        waiting = [m for m in wanted if m["id"] not in deployed]
        return sorted(waiting, key=lambda m: (m["created_at"], m["id"]))

    async def diagnose_cluster(self, cluster_id: str, checks: int = 10) -> dict[str, Any]:
        """A cluster's state: the cluster, the deployments on it, its recent health results."""
        async with self.repo.read() as tx:
            cluster = await tx.get_record("clusters", cluster_id)
            if cluster is None:
                raise NotFoundError(f"cluster {cluster_id} not found")
            deployments = await tx.list_records(
                "deployments", where={"cluster_id": cluster_id}, limit=None, after=None
            )
            recent = await self._checks(tx, cluster_id, checks)
        deployments.sort(key=lambda d: (d["created_at"], d["id"]))
        return {"cluster": cluster, "deployments": deployments, "checks": recent}

    async def configure_monitoring(
        self, deployment_id: str, config: dict[str, Any], *, configured_by: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Record the monitoring of a deployment (configuring again replaces it).

        Returns the monitor and whether it is new.
        """
        now = self._now()
        async with self.repo.transaction() as tx:
            row = await tx.get_record("deployments", deployment_id)
            if row is None:
                raise NotFoundError(f"deployment {deployment_id} not found")
            cluster = await tx.get_record("clusters", row["cluster_id"])
            found = await tx.list_records(
                "monitors", where={"deployment_id": deployment_id}, limit=1, after=None
            )
            values = {
                "cluster_id": row["cluster_id"],
                "environment": cluster["environment"] if cluster else None,
                "config": config,
                "configured_by": configured_by,
                "updated_at": now,
            }
            if found:
                await tx.update_record("monitors", found[0]["id"], values)
                return {**found[0], **values}, False
            monitor = {"id": new_id("mon"), "deployment_id": deployment_id, "created_at": now}
            monitor.update(values)
            await tx.insert_record("monitors", monitor)
        return monitor, True


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "idempotency_key"}
