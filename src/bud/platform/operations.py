"""What the use-case actions do on the built-in platform, beside its records and events.

A deployment's revisions (what it ran, whether that was good) for updates and rollbacks; the
models waiting for a cluster; a cluster's health results and the diagnostics built on them;
the monitoring configured for a deployment. ``BuiltinPlatform`` inherits these.
"""

from __future__ import annotations

from typing import Any

from bud.clock import Clock
from bud.errors import ConflictError, NotFoundError, ValidationError
from bud.ids import new_id
from bud.store import Repository, Session

# A model waits for cluster C when its metadata names C here and it has no live deployment on C.
TARGET_CLUSTER = "target_cluster"
LIVE_DEPLOYMENT = ("pending", "running")
HEALTH_HISTORY = 50  # health results kept per cluster


class PlatformOperations:
    repo: Repository
    clock: Clock

    def _now(self) -> float:
        return self.clock.now()

    # -- health results ------------------------------------------------------------------
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

    async def _forget_cluster(self, tx: Session, cluster_id: str) -> None:
        for check in await self._checks(tx, cluster_id, None):
            await tx.delete_record("cluster_checks", check["id"])

    @staticmethod
    async def _checks(tx: Session, cluster_id: str, limit: int | None) -> list[dict[str, Any]]:
        """A cluster's health results, newest first."""
        rows = await tx.list_records(
            "cluster_checks", where={"cluster_id": cluster_id}, limit=None, after=None
        )
        rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        return rows if limit is None else rows[:limit]

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

    async def _mark_revision(self, tx: Session, deployment: dict[str, Any]) -> None:
        """The deployment's status changed: its current revision did (not) work out."""
        status = deployment["status"]
        for rev in (await self._revisions(tx, deployment["id"]))[-1:]:
            marks: dict[str, Any] = {"status": status, "updated_at": self._now()}
            if status == "running":
                marks["good"] = True
            elif status == "failed":
                marks.update(good=False, error_message=deployment["error_message"])
            await tx.update_record("deployment_revisions", rev["id"], marks)

    async def _forget_deployment(self, tx: Session, deployment_id: str) -> None:
        """A deleted deployment's revisions and monitor go with it."""
        for rev in await self._revisions(tx, deployment_id):
            await tx.delete_record("deployment_revisions", rev["id"])
        for monitor in await tx.list_records(
            "monitors", where={"deployment_id": deployment_id}, limit=None, after=None
        ):
            await tx.delete_record("monitors", monitor["id"])

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
