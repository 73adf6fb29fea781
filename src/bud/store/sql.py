"""The repository in SQLAlchemy Core, shared by the SQL families.

``SqlSession`` implements every domain operation once; ``bud.store.sqlite`` and
``bud.store.postgres`` subclass it where a backend has a better statement (row locks,
``SKIP LOCKED``, JSON containment, ``NOTIFY``). Hot-path statements are built once with
bind parameters: building and cache-keying a statement costs more than SQLite takes to run it.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import (
    Table,
    bindparam,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from bud.store import schema as t
from bud.store.records import (
    HELD,
    OPEN_EXECUTION,
    OPEN_STEPS,
    WAIT_KEY,
    AttemptRecord,
    Change,
    ChangeKind,
    DecisionRecord,
    EventRecord,
    ExecutionRecord,
    ExecutionStatus,
    IngestBatch,
    PipelineRecord,
    Row,
    StepRecord,
    StepStatus,
    TriggerRecord,
    TriggerStats,
)
from bud.store.repository import NEW_WORK, READY_STEPS, Repository, Session, StepKey

RECORDS = {
    "models": t.models,
    "clusters": t.clusters,
    "deployments": t.deployments,
    "deployment_revisions": t.deployment_revisions,
    "monitors": t.monitors,
    "cluster_checks": t.cluster_checks,
}


def json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@functools.cache
def _get_statement(table: Table, keys: tuple[str, ...]) -> Any:
    return select(table).where(*[table.c[k] == bindparam(k) for k in keys]).limit(1)


@functools.cache
def _insert_statement(table: Table) -> Any:
    return table.insert()


@functools.cache
def _waits_for() -> Any:
    w = t.waits
    types: Any = bindparam("b_types", expanding=True)
    return select(w).where(w.c.event_type.in_(types)).order_by(w.c.created_at)


class SqlSession(Session):
    """One transaction on a SQLAlchemy connection. Subclasses override family specifics."""

    row_locks = True  # False where the whole database has one writer at a time (SQLite)

    def __init__(self, conn: Any, repo: SqlRepository) -> None:
        self.conn = conn
        self.repo = repo
        self._catalogue_changed = False
        self._wake_workers = False
        self._ready_steps = False  # steps of running executions among those made ready

    # -- generic rows (private) ----------------------------------------------------------
    async def _insert(self, table: Table, rows: Any) -> None:
        batch = [rows] if isinstance(rows, Mapping) else list(rows)
        if batch:
            await self.conn.execute(_insert_statement(table), batch)

    async def _insert_missing(self, table: Table, rows: Sequence[Any], key: str) -> set[Any]:
        if not rows:
            return set()
        stmt = self.repo.insert(table).on_conflict_do_nothing().returning(table.c[key])
        result = await self.conn.execute(stmt, list(rows))
        return {r[0] for r in result.all()}

    async def _get(self, table: Table, **where: Any) -> Any:
        row = (await self.conn.execute(_get_statement(table, tuple(where)), where)).mappings()
        found = row.first()
        return dict(found) if found else None

    async def _list(
        self,
        table: Table,
        *,
        where: Iterable[ColumnElement[bool]] = (),
        order: str = "id",
        descending: bool = True,
        limit: int | None = None,
        after: Any = None,
    ) -> builtins.list[Any]:
        col = table.c[order]
        stmt = select(table).where(*where)
        if after is not None:
            stmt = stmt.where(col < after if descending else col > after)
        stmt = stmt.order_by(col.desc() if descending else col.asc())
        if limit is not None:
            stmt = stmt.limit(limit)
        return [dict(r) for r in (await self.conn.execute(stmt)).mappings().all()]

    async def _update(self, table: Table, values: Mapping[str, Any], *where: Any) -> int:
        result = await self.conn.execute(update(table).where(*where).values(**values))
        return int(result.rowcount)

    async def _delete(self, table: Table, *where: Any) -> int:
        return int((await self.conn.execute(delete(table).where(*where))).rowcount)

    async def _count(self, table: Table, *where: Any) -> int:
        stmt = select(func.count()).select_from(table).where(*where)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def _lock(self, table: Table, **where: Any) -> Any:
        stmt = select(table).where(*[table.c[k] == v for k, v in where.items()])
        if self.row_locks:
            stmt = stmt.with_for_update()
        row = (await self.conn.execute(stmt)).mappings().first()
        return dict(row) if row else None

    async def _changed(self, kind: ChangeKind, key: str) -> None:
        """Append to the catalogue log, in this transaction."""
        self._catalogue_changed = True
        await self._insert(
            t.catalogue_log, {"kind": str(kind), "key": key, "created_at": self.repo.now()}
        )

    # -- catalogue -----------------------------------------------------------------------
    async def catalogue_version(self) -> int:
        value = (await self.conn.execute(select(func.max(t.catalogue_log.c.seq)))).scalar()
        return int(value or 0)

    async def catalogue_changes(self, since: int) -> list[Change]:
        c = t.catalogue_log
        rows = await self.conn.execute(
            select(c.c.seq, c.c.kind, c.c.key).where(c.c.seq > since).order_by(c.c.seq)
        )
        return [Change(int(r[0]), str(r[1]), str(r[2])) for r in rows.all()]

    # -- event types ---------------------------------------------------------------------
    async def list_event_types(self) -> list[Row]:
        return await self._list(t.event_types, order="name", descending=False)

    async def get_event_type(self, name: str) -> Row | None:
        return cast("Row | None", await self._get(t.event_types, name=name))

    async def put_event_type(self, row: Row) -> None:
        await self._delete(t.event_types, t.event_types.c.name == row["name"])
        await self._insert(t.event_types, row)
        await self._changed(ChangeKind.EVENT_TYPE, row["name"])

    # -- pipelines -----------------------------------------------------------------------
    async def create_pipeline(self, row: PipelineRecord) -> None:
        await self._insert(t.pipelines, row)
        await self._insert(
            t.pipeline_versions,
            {
                "pipeline_id": row["id"],
                "version": row["version"],
                "name": row["name"],
                "definition": row["definition"],
                "created_at": row["created_at"],
            },
        )

    async def get_pipeline(self, pipeline_id: str) -> PipelineRecord | None:
        return cast("PipelineRecord | None", await self._get(t.pipelines, id=pipeline_id))

    async def pipelines_by_id(self, ids: Iterable[str]) -> dict[str, PipelineRecord]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        rows = await self._list(t.pipelines, where=[t.pipelines.c.id.in_(wanted)])
        return {r["id"]: r for r in rows}

    async def list_pipelines(self, limit: int, after: str | None) -> list[PipelineRecord]:
        return await self._list(t.pipelines, limit=limit, after=after)

    async def pipeline_summaries(
        self, ids: Sequence[str]
    ) -> dict[str, tuple[int, ExecutionRecord | None]]:
        if not ids:
            return {}
        tr, e = t.triggers, t.executions
        counts = dict(
            (
                await self.conn.execute(
                    select(tr.c.pipeline_id, func.count())
                    .where(tr.c.pipeline_id.in_(list(ids)))
                    .group_by(tr.c.pipeline_id)
                )
            ).all()
        )
        out: dict[str, tuple[int, ExecutionRecord | None]] = {}
        for pipeline_id in ids:
            last = await self._list(e, where=[e.c.pipeline_id == pipeline_id], limit=1)
            out[pipeline_id] = (int(counts.get(pipeline_id, 0)), last[0] if last else None)
        return out

    async def update_pipeline(
        self, pipeline_id: str, values: Row, new_version: Row | None = None
    ) -> None:
        if new_version is not None:
            await self._insert(t.pipeline_versions, new_version)
        await self._update(t.pipelines, values, t.pipelines.c.id == pipeline_id)
        await self._changed(ChangeKind.PIPELINE, pipeline_id)

    async def delete_pipeline(self, pipeline_id: str) -> list[str]:
        tr = t.triggers
        ids = [
            str(r[0])
            for r in (
                await self.conn.execute(select(tr.c.id).where(tr.c.pipeline_id == pipeline_id))
            )
        ]
        await self._delete(tr, tr.c.pipeline_id == pipeline_id)
        await self._forget_schedules(ids)
        await self._delete(t.pipelines, t.pipelines.c.id == pipeline_id)
        for trigger_id in ids:
            await self._changed(ChangeKind.TRIGGER, trigger_id)
        await self._changed(ChangeKind.PIPELINE, pipeline_id)
        return ids

    async def pipeline_versions(self, pipeline_id: str) -> list[Row]:
        v = t.pipeline_versions
        return await self._list(v, where=[v.c.pipeline_id == pipeline_id], order="version")

    async def get_pipeline_version(self, pipeline_id: str, version: int) -> Row | None:
        return cast(
            "Row | None",
            await self._get(t.pipeline_versions, pipeline_id=pipeline_id, version=version),
        )

    # -- triggers ------------------------------------------------------------------------
    async def create_trigger(self, row: TriggerRecord) -> None:
        await self._insert(t.triggers, row)
        await self._changed(ChangeKind.TRIGGER, row["id"])

    async def get_trigger(self, trigger_id: str) -> TriggerRecord | None:
        return cast("TriggerRecord | None", await self._get(t.triggers, id=trigger_id))

    async def triggers_by_id(self, ids: Iterable[str]) -> list[TriggerRecord]:
        wanted = list(set(ids))
        if not wanted:
            return []
        return await self._list(t.triggers, where=[t.triggers.c.id.in_(wanted)])

    async def all_triggers(self) -> list[TriggerRecord]:
        return await self._list(t.triggers, descending=False)

    async def list_triggers(
        self,
        *,
        pipeline_id: str | None,
        event_type: str | None,
        enabled: bool | None,
        limit: int,
        after: str | None,
    ) -> list[TriggerRecord]:
        tr = t.triggers
        where = []
        if pipeline_id is not None:
            where.append(tr.c.pipeline_id == pipeline_id)
        if event_type is not None:
            where.append(tr.c.event_type == event_type)
        if enabled is not None:
            where.append(tr.c.enabled == enabled)
        return await self._list(tr, where=where, limit=limit, after=after)

    async def update_trigger(self, trigger_id: str, values: Row) -> None:
        await self._update(t.triggers, values, t.triggers.c.id == trigger_id)
        await self._changed(ChangeKind.TRIGGER, trigger_id)

    async def delete_trigger(self, trigger_id: str) -> bool:
        deleted = await self._delete(t.triggers, t.triggers.c.id == trigger_id)
        if deleted:
            await self._forget_schedules([trigger_id])
            await self._changed(ChangeKind.TRIGGER, trigger_id)
        return bool(deleted)

    async def hold_triggers(self, ids: Iterable[str]) -> None:
        if not self.row_locks:
            return
        wanted = sorted(set(ids))
        if wanted:  # in id order, so two holders never wait on each other in a circle
            tr = t.triggers
            await self.conn.execute(
                select(tr.c.id).where(tr.c.id.in_(wanted)).order_by(tr.c.id).with_for_update()
            )

    async def count_fires(self, fires: Mapping[str, int], now: float) -> None:
        if not fires:
            return
        tr, f = t.triggers, t.trigger_fires
        bucket = int(now)
        for trigger_id, count in sorted(fires.items()):
            await self._update(
                tr,
                {"fire_count": tr.c.fire_count + count, "last_fired_at": now},
                tr.c.id == trigger_id,
            )
        stmt = self.repo.insert(f)
        stmt = stmt.on_conflict_do_update(
            index_elements=[f.c.trigger_id, f.c.bucket],
            set_={"fires": f.c.fires + stmt.excluded.fires},
        )
        await self.conn.execute(
            stmt,
            [{"trigger_id": k, "bucket": bucket, "fires": n} for k, n in sorted(fires.items())],
        )

    async def reset_breaker(self, trigger_id: str) -> None:
        f = t.trigger_fires
        await self._delete(f, f.c.trigger_id == trigger_id)

    async def trip_trigger(self, trigger_id: str, reason: str, now: float) -> None:
        await self._update(
            t.triggers,
            {"enabled": False, "tripped_at": now, "tripped_reason": reason},
            t.triggers.c.id == trigger_id,
        )
        await self._changed(ChangeKind.TRIGGER, trigger_id)

    async def _filtered_count(self, trigger: TriggerRecord) -> int:
        """Events this trigger's filter turned away (kept as ids on the event rows)."""
        sql = text(
            "SELECT count(*) FROM events, json_each(events.filtered) "
            "WHERE events.event_type = :event_type AND json_each.value = :trigger_id"
        )
        params = {"event_type": trigger["event_type"], "trigger_id": trigger["id"]}
        return int((await self.conn.execute(sql, params)).scalar() or 0)

    async def trigger_stats(self, trigger: TriggerRecord, now: float) -> TriggerStats:
        d, e = t.decisions, t.executions
        trigger_id = trigger["id"]
        outcomes = await self.conn.execute(
            select(d.c.outcome, func.count())
            .where(d.c.trigger_id == trigger_id)
            .group_by(d.c.outcome)
        )
        decisions = {str(k): int(n) for k, n in outcomes.all()}
        filtered = await self._filtered_count(trigger)
        if filtered:
            decisions["filtered"] = decisions.get("filtered", 0) + filtered
        codes = await self.conn.execute(
            select(d.c.reason_code, func.count())
            .where(d.c.trigger_id == trigger_id, d.c.outcome == "suppressed")
            .group_by(d.c.reason_code)
        )
        rate = {
            name: await self._count(e, e.c.trigger_id == trigger_id, e.c.created_at >= now - span)
            for name, span in (("last_minute", 60.0), ("last_hour", 3600.0))
        }
        return {
            "fire_count": int(trigger.get("fire_count") or 0),
            "last_fired_at": trigger.get("last_fired_at"),
            "decisions": decisions,
            "suppressed": {str(k or "unknown"): int(n) for k, n in codes.all()},
            "rate": rate,
        }

    # -- events and decisions ------------------------------------------------------------
    async def store_ingest(self, batch: IngestBatch) -> set[str]:
        inserted = await self._insert_missing(t.events, batch.events, "event_id")
        executions, steps, decisions, fires = (
            batch.executions,
            batch.steps,
            batch.decisions,
            batch.fires,
        )
        if len(inserted) < len(batch.events):
            executions = [r for r in executions if r["event_id"] in inserted]
            kept = {r["id"] for r in executions}
            steps = [r for r in steps if r["execution_id"] in kept]
            decisions = [r for r in decisions if r["event_id"] in inserted]
            fires = {}
            for r in executions:
                trigger_id = r["trigger_id"]
                if trigger_id is not None:
                    fires[trigger_id] = fires.get(trigger_id, 0) + 1
            batch.fires = fires
        await self._insert(t.executions, executions)
        await self._insert(t.steps, steps)
        await self._insert(t.decisions, decisions)
        return {str(i) for i in inserted}

    async def get_event(self, event_id: str) -> EventRecord | None:
        return cast("EventRecord | None", await self._get(t.events, event_id=event_id))

    async def list_events(
        self,
        *,
        event_type: str | None,
        source: str | None,
        test: bool | None,
        since: float | None,
        limit: int,
        after: int | None,
        data_path: Sequence[str] | None = None,
        data_value: Any = None,
        has_value: bool = False,
        started_nothing: bool | None = None,
        filtered_by: str | None = None,
    ) -> list[EventRecord]:
        ev = t.events
        where = []
        if event_type:
            where.append(ev.c.event_type == event_type)
        if source:
            where.append(ev.c.source == source)
        if test is not None:
            where.append(ev.c.test == test)
        if since is not None:
            where.append(ev.c.received_at >= since)
        if started_nothing is not None:
            where.append(ev.c.fired_count == 0 if started_nothing else ev.c.fired_count > 0)
        if filtered_by:
            where.append(self._filtered_by(filtered_by))
        if data_path:
            where.append(self._data_holds(list(data_path), data_value, has_value))
        return await self._list(ev, where=where, order="seq", limit=limit, after=after)

    def _filtered_by(self, trigger_id: str) -> Any:
        """Events whose ``filtered`` list (triggers that did not match) holds the id."""
        member = (
            select(literal(1))
            .select_from(func.json_each(t.events.c.filtered))
            .where(literal_column("json_each.value") == trigger_id)
        )
        return exists(member)

    def _data_holds(self, parts: list[str], value: Any, has_value: bool) -> Any:
        """Events whose ``data`` holds ``value`` at the path (SQLite's JSON functions)."""
        data = t.events.c.data
        where = "$" + "".join(f'."{p}"' for p in parts)
        if not has_value:
            return func.json_type(data, where).is_not(None)
        if value is None:
            return func.json_type(data, where) == "null"
        if isinstance(value, (dict, list)):
            return func.json(func.json_extract(data, where)) == func.json(json_dumps(value))
        return func.json_extract(data, where) == value  # true/false read as 1/0

    async def record_ingest_error(self, row: Row, *, keep: int) -> None:
        ie = t.ingest_errors
        await self._insert(ie, row)
        newest = (await self.conn.execute(select(func.max(ie.c.seq)))).scalar() or 0
        await self._delete(ie, ie.c.seq <= newest - keep)

    async def list_ingest_errors(self, limit: int, after: int | None) -> list[Row]:
        return await self._list(t.ingest_errors, order="seq", limit=limit, after=after)

    async def select_event_ids(
        self, event_type: str, since: float | None, until: float | None, limit: int
    ) -> list[str]:
        ev = t.events
        where = [ev.c.event_type == event_type, ev.c.test.is_(False)]
        if since is not None:
            where.append(ev.c.received_at >= since)
        if until is not None:
            where.append(ev.c.received_at < until)
        rows = await self.conn.execute(
            select(ev.c.event_id).where(*where).order_by(ev.c.seq.asc()).limit(limit)
        )
        return [str(r[0]) for r in rows.all()]

    async def recent_events(
        self, event_type: str, limit: int, before: int | None = None
    ) -> list[EventRecord]:
        ev = t.events
        return await self._list(
            ev,
            where=[ev.c.event_type == event_type, ev.c.test.is_(False)],
            order="seq",
            limit=limit,
            after=before,
        )

    async def decisions_of(self, event_id: str) -> list[DecisionRecord]:
        d = t.decisions
        return await self._list(d, where=[d.c.event_id == event_id], order="seq", descending=False)

    async def record_decisions(self, rows: Sequence[DecisionRecord]) -> None:
        await self._insert(t.decisions, rows)

    async def settle_decision(
        self, event_id: str, trigger_id: str, outcome: str, values: Row
    ) -> int:
        d = t.decisions
        return await self._update(
            d,
            values,
            d.c.event_id == event_id,
            d.c.trigger_id == trigger_id,
            d.c.outcome == outcome,
        )

    async def add_event_fired(self, event_id: str, count: int) -> None:
        ev = t.events
        await self._update(ev, {"fired_count": ev.c.fired_count + count}, ev.c.event_id == event_id)

    # -- executions ----------------------------------------------------------------------
    async def create_execution(
        self, row: ExecutionRecord, steps: Sequence[StepRecord], *, once: bool = False
    ) -> bool:
        if once:
            if not await self._insert_missing(t.executions, [row], "id"):
                return False
        else:
            await self._insert(t.executions, row)
        await self._insert(t.steps, steps)
        return True

    async def lock_execution(self, execution_id: str) -> ExecutionRecord | None:
        return cast("ExecutionRecord | None", await self._lock(t.executions, id=execution_id))

    async def list_executions(
        self,
        *,
        pipeline_id: str | None = None,
        trigger_id: str | None = None,
        event_id: str | None = None,
        status: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int,
        after: str | None,
    ) -> list[ExecutionRecord]:
        e = t.executions
        where: list[Any] = []
        for column, value in (
            (e.c.pipeline_id, pipeline_id),
            (e.c.trigger_id, trigger_id),
            (e.c.event_id, event_id),
            (e.c.status, status),
        ):
            if value:
                where.append(column == value)
        if since is not None:
            where.append(e.c.created_at >= since)
        if until is not None:
            where.append(e.c.created_at < until)
        return await self._list(e, where=where, limit=limit, after=after)

    async def executions_for(self, trigger_id: str, event_id: str) -> list[ExecutionRecord]:
        e = t.executions
        return await self._list(e, where=[e.c.trigger_id == trigger_id, e.c.event_id == event_id])

    async def execution_by_parent_key(self, key: str) -> str | None:
        e = t.executions
        value = (await self.conn.execute(select(e.c.id).where(e.c.parent_key == key))).scalar()
        return str(value) if value is not None else None

    async def count_recent_executions(self, trigger_id: str, since: float, cap: int) -> int:
        e = t.executions
        recent = (
            select(e.c.id)
            .where(e.c.trigger_id == trigger_id, e.c.created_at >= since)
            .limit(cap)
            .subquery()
        )
        return int((await self.conn.execute(select(func.count()).select_from(recent))).scalar_one())

    async def open_executions(self, trigger_id: str, key: str) -> list[ExecutionRecord]:
        e = t.executions
        return await self._list(
            e,
            where=[
                e.c.trigger_id == trigger_id,
                e.c.concurrency_key == key,
                e.c.status.in_(OPEN_EXECUTION),
            ],
        )

    async def cancel_open_steps(self, execution_id: str, now: float) -> None:
        s = t.steps
        await self._update(
            s,
            {
                "status": StepStatus.CANCELLED,
                "finished_at": now,
                "lease_owner": None,
                "lease_expires_at": None,
                "ready_at": None,
            },
            s.c.execution_id == execution_id,
            s.c.status.in_(OPEN_STEPS),
        )
        a = t.attempts
        await self._update(
            a,
            {"status": StepStatus.CANCELLED, "finished_at": now, "error": "cancelled"},
            a.c.execution_id == execution_id,
            a.c.status == StepStatus.RUNNING,
        )

    async def release_next_held(self, trigger_id: str, key: str, now: float) -> str | None:
        e = t.executions
        waiting = await self._list(
            e,
            where=[
                e.c.trigger_id == trigger_id,
                e.c.concurrency_key == key,
                e.c.held.is_(True),
                e.c.status == ExecutionStatus.QUEUED,
            ],
            descending=False,
            limit=1,
        )
        if not waiting:
            return None
        nxt = waiting[0]["id"]
        await self._update(e, {"held": False}, e.c.id == nxt)
        s = t.steps
        await self._update(s, {"ready_at": now}, s.c.execution_id == nxt, s.c.ready_at >= HELD)
        return str(nxt)

    async def reset_for_retry(self, execution_id: str) -> None:
        s, e = t.steps, t.executions
        await self._update(
            s,
            {
                "status": StepStatus.PENDING,
                "error": None,
                "outputs": None,  # a wait it was parked in starts afresh
                "ready_at": None,
                "finished_at": None,
                "lease_owner": None,
                "lease_expires_at": None,
                "attempt_base": s.c.attempts,
            },
            s.c.execution_id == execution_id,
            s.c.status.in_((StepStatus.FAILED, StepStatus.CANCELLED)),
        )
        await self._update(
            e,
            {
                "status": ExecutionStatus.QUEUED,
                "error": None,
                "finished_at": None,
                "deadline_at": None,
                "retry_count": e.c.retry_count + 1,
            },
            e.c.id == execution_id,
        )

    async def reset_steps(self, execution_id: str, step_ids: Sequence[str]) -> None:
        s = t.steps
        await self._update(
            s,
            {
                "status": StepStatus.PENDING,
                "error": None,
                "outputs": None,
                "started_at": None,
                "ready_at": None,
                "finished_at": None,
                "lease_owner": None,
                "lease_expires_at": None,
                "attempt_base": s.c.attempts,
            },
            s.c.execution_id == execution_id,
            s.c.step_id.in_(list(step_ids)),
        )

    async def overdue_executions(self, now: float) -> list[ExecutionRecord]:
        e = t.executions
        return await self._list(
            e,
            where=[
                e.c.status == ExecutionStatus.RUNNING,
                e.c.deadline_at.is_not(None),
                e.c.deadline_at < now,
            ],
        )

    async def void_leases(self) -> None:
        s = t.steps
        await self._update(s, {"lease_expires_at": 0.0}, s.c.status == StepStatus.RUNNING)

    # -- steps and attempts --------------------------------------------------------------
    async def show_attempt(
        self, key: StepKey, attempt: int, params: Any, logs: list[dict[str, Any]]
    ) -> None:
        a = t.attempts
        await self._update(
            a,
            {"params": params, "logs": logs},
            a.c.execution_id == key[0],
            a.c.step_id == key[1],
            a.c.attempt == attempt,
            a.c.status == StepStatus.RUNNING,
        )

    async def suspend_step(
        self, key: StepKey, owner: str, attempt: int, until: float, state: dict[str, Any]
    ) -> bool:
        s, a = t.steps, t.attempts
        parked = await self._update(
            s,
            {
                "status": StepStatus.WAITING,
                "ready_at": until,
                "outputs": {WAIT_KEY: state},
                "lease_owner": None,
                "lease_expires_at": None,
                "attempts": s.c.attempts - 1,
            },
            s.c.execution_id == key[0],
            s.c.step_id == key[1],
            s.c.status == StepStatus.RUNNING,
            s.c.lease_owner == owner,
            s.c.attempts == attempt,
        )
        if parked:
            await self._update(
                a,
                {"status": StepStatus.WAITING},
                a.c.execution_id == key[0],
                a.c.step_id == key[1],
                a.c.attempt == attempt,
            )
        return bool(parked)

    async def renew_leases(self, owner: str, keys: Sequence[StepKey], until: float) -> set[StepKey]:
        s = t.steps
        held: set[StepKey] = set()
        for execution_id, step_id in keys:
            changed = await self._update(
                s,
                {"lease_expires_at": until},
                s.c.execution_id == execution_id,
                s.c.step_id == step_id,
                s.c.lease_owner == owner,
                s.c.status == StepStatus.RUNNING,
            )
            if changed:
                held.add((execution_id, step_id))
        return held

    async def release_steps(self, owner: str, keys: Sequence[StepKey], now: float) -> None:
        s, a = t.steps, t.attempts
        for execution_id, step_id in keys:
            step = await self._get(s, execution_id=execution_id, step_id=step_id)
            if step is None or step["lease_owner"] != owner or step["status"] != "running":
                continue
            await self._update(
                s,
                {
                    "status": StepStatus.PENDING,
                    "ready_at": now,
                    "attempts": s.c.attempts - 1,
                    "lease_owner": None,
                    "lease_expires_at": None,
                },
                s.c.execution_id == execution_id,
                s.c.step_id == step_id,
            )
            await self._delete(
                a,
                a.c.execution_id == execution_id,
                a.c.step_id == step_id,
                a.c.attempt == step["attempts"],
            )

    async def attempts_of(self, execution_id: str) -> list[AttemptRecord]:
        a = t.attempts
        return await self._list(
            a, where=[a.c.execution_id == execution_id], order="seq", descending=False
        )

    # -- fan-out items and durable waits for events --------------------------------------
    async def add_steps(self, rows: Sequence[StepRecord]) -> None:
        if rows:
            stmt = self.repo.insert(t.steps).on_conflict_do_nothing()
            await self.conn.execute(stmt, [dict(r) for r in rows])

    async def cancel_steps(self, execution_id: str, step_ids: Sequence[str], now: float) -> None:
        s = t.steps
        if step_ids:
            await self._update(
                s,
                {"status": StepStatus.CANCELLED, "finished_at": now, "ready_at": None},
                s.c.execution_id == execution_id,
                s.c.step_id.in_(list(step_ids)),
                s.c.status == StepStatus.PENDING,
            )

    async def wake_step(self, key: StepKey, at: float, state: dict[str, Any] | None) -> bool:
        s = t.steps
        values: dict[str, Any] = {"ready_at": at}
        if state is not None:
            row = await self._get(s, execution_id=key[0], step_id=key[1])
            if row is None or row["status"] != StepStatus.WAITING:
                return False
            parked = (row["outputs"] or {}).get(WAIT_KEY) or {}
            values["outputs"] = {WAIT_KEY: {**parked, **state}}
        changed = await self._update(
            s,
            values,
            s.c.execution_id == key[0],
            s.c.step_id == key[1],
            s.c.status == StepStatus.WAITING,
        )
        return bool(changed)

    async def add_waits(self, rows: Sequence[Row]) -> None:
        if rows:
            stmt = self.repo.insert(t.waits).on_conflict_do_nothing()
            await self.conn.execute(stmt, [dict(r) for r in rows])

    async def waits_for(self, event_types: Collection[str]) -> list[Row]:
        # On every ingest transaction: one cached statement (no compile per call).
        params = {"b_types": sorted(event_types)}
        result = await self.conn.execute(_waits_for(), params)
        return [dict(r) for r in result.mappings().all()]

    async def drop_waits(self, execution_id: str, wait_ids: Collection[str] | None = None) -> None:
        w = t.waits
        where = [w.c.execution_id == execution_id]
        if wait_ids is not None:
            where.append(w.c.id.in_(sorted(wait_ids)))
        await self._delete(w, *where)

    # -- deliveries ----------------------------------------------------------------------
    async def record_delivery(self, row: Row) -> None:
        await self._insert(t.deliveries, row)

    async def list_deliveries(
        self, *, execution_id: str | None, channel: str | None, limit: int, after: int | None
    ) -> list[Row]:
        d = t.deliveries
        where = []
        if execution_id:
            where.append(d.c.execution_id == execution_id)
        if channel:
            where.append(d.c.channel == channel)
        return await self._list(d, where=where, order="seq", limit=limit, after=after)

    # -- flow-control state --------------------------------------------------------------
    async def _put_state(
        self, trigger_id: str, kind: str, key: str, event_id: str, until: float
    ) -> None:
        st = t.trigger_state
        await self._delete(st, st.c.trigger_id == trigger_id, st.c.kind == kind, st.c.key == key)
        await self._insert(
            st,
            {
                "trigger_id": trigger_id,
                "kind": kind,
                "key": key,
                "value": {"event_id": event_id},
                "expires_at": until,
            },
        )

    async def claim_dedup(
        self, trigger_id: str, key: str, event_id: str, now: float, until: float
    ) -> str | None:
        row = await self._get(t.trigger_state, trigger_id=trigger_id, kind="dedup", key=key)
        if row is not None and row["expires_at"] > now:
            return str((row["value"] or {}).get("event_id"))
        await self._put_state(trigger_id, "dedup", key, event_id, until)
        return None

    async def put_debounce(
        self, trigger_id: str, key: str, event_id: str, until: float
    ) -> str | None:
        row = await self._get(t.trigger_state, trigger_id=trigger_id, kind="debounce", key=key)
        await self._put_state(trigger_id, "debounce", key, event_id, until)
        return (row["value"] or {}).get("event_id") if row is not None else None

    async def take_due_debounces(self, now: float, limit: int) -> list[Row]:
        st = t.trigger_state
        due = await self._list(
            st,
            where=[st.c.kind == "debounce", st.c.expires_at <= now],
            order="expires_at",
            descending=False,
            limit=limit,
        )
        taken = []
        for state in due:
            # Whoever deletes the row fires it: a concurrent sweeper deletes nothing.
            if await self._delete(
                st,
                st.c.trigger_id == state["trigger_id"],
                st.c.kind == "debounce",
                st.c.key == state["key"],
                st.c.expires_at <= now,
            ):
                taken.append(state)
        return taken

    async def prune(self, now: float) -> None:
        st, f = t.trigger_state, t.trigger_fires
        await self._delete(st, st.c.kind == "dedup", st.c.expires_at < now)
        await self._delete(f, f.c.bucket < int(now) - 31 * 86400)

    # -- lifecycle outbox ----------------------------------------------------------------
    async def take_lifecycle(self, limit: int) -> list[Row]:
        ob = t.lifecycle_outbox
        stmt = select(ob).order_by(ob.c.seq).limit(limit)
        if self.row_locks:
            stmt = stmt.with_for_update(skip_locked=True)
        rows = [dict(r) for r in (await self.conn.execute(stmt)).mappings().all()]
        if rows:
            await self._delete(ob, ob.c.seq.in_([r["seq"] for r in rows]))
        return rows

    # -- schedules -----------------------------------------------------------------------
    async def put_schedule(self, trigger_id: str, next_at: float | None, now: float) -> None:
        sc = t.trigger_schedules
        changed = await self._update(
            sc, {"next_at": next_at, "updated_at": now}, sc.c.trigger_id == trigger_id
        )
        if not changed:
            await self._insert(
                sc,
                {
                    "trigger_id": trigger_id,
                    "next_at": next_at,
                    "ticks": 0,
                    "skipped": 0,
                    "updated_at": now,
                },
            )

    async def schedules_of(self, ids: Iterable[str]) -> dict[str, Row]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        sc = t.trigger_schedules
        rows = await self._list(sc, where=[sc.c.trigger_id.in_(wanted)], order="trigger_id")
        return {r["trigger_id"]: r for r in rows}

    async def due_schedules(self, now: float, limit: int) -> list[Row]:
        sc, tr = t.trigger_schedules, t.triggers
        enabled = select(tr.c.id).where(tr.c.enabled.is_(True))
        return await self._list(
            sc,
            where=[sc.c.next_at.is_not(None), sc.c.next_at <= now, sc.c.trigger_id.in_(enabled)],
            order="next_at",
            descending=False,
            limit=limit,
        )

    async def claim_tick(
        self,
        trigger_id: str,
        due_at: float,
        *,
        tick_at: float,
        next_at: float,
        skipped: int,
        now: float,
    ) -> bool:
        sc = t.trigger_schedules
        claimed = await self._update(
            sc,
            {
                "next_at": next_at,
                "last_tick_at": tick_at,
                "last_fired_at": now,
                "ticks": sc.c.ticks + 1,
                "skipped": sc.c.skipped + skipped,
                "updated_at": now,
            },
            sc.c.trigger_id == trigger_id,
            sc.c.next_at == due_at,
        )
        return claimed == 1

    async def _forget_schedules(self, ids: Sequence[str]) -> None:
        if ids:
            sc = t.trigger_schedules
            await self._delete(sc, sc.c.trigger_id.in_(list(ids)))

    # -- inbound webhooks ----------------------------------------------------------------
    async def insert_hook(self, row: Row) -> None:
        await self._insert(t.hooks, row)

    async def get_hook(self, hook_id: str) -> Row | None:
        return cast("Row | None", await self._get(t.hooks, id=hook_id))

    async def list_hooks(self) -> list[Row]:
        return await self._list(t.hooks, order="id", descending=False)

    async def delete_hook(self, hook_id: str) -> bool:
        return bool(await self._delete(t.hooks, t.hooks.c.id == hook_id))

    # -- channels and secrets ------------------------------------------------------------
    async def list_channels(self) -> list[Row]:
        return await self._list(t.channels, order="name", descending=False)

    async def put_channel(self, name: str, config: dict[str, Any], now: float) -> None:
        await self._delete(t.channels, t.channels.c.name == name)
        await self._insert(t.channels, {"name": name, "config": config, "updated_at": now})
        await self._changed(ChangeKind.CONFIG, f"channel:{name}")

    async def delete_channel(self, name: str) -> bool:
        deleted = bool(await self._delete(t.channels, t.channels.c.name == name))
        if deleted:
            await self._changed(ChangeKind.CONFIG, f"channel:{name}")
        return deleted

    async def list_secrets(self) -> list[Row]:
        return await self._list(t.secrets, order="name", descending=False)

    async def put_secret(self, name: str, value: str, now: float) -> None:
        await self._delete(t.secrets, t.secrets.c.name == name)
        await self._insert(t.secrets, {"name": name, "value": value, "updated_at": now})
        await self._changed(ChangeKind.CONFIG, f"secret:{name}")

    async def delete_secret(self, name: str) -> bool:
        deleted = bool(await self._delete(t.secrets, t.secrets.c.name == name))
        if deleted:
            await self._changed(ChangeKind.CONFIG, f"secret:{name}")
        return deleted

    # -- platform records ----------------------------------------------------------------
    async def get_record(self, kind: str, record_id: str) -> Row | None:
        return cast("Row | None", await self._get(RECORDS[kind], id=record_id))

    async def insert_record(self, kind: str, row: Row) -> None:
        await self._insert(RECORDS[kind], row)

    async def update_record(self, kind: str, record_id: str, values: Row) -> None:
        table = RECORDS[kind]
        await self._update(table, values, table.c.id == record_id)

    async def delete_record(self, kind: str, record_id: str) -> bool:
        table = RECORDS[kind]
        return bool(await self._delete(table, table.c.id == record_id))

    async def list_records(
        self, kind: str, *, where: Mapping[str, Any], limit: int | None, after: str | None
    ) -> list[Row]:
        table = RECORDS[kind]
        clauses = [
            table.c[k].is_not(None) if v is ... else table.c[k] == v for k, v in where.items()
        ]
        return await self._list(table, where=clauses, limit=limit, after=after)

    async def deployment_by_key(self, key: str) -> Row | None:
        return cast("Row | None", await self._get(t.deployments, idempotency_key=key))

    async def insert_api_key(self, row: Row) -> None:
        await self._insert(t.api_keys, row)

    async def list_api_keys(self) -> list[Row]:
        return await self._list(t.api_keys, order="id")

    async def get_api_key(self, key_id: str) -> Row | None:
        return cast("Row | None", await self._get(t.api_keys, id=key_id))

    async def api_key_by_hash(self, digest: str) -> Row | None:
        return cast("Row | None", await self._get(t.api_keys, hash=digest))

    async def revoke_api_key(self, key_id: str, now: float) -> None:
        k = t.api_keys
        await self._update(k, {"revoked_at": now}, k.c.id == key_id, k.c.revoked_at.is_(None))

    async def count_active_api_keys(self) -> int:
        return await self._count(t.api_keys, t.api_keys.c.revoked_at.is_(None))

    async def beat(self, process: Row) -> None:
        p = t.processes
        await self._delete(p, p.c.id == process["id"])
        await self._insert(p, process)

    async def processes(self, seen_since: float) -> list[Row]:
        p = t.processes
        return await self._list(
            p, where=[p.c.last_seen >= seen_since], order="started_at", descending=False
        )

    async def forget_process(self, process_id: str) -> None:
        await self._delete(t.processes, t.processes.c.id == process_id)

    def wake_workers(self, *, new_executions: bool = False) -> None:
        self._wake_workers = True
        self._ready_steps = self._ready_steps or not new_executions

    def _work_said(self) -> str:
        """The work channel's payload for what this transaction made ready."""
        return READY_STEPS if self._ready_steps else NEW_WORK

    async def ping(self) -> None:
        await self.conn.execute(select(1))


class SqlRepository(Repository):
    """A SQL database behind SQLAlchemy Core. Subclasses say how to connect and begin."""

    session_class: type[SqlSession]  # the family's (bud.store.hot.HotSession underneath)

    def __init__(self, url: str, clock: Any = None) -> None:
        from bud.clock import SystemClock

        self.url = url
        self.clock = clock or SystemClock()

    def now(self) -> float:
        return float(self.clock.now())

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT (it has ON CONFLICT DO NOTHING / DO UPDATE)."""
        raise NotImplementedError

    def begin(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A connection inside a transaction."""
        raise NotImplementedError

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    async def open(self, migrate: bool = True) -> None:
        from bud.store import migrations

        await self._connect()
        if migrate:
            await migrations.migrate(self)

    async def close(self) -> None:
        await self._disconnect()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self.begin() as conn:
            session = self.session_class(conn, self)
            yield session
            await self._before_commit(session)

    async def _before_commit(self, session: SqlSession) -> None:
        """Hook for backends that announce catalogue changes (NOTIFY)."""
