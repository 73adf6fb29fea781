"""An in-memory repository: the fake that engine and flow-control tests run on.

Same operations, same semantics as the SQL families (``tests/integration/test_store.py``
runs on all three), no database: with ``bud.clock.ManualClock`` a test moves time instead of
sleeping through windows, leases and timeouts. Transactions take turns on a lock and roll
back by restoring a copy of the state. Not for production: nothing is kept on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import Any, cast

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
    lifecycle_snapshot,
)
from bud.store.repository import Repository, Session, StepKey

_KINDS = (
    "models",
    "clusters",
    "deployments",
    "deployment_revisions",
    "monitors",
    "cluster_checks",
)


def _step_row(step: Row) -> Row:
    return {
        "attempt_base": 0,
        "max_attempts": None,
        "params": None,
        "outputs": None,
        "logs": None,
        "error": None,
        "started_at": None,
        "finished_at": None,
        "lease_owner": None,
        "lease_expires_at": None,
        **step,
    }


def _page(
    rows: Iterable[Any], key: str, limit: int | None, after: Any, desc: bool = True
) -> list[Any]:
    ordered = sorted(rows, key=lambda r: r[key], reverse=desc)
    if after is not None:
        ordered = [r for r in ordered if (r[key] < after if desc else r[key] > after)]
    return [dict(r) for r in (ordered if limit is None else ordered[:limit])]


class _State:
    def __init__(self) -> None:
        self.seq = itertools.count(1)
        self.catalogue: list[Change] = []
        self.event_types: dict[str, Row] = {}
        self.pipelines: dict[str, Row] = {}
        self.versions: dict[tuple[str, int], Row] = {}
        self.triggers: dict[str, Row] = {}
        self.fires: dict[tuple[str, int], int] = {}
        self.events: dict[str, Row] = {}
        self.decisions: list[Row] = []
        self.executions: dict[str, Row] = {}
        self.steps: dict[StepKey, Row] = {}
        self.attempts: list[Row] = []
        self.deliveries: list[Row] = []
        self.state: dict[tuple[str, str, str], Row] = {}
        self.channels: dict[str, Row] = {}
        self.secrets: dict[str, Row] = {}
        self.records: dict[str, dict[str, Row]] = {k: {} for k in _KINDS}
        self.processes: dict[str, Row] = {}
        self.ingest_errors: list[Row] = []
        self.api_keys: dict[str, Row] = {}
        self.schedules: dict[str, Row] = {}
        self.outbox: list[Row] = []
        self.hooks: dict[str, Row] = {}
        self.waits: dict[tuple[str, str], Row] = {}


class MemorySession(Session):
    def __init__(self, state: _State, repo: MemoryRepository) -> None:
        self.s = state
        self.repo = repo

    def _changed(self, kind: ChangeKind, key: str) -> None:
        self.s.catalogue.append(Change(next(self.s.seq), str(kind), key))

    # -- catalogue -----------------------------------------------------------------------
    async def catalogue_version(self) -> int:
        return self.s.catalogue[-1].seq if self.s.catalogue else 0

    async def catalogue_changes(self, since: int) -> list[Change]:
        return [c for c in self.s.catalogue if c.seq > since]

    # -- event types ---------------------------------------------------------------------
    async def list_event_types(self) -> list[Row]:
        return [dict(r) for _, r in sorted(self.s.event_types.items())]

    async def get_event_type(self, name: str) -> Row | None:
        found = self.s.event_types.get(name)
        return dict(found) if found else None

    async def put_event_type(self, row: Row) -> None:
        self.s.event_types[row["name"]] = dict(row)
        self._changed(ChangeKind.EVENT_TYPE, row["name"])

    # -- pipelines -----------------------------------------------------------------------
    async def create_pipeline(self, row: PipelineRecord) -> None:
        self.s.pipelines[row["id"]] = dict(row)
        self.s.versions[(row["id"], row["version"])] = {
            "pipeline_id": row["id"],
            "version": row["version"],
            "name": row["name"],
            "definition": row["definition"],
            "created_at": row["created_at"],
        }

    async def get_pipeline(self, pipeline_id: str) -> PipelineRecord | None:
        found = self.s.pipelines.get(pipeline_id)
        return cast(PipelineRecord, dict(found)) if found else None

    async def pipelines_by_id(self, ids: Iterable[str]) -> dict[str, PipelineRecord]:
        return {
            i: cast(PipelineRecord, dict(self.s.pipelines[i]))
            for i in set(ids)
            if i in self.s.pipelines
        }

    async def list_pipelines(self, limit: int, after: str | None) -> list[PipelineRecord]:
        return _page(self.s.pipelines.values(), "id", limit, after)

    async def pipeline_summaries(
        self, ids: Sequence[str]
    ) -> dict[str, tuple[int, ExecutionRecord | None]]:
        out: dict[str, tuple[int, ExecutionRecord | None]] = {}
        for pipeline_id in ids:
            count = sum(1 for t in self.s.triggers.values() if t["pipeline_id"] == pipeline_id)
            last = _page(
                (e for e in self.s.executions.values() if e["pipeline_id"] == pipeline_id),
                "id",
                1,
                None,
            )
            out[pipeline_id] = (count, last[0] if last else None)
        return out

    async def update_pipeline(
        self, pipeline_id: str, values: Row, new_version: Row | None = None
    ) -> None:
        if new_version is not None:
            self.s.versions[(pipeline_id, new_version["version"])] = dict(new_version)
        if pipeline_id in self.s.pipelines:
            self.s.pipelines[pipeline_id].update(values)
        self._changed(ChangeKind.PIPELINE, pipeline_id)

    async def delete_pipeline(self, pipeline_id: str) -> list[str]:
        ids = sorted(i for i, t in self.s.triggers.items() if t["pipeline_id"] == pipeline_id)
        for trigger_id in ids:
            del self.s.triggers[trigger_id]
            self.s.schedules.pop(trigger_id, None)
            self._changed(ChangeKind.TRIGGER, trigger_id)
        self.s.pipelines.pop(pipeline_id, None)
        self._changed(ChangeKind.PIPELINE, pipeline_id)
        return ids

    async def pipeline_versions(self, pipeline_id: str) -> list[Row]:
        rows = [v for (p, _), v in self.s.versions.items() if p == pipeline_id]
        return _page(rows, "version", None, None)

    async def get_pipeline_version(self, pipeline_id: str, version: int) -> Row | None:
        found = self.s.versions.get((pipeline_id, version))
        return dict(found) if found else None

    # -- triggers ------------------------------------------------------------------------
    async def create_trigger(self, row: TriggerRecord) -> None:
        self.s.triggers[row["id"]] = {"fire_count": 0, "last_fired_at": None, **row}
        self._changed(ChangeKind.TRIGGER, row["id"])

    async def get_trigger(self, trigger_id: str) -> TriggerRecord | None:
        found = self.s.triggers.get(trigger_id)
        return cast(TriggerRecord, dict(found)) if found else None

    async def triggers_by_id(self, ids: Iterable[str]) -> list[TriggerRecord]:
        return [
            cast(TriggerRecord, dict(self.s.triggers[i])) for i in set(ids) if i in self.s.triggers
        ]

    async def all_triggers(self) -> list[TriggerRecord]:
        return _page(self.s.triggers.values(), "id", None, None, desc=False)

    async def list_triggers(
        self,
        *,
        pipeline_id: str | None,
        event_type: str | None,
        enabled: bool | None,
        limit: int,
        after: str | None,
    ) -> list[TriggerRecord]:
        rows = [
            t
            for t in self.s.triggers.values()
            if (pipeline_id is None or t["pipeline_id"] == pipeline_id)
            and (event_type is None or t["event_type"] == event_type)
            and (enabled is None or t["enabled"] == enabled)
        ]
        return _page(rows, "id", limit, after)

    async def update_trigger(self, trigger_id: str, values: Row) -> None:
        if trigger_id in self.s.triggers:
            self.s.triggers[trigger_id].update(values)
        self._changed(ChangeKind.TRIGGER, trigger_id)

    async def delete_trigger(self, trigger_id: str) -> bool:
        if self.s.triggers.pop(trigger_id, None) is None:
            return False
        self.s.schedules.pop(trigger_id, None)
        self._changed(ChangeKind.TRIGGER, trigger_id)
        return True

    async def hold_triggers(self, ids: Iterable[str]) -> None:
        return None  # transactions take turns already

    async def count_fires(self, fires: Mapping[str, int], now: float) -> None:
        for trigger_id, count in fires.items():
            row = self.s.triggers.get(trigger_id)
            if row is not None:
                row["fire_count"] = int(row.get("fire_count") or 0) + count
                row["last_fired_at"] = now
            key = (trigger_id, int(now))
            self.s.fires[key] = self.s.fires.get(key, 0) + count

    async def recent_fires(self, trigger_id: str, since: float) -> int:
        return sum(n for (t, b), n in self.s.fires.items() if t == trigger_id and b >= int(since))

    async def reset_breaker(self, trigger_id: str) -> None:
        for key in [k for k in self.s.fires if k[0] == trigger_id]:
            del self.s.fires[key]

    async def trip_trigger(self, trigger_id: str, reason: str, now: float) -> None:
        await self.update_trigger(
            trigger_id, {"enabled": False, "tripped_at": now, "tripped_reason": reason}
        )

    async def trigger_stats(self, trigger: TriggerRecord, now: float) -> TriggerStats:
        trigger_id = trigger["id"]
        decisions: dict[str, int] = {}
        suppressed: dict[str, int] = {}
        for d in self.s.decisions:
            if d["trigger_id"] == trigger_id:
                decisions[d["outcome"]] = decisions.get(d["outcome"], 0) + 1
                if d["outcome"] == "suppressed":
                    code = d["reason_code"] or "unknown"
                    suppressed[code] = suppressed.get(code, 0) + 1
        filtered = sum(
            1
            for e in self.s.events.values()
            if e["event_type"] == trigger["event_type"] and trigger_id in (e.get("filtered") or [])
        )
        if filtered:
            decisions["filtered"] = decisions.get("filtered", 0) + filtered
        mine = [e for e in self.s.executions.values() if e["trigger_id"] == trigger_id]
        return {
            "fire_count": int(trigger.get("fire_count") or 0),
            "last_fired_at": trigger.get("last_fired_at"),
            "decisions": decisions,
            "suppressed": suppressed,
            "rate": {
                name: sum(1 for e in mine if e["created_at"] >= now - span)
                for name, span in (("last_minute", 60.0), ("last_hour", 3600.0))
            },
        }

    # -- events and decisions ------------------------------------------------------------
    async def known_event_ids(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.s.events}

    async def store_ingest(self, batch: IngestBatch) -> set[str]:
        inserted: set[str] = set()
        for event in batch.events:
            if event["event_id"] not in self.s.events:
                self.s.events[event["event_id"]] = {"seq": next(self.s.seq), **event}
                inserted.add(event["event_id"])
        executions = [e for e in batch.executions if e["event_id"] in inserted]
        if len(executions) < len(batch.executions):
            fires: dict[str, int] = {}
            for e in executions:
                if e["trigger_id"] is not None:
                    fires[e["trigger_id"]] = fires.get(e["trigger_id"], 0) + 1
            batch.fires = fires
        kept = {e["id"] for e in executions}
        for e in executions:
            await self.create_execution(e, [s for s in batch.steps if s["execution_id"] == e["id"]])
        del kept
        await self.record_decisions([d for d in batch.decisions if d["event_id"] in inserted])
        return inserted

    async def get_event(self, event_id: str) -> EventRecord | None:
        found = self.s.events.get(event_id)
        return cast(EventRecord, copy.deepcopy(found)) if found else None

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
        def holds(data: Any) -> bool:
            for part in data_path or ():
                if not isinstance(data, dict) or part not in data:
                    return False
                data = data[part]
            return not has_value or data == data_value

        rows = [
            e
            for e in self.s.events.values()
            if (not event_type or e["event_type"] == event_type)
            and (not source or e["source"] == source)
            and (test is None or e["test"] == test)
            and (since is None or e["received_at"] >= since)
            and (started_nothing is None or (e["fired_count"] == 0) == started_nothing)
            and (not filtered_by or filtered_by in (e.get("filtered") or []))
            and (not data_path or holds(e["data"]))
        ]
        return _page(rows, "seq", limit, after)

    async def record_ingest_error(self, row: Row, *, keep: int) -> None:
        self.s.ingest_errors.append({"seq": next(self.s.seq), **row})
        del self.s.ingest_errors[:-keep]

    async def list_ingest_errors(self, limit: int, after: int | None) -> list[Row]:
        return _page(self.s.ingest_errors, "seq", limit, after)

    async def select_event_ids(
        self, event_type: str, since: float | None, until: float | None, limit: int
    ) -> list[str]:
        rows = [
            e
            for e in self.s.events.values()
            if e["event_type"] == event_type
            and not e["test"]
            and (since is None or e["received_at"] >= since)
            and (until is None or e["received_at"] < until)
        ]
        return [r["event_id"] for r in _page(rows, "seq", limit, None, desc=False)]

    async def recent_events(
        self, event_type: str, limit: int, before: int | None = None
    ) -> list[EventRecord]:
        rows = [
            e for e in self.s.events.values() if e["event_type"] == event_type and not e["test"]
        ]
        return _page(rows, "seq", limit, before)

    async def decisions_of(self, event_id: str) -> list[DecisionRecord]:
        return [
            cast(DecisionRecord, dict(d)) for d in self.s.decisions if d["event_id"] == event_id
        ]

    async def record_decisions(self, rows: Sequence[DecisionRecord]) -> None:
        self.s.decisions += [dict(r) for r in rows]

    async def settle_decision(
        self, event_id: str, trigger_id: str, outcome: str, values: Row
    ) -> int:
        changed = 0
        for d in self.s.decisions:
            if (d["event_id"], d["trigger_id"], d["outcome"]) == (event_id, trigger_id, outcome):
                d.update(values)
                changed += 1
        return changed

    async def add_event_fired(self, event_id: str, count: int) -> None:
        if event_id in self.s.events:
            self.s.events[event_id]["fired_count"] += count

    # -- executions ----------------------------------------------------------------------
    async def create_execution(
        self, row: ExecutionRecord, steps: Sequence[StepRecord], *, once: bool = False
    ) -> bool:
        key = row.get("parent_key")
        if (
            once
            and key is not None
            and any(e.get("parent_key") == key for e in self.s.executions.values())
        ):
            return False
        defaults = {"delivery": 0, "held": False, "retry_count": 0, "concurrency_key": None}
        self.s.executions[row["id"]] = {
            **defaults,
            "trigger_id": None,
            "event_id": None,
            "event": None,
            "error": None,
            "started_at": None,
            "finished_at": None,
            "deadline_at": None,
            "max_parallel": None,
            "parent_key": None,
            **copy.deepcopy(dict(row)),
        }
        for step in steps:
            self.s.steps[(step["execution_id"], step["step_id"])] = _step_row(dict(step))
        return True

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        found = self.s.executions.get(execution_id)
        return cast(ExecutionRecord, copy.deepcopy(found)) if found else None

    async def hold_execution(self, execution_id: str) -> None:
        return None

    async def try_hold_execution(self, execution_id: str) -> bool:
        return True

    async def lock_execution(self, execution_id: str) -> ExecutionRecord | None:
        return await self.get_execution(execution_id)

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
        rows = [
            e
            for e in self.s.executions.values()
            if all(
                not want or e[k] == want
                for k, want in (
                    ("pipeline_id", pipeline_id),
                    ("trigger_id", trigger_id),
                    ("event_id", event_id),
                    ("status", status),
                )
            )
            and (since is None or e["created_at"] >= since)
            and (until is None or e["created_at"] < until)
        ]
        return _page(rows, "id", limit, after)

    async def executions_for(self, trigger_id: str, event_id: str) -> list[ExecutionRecord]:
        rows = [
            e
            for e in self.s.executions.values()
            if e["trigger_id"] == trigger_id and e["event_id"] == event_id
        ]
        return _page(rows, "id", None, None)

    async def execution_by_parent_key(self, key: str) -> str | None:
        for e in self.s.executions.values():
            if e.get("parent_key") == key:
                return str(e["id"])
        return None

    async def count_recent_executions(self, trigger_id: str, since: float, cap: int) -> int:
        n = sum(
            1
            for e in self.s.executions.values()
            if e["trigger_id"] == trigger_id and e["created_at"] >= since
        )
        return min(n, cap)

    async def open_executions(self, trigger_id: str, key: str) -> list[ExecutionRecord]:
        rows = [
            e
            for e in self.s.executions.values()
            if e["trigger_id"] == trigger_id
            and e["concurrency_key"] == key
            and e["status"] in OPEN_EXECUTION
        ]
        return _page(rows, "id", None, None)

    async def mark_running(self, execution_id: str, now: float, deadline: float | None) -> None:
        e = self.s.executions.get(execution_id)
        if e is not None and e["status"] == ExecutionStatus.QUEUED:
            e.update(status=ExecutionStatus.RUNNING, started_at=now, deadline_at=deadline)

    async def finish_execution(
        self, execution_id: str, status: ExecutionStatus, error: str | None, now: float
    ) -> ExecutionRecord | None:
        e = self.s.executions.get(execution_id)
        if e is None or e["status"] not in OPEN_EXECUTION:
            return None
        e.update(status=status, error=error, finished_at=now)
        return cast(ExecutionRecord, copy.deepcopy(e))

    def _steps(self, execution_id: str) -> list[Row]:
        return sorted(
            (s for (e, _), s in self.s.steps.items() if e == execution_id),
            key=lambda s: s["position"],
        )

    async def cancel_open_steps(self, execution_id: str, now: float) -> None:
        for s in self._steps(execution_id):
            if s["status"] in OPEN_STEPS:
                s.update(
                    status=StepStatus.CANCELLED,
                    finished_at=now,
                    lease_owner=None,
                    lease_expires_at=None,
                    ready_at=None,
                )
        for a in self.s.attempts:
            if a["execution_id"] == execution_id and a["status"] == StepStatus.RUNNING:
                a.update(status=StepStatus.CANCELLED, finished_at=now, error="cancelled")

    async def release_next_held(self, trigger_id: str, key: str, now: float) -> str | None:
        held = [
            e
            for e in self.s.executions.values()
            if e["trigger_id"] == trigger_id
            and e["concurrency_key"] == key
            and e["held"]
            and e["status"] == ExecutionStatus.QUEUED
        ]
        if not held:
            return None
        nxt = min(held, key=lambda e: e["id"])
        nxt["held"] = False
        for s in self._steps(nxt["id"]):
            if s["ready_at"] is not None and s["ready_at"] >= HELD:
                s["ready_at"] = now
        return str(nxt["id"])

    async def reset_for_retry(self, execution_id: str) -> None:
        for s in self._steps(execution_id):
            if s["status"] in (StepStatus.FAILED, StepStatus.CANCELLED):
                s.update(
                    status=StepStatus.PENDING,
                    error=None,
                    outputs=None,
                    ready_at=None,
                    finished_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempt_base=s["attempts"],
                )
        e = self.s.executions[execution_id]
        e.update(
            status=ExecutionStatus.QUEUED,
            error=None,
            finished_at=None,
            deadline_at=None,
            retry_count=int(e.get("retry_count") or 0) + 1,
        )

    async def reset_steps(self, execution_id: str, step_ids: Sequence[str]) -> None:
        for s in self._steps(execution_id):
            if s["step_id"] in step_ids:
                s.update(
                    status=StepStatus.PENDING,
                    error=None,
                    outputs=None,
                    started_at=None,
                    ready_at=None,
                    finished_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    attempt_base=s["attempts"],
                )

    async def overdue_executions(self, now: float) -> list[ExecutionRecord]:
        rows = [
            e
            for e in self.s.executions.values()
            if e["status"] == ExecutionStatus.RUNNING
            and e["deadline_at"] is not None
            and e["deadline_at"] < now
        ]
        return _page(rows, "id", None, None)

    async def void_leases(self) -> None:
        for s in self.s.steps.values():
            if s["status"] == StepStatus.RUNNING:
                s["lease_expires_at"] = 0.0

    # -- steps and attempts --------------------------------------------------------------
    async def steps_of(self, execution_id: str) -> list[StepRecord]:
        return [cast(StepRecord, copy.deepcopy(s)) for s in self._steps(execution_id)]

    async def claim_steps(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        *,
        execution_id: str | None = None,
        skip_pipelines: Collection[str] = (),
        stragglers: bool = True,
        running_first: bool = True,
    ) -> list[StepRecord]:
        def ready(s: Row) -> bool:
            if s["status"] in (StepStatus.PENDING, StepStatus.WAITING):
                return s["ready_at"] is not None and s["ready_at"] <= now
            return s["status"] == StepStatus.RUNNING and (s["lease_expires_at"] or 0) < now

        candidates = [
            s
            for s in self.s.steps.values()
            if ready(s)
            and self.s.executions[s["execution_id"]]["status"] in OPEN_EXECUTION
            and (execution_id is None or s["execution_id"] == execution_id)
            and self.s.executions[s["execution_id"]]["pipeline_id"] not in skip_pipelines
        ]
        candidates.sort(
            key=lambda s: (
                self.s.executions[s["execution_id"]]["status"] != ExecutionStatus.RUNNING,
                s["ready_at"] or 0.0,
            )
        )
        claimed: list[StepRecord] = []
        for s in candidates:
            if len(claimed) >= limit:
                break
            cap = self.s.executions[s["execution_id"]]["max_parallel"]
            if cap:
                running = sum(
                    1
                    for o in self._steps(s["execution_id"])
                    if o["status"] == StepStatus.RUNNING and (o["lease_expires_at"] or 0) >= now
                )
                if running >= cap:
                    continue
            s.update(
                status=StepStatus.RUNNING,
                attempts=s["attempts"] + 1,
                lease_owner=owner,
                lease_expires_at=now + lease_seconds,
                started_at=s["started_at"] if s["started_at"] is not None else now,
            )
            pipeline_id = self.s.executions[s["execution_id"]]["pipeline_id"]
            claimed.append(cast(StepRecord, {**copy.deepcopy(s), "pipeline_id": pipeline_id}))
        return claimed

    async def start_attempts(self, claims: Sequence[StepRecord], worker: str, now: float) -> None:
        for c in claims:
            for a in self.s.attempts:
                if (
                    (a["execution_id"], a["step_id"]) == (c["execution_id"], c["step_id"])
                    and a["status"] == StepStatus.RUNNING
                    and a["attempt"] < c["attempts"]
                ):
                    a.update(
                        status=StepStatus.FAILED,
                        error="interrupted: the process running this attempt stopped before "
                        "it finished",
                        finished_at=now,
                    )
            outputs = c.get("outputs")
            if isinstance(outputs, dict) and WAIT_KEY in outputs:
                parked = self._attempt((c["execution_id"], c["step_id"]), c["attempts"])
                if parked is not None and parked["status"] == StepStatus.WAITING:
                    parked.update(status=StepStatus.RUNNING, worker=worker)
                    continue
            self.s.attempts.append(
                {
                    "seq": next(self.s.seq),
                    "execution_id": c["execution_id"],
                    "step_id": c["step_id"],
                    "attempt": c["attempts"],
                    "status": StepStatus.RUNNING,
                    "params": None,
                    "outputs": None,
                    "logs": None,
                    "error": None,
                    "worker": worker,
                    "started_at": now,
                    "finished_at": None,
                }
            )

    def _attempt(self, key: StepKey, attempt: int) -> Row | None:
        for a in self.s.attempts:
            if (a["execution_id"], a["step_id"], a["attempt"]) == (*key, attempt):
                return a
        return None

    async def show_attempt(
        self, key: StepKey, attempt: int, params: Any, logs: list[dict[str, Any]]
    ) -> None:
        a = self._attempt(key, attempt)
        if a is not None and a["status"] == StepStatus.RUNNING:
            a.update(params=copy.deepcopy(params), logs=copy.deepcopy(logs))

    def _owned(self, key: StepKey, owner: str, attempt: int) -> Row | None:
        """The step, if it is running as this owner's attempt ``attempt``."""
        s = self.s.steps.get(key)
        if s is None or s["status"] != StepStatus.RUNNING:
            return None
        return s if (s["lease_owner"], s["attempts"]) == (owner, attempt) else None

    async def finish_attempt(
        self, key: StepKey, owner: str, attempt: int, step: Row, record: AttemptRecord
    ) -> bool:
        s = self._owned(key, owner, attempt)
        if s is None:
            return False
        s.update(lease_owner=None, lease_expires_at=None)
        s.update(
            {
                k: copy.deepcopy(step.get(k))
                for k in ("status", "params", "outputs", "logs", "error", "ready_at", "finished_at")
            }
        )
        a = self._attempt(key, attempt)
        if a is not None:
            a.update({k: copy.deepcopy(v) for k, v in record.items()})
        return True

    async def suspend_step(
        self, key: StepKey, owner: str, attempt: int, until: float, state: dict[str, Any]
    ) -> bool:
        s = self._owned(key, owner, attempt)
        if s is None:
            return False
        s.update(
            status=StepStatus.WAITING,
            ready_at=until,
            outputs={WAIT_KEY: copy.deepcopy(state)},
            lease_owner=None,
            lease_expires_at=None,
            attempts=attempt - 1,
        )
        a = self._attempt(key, attempt)
        if a is not None:
            a["status"] = StepStatus.WAITING
        return True

    async def renew_leases(self, owner: str, keys: Sequence[StepKey], until: float) -> set[StepKey]:
        held: set[StepKey] = set()
        for key in keys:
            s = self.s.steps.get(key)
            if s is not None and s["lease_owner"] == owner and s["status"] == StepStatus.RUNNING:
                s["lease_expires_at"] = until
                held.add(key)
        return held

    async def release_steps(self, owner: str, keys: Sequence[StepKey], now: float) -> None:
        for key in keys:
            s = self.s.steps.get(key)
            if s is None or s["lease_owner"] != owner or s["status"] != StepStatus.RUNNING:
                continue
            attempt = s["attempts"]
            s.update(
                status=StepStatus.PENDING,
                ready_at=now,
                attempts=attempt - 1,
                lease_owner=None,
                lease_expires_at=None,
            )
            self.s.attempts = [
                a
                for a in self.s.attempts
                if (a["execution_id"], a["step_id"], a["attempt"]) != (*key, attempt)
            ]

    async def mark_ready(self, execution_id: str, step_id: str, at: float) -> bool:
        s = self.s.steps.get((execution_id, step_id))
        if s is None or s["status"] != StepStatus.PENDING:
            return False
        s["ready_at"] = at
        return True

    async def attempts_of(self, execution_id: str) -> list[AttemptRecord]:
        rows = [a for a in self.s.attempts if a["execution_id"] == execution_id]
        return [cast(AttemptRecord, copy.deepcopy(a)) for a in sorted(rows, key=lambda a: a["seq"])]

    # -- fan-out items and durable waits for events --------------------------------------
    async def add_steps(self, rows: Sequence[StepRecord]) -> None:
        for r in rows:
            key = (r["execution_id"], r["step_id"])
            if key not in self.s.steps:
                self.s.steps[key] = _step_row(copy.deepcopy(dict(r)))

    async def cancel_steps(self, execution_id: str, step_ids: Sequence[str], now: float) -> None:
        for step_id in step_ids:
            s = self.s.steps.get((execution_id, step_id))
            if s is not None and s["status"] == StepStatus.PENDING:
                s.update(status=StepStatus.CANCELLED, finished_at=now, ready_at=None)

    async def wake_step(self, key: StepKey, at: float, state: dict[str, Any] | None) -> bool:
        s = self.s.steps.get(key)
        if s is None or s["status"] != StepStatus.WAITING:
            return False
        s["ready_at"] = at
        if state is not None:
            parked = (s.get("outputs") or {}).get(WAIT_KEY) or {}
            s["outputs"] = {WAIT_KEY: {**copy.deepcopy(parked), **copy.deepcopy(state)}}
        return True

    async def add_waits(self, rows: Sequence[Row]) -> None:
        for r in rows:
            self.s.waits.setdefault((r["id"], r["event_type"]), copy.deepcopy(dict(r)))

    async def waits_for(self, event_types: Collection[str]) -> list[Row]:
        found = [copy.deepcopy(w) for w in self.s.waits.values() if w["event_type"] in event_types]
        return sorted(found, key=lambda w: w["created_at"])

    async def drop_waits(self, execution_id: str, wait_ids: Collection[str] | None = None) -> None:
        for key, w in list(self.s.waits.items()):
            if w["execution_id"] == execution_id and (wait_ids is None or w["id"] in wait_ids):
                del self.s.waits[key]

    # -- deliveries ----------------------------------------------------------------------
    async def record_delivery(self, row: Row) -> None:
        self.s.deliveries.append({"seq": next(self.s.seq), **row})

    async def list_deliveries(
        self, *, execution_id: str | None, channel: str | None, limit: int, after: int | None
    ) -> list[Row]:
        rows = [
            d
            for d in self.s.deliveries
            if (not execution_id or d["execution_id"] == execution_id)
            and (not channel or d["channel"] == channel)
        ]
        return _page(rows, "seq", limit, after)

    # -- flow-control state --------------------------------------------------------------
    async def claim_dedup(
        self, trigger_id: str, key: str, event_id: str, now: float, until: float
    ) -> str | None:
        row = self.s.state.get((trigger_id, "dedup", key))
        if row is not None and row["expires_at"] > now:
            return str(row["value"]["event_id"])
        self.s.state[(trigger_id, "dedup", key)] = {
            "trigger_id": trigger_id,
            "kind": "dedup",
            "key": key,
            "value": {"event_id": event_id},
            "expires_at": until,
        }
        return None

    async def put_debounce(
        self, trigger_id: str, key: str, event_id: str, until: float
    ) -> str | None:
        previous = self.s.state.get((trigger_id, "debounce", key))
        self.s.state[(trigger_id, "debounce", key)] = {
            "trigger_id": trigger_id,
            "kind": "debounce",
            "key": key,
            "value": {"event_id": event_id},
            "expires_at": until,
        }
        return str(previous["value"]["event_id"]) if previous else None

    async def take_due_debounces(self, now: float, limit: int) -> list[Row]:
        due = sorted(
            (
                r
                for r in self.s.state.values()
                if r["kind"] == "debounce" and r["expires_at"] <= now
            ),
            key=lambda r: r["expires_at"],
        )[:limit]
        for r in due:
            del self.s.state[(r["trigger_id"], "debounce", r["key"])]
        return [copy.deepcopy(r) for r in due]

    async def prune(self, now: float) -> None:
        for key, row in list(self.s.state.items()):
            if row["kind"] == "dedup" and row["expires_at"] < now:
                del self.s.state[key]

    # -- channels and secrets ------------------------------------------------------------
    async def list_channels(self) -> list[Row]:
        return [dict(r) for _, r in sorted(self.s.channels.items())]

    async def put_channel(self, name: str, config: dict[str, Any], now: float) -> None:
        self.s.channels[name] = {"name": name, "config": dict(config), "updated_at": now}
        self._changed(ChangeKind.CONFIG, f"channel:{name}")

    async def delete_channel(self, name: str) -> bool:
        if self.s.channels.pop(name, None) is None:
            return False
        self._changed(ChangeKind.CONFIG, f"channel:{name}")
        return True

    async def list_secrets(self) -> list[Row]:
        return [dict(r) for _, r in sorted(self.s.secrets.items())]

    async def put_secret(self, name: str, value: str, now: float) -> None:
        self.s.secrets[name] = {"name": name, "value": value, "updated_at": now}
        self._changed(ChangeKind.CONFIG, f"secret:{name}")

    async def delete_secret(self, name: str) -> bool:
        if self.s.secrets.pop(name, None) is None:
            return False
        self._changed(ChangeKind.CONFIG, f"secret:{name}")
        return True

    # -- platform records ----------------------------------------------------------------
    async def get_record(self, kind: str, record_id: str) -> Row | None:
        found = self.s.records[kind].get(record_id)
        return copy.deepcopy(found) if found else None

    async def insert_record(self, kind: str, row: Row) -> None:
        self.s.records[kind][row["id"]] = copy.deepcopy(row)

    async def update_record(self, kind: str, record_id: str, values: Row) -> None:
        if record_id in self.s.records[kind]:
            self.s.records[kind][record_id].update(copy.deepcopy(values))

    async def delete_record(self, kind: str, record_id: str) -> bool:
        return self.s.records[kind].pop(record_id, None) is not None

    async def list_records(
        self, kind: str, *, where: Mapping[str, Any], limit: int | None, after: str | None
    ) -> list[Row]:
        rows = [
            r
            for r in self.s.records[kind].values()
            if all((r.get(k) is not None) if v is ... else r.get(k) == v for k, v in where.items())
        ]
        return _page(rows, "id", limit, after)

    async def deployment_by_key(self, key: str) -> Row | None:
        for r in self.s.records["deployments"].values():
            if r.get("idempotency_key") == key:
                return copy.deepcopy(r)
        return None

    async def insert_api_key(self, row: Row) -> None:
        self.s.api_keys[row["id"]] = dict(row)

    async def list_api_keys(self) -> list[Row]:
        return _page(self.s.api_keys.values(), "id", None, None)

    async def get_api_key(self, key_id: str) -> Row | None:
        found = self.s.api_keys.get(key_id)
        return dict(found) if found else None

    async def api_key_by_hash(self, digest: str) -> Row | None:
        for row in self.s.api_keys.values():
            if row["hash"] == digest:
                return dict(row)
        return None

    async def revoke_api_key(self, key_id: str, now: float) -> None:
        row = self.s.api_keys.get(key_id)
        if row is not None and row["revoked_at"] is None:
            row["revoked_at"] = now

    async def count_active_api_keys(self) -> int:
        return sum(1 for r in self.s.api_keys.values() if r["revoked_at"] is None)

    async def beat(self, process: Row) -> None:
        self.s.processes[process["id"]] = copy.deepcopy(process)

    async def processes(self, seen_since: float) -> list[Row]:
        rows = [p for p in self.s.processes.values() if p["last_seen"] >= seen_since]
        return _page(rows, "started_at", None, None, desc=False)

    async def forget_process(self, process_id: str) -> None:
        self.s.processes.pop(process_id, None)

    # -- lifecycle outbox ----------------------------------------------------------------
    async def queue_lifecycle(self, execution: ExecutionRecord, now: float) -> None:
        self.s.outbox.append(
            {
                "seq": next(self.s.seq),
                "execution_id": execution["id"],
                "status": str(execution["status"]),
                "execution": copy.deepcopy(lifecycle_snapshot(execution)),
                "created_at": now,
            }
        )

    async def take_lifecycle(self, limit: int) -> list[Row]:
        taken, self.s.outbox = self.s.outbox[:limit], self.s.outbox[limit:]
        return [dict(r) for r in taken]

    # -- schedules -----------------------------------------------------------------------
    async def put_schedule(self, trigger_id: str, next_at: float | None, now: float) -> None:
        row = self.s.schedules.setdefault(
            trigger_id,
            {
                "trigger_id": trigger_id,
                "last_tick_at": None,
                "last_fired_at": None,
                "ticks": 0,
                "skipped": 0,
            },
        )
        row.update(next_at=next_at, updated_at=now)

    async def schedules_of(self, ids: Iterable[str]) -> dict[str, Row]:
        return {i: dict(self.s.schedules[i]) for i in set(ids) if i in self.s.schedules}

    async def due_schedules(self, now: float, limit: int) -> list[Row]:
        due = [
            r
            for r in self.s.schedules.values()
            if r["next_at"] is not None and self.s.triggers.get(r["trigger_id"], {}).get("enabled")
        ]
        return _page([r for r in due if r["next_at"] <= now], "next_at", limit, None, desc=False)

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
        row = self.s.schedules.get(trigger_id)
        if row is None or row["next_at"] != due_at:
            return False
        row.update(
            next_at=next_at,
            last_tick_at=tick_at,
            last_fired_at=now,
            ticks=row["ticks"] + 1,
            skipped=row["skipped"] + skipped,
            updated_at=now,
        )
        return True

    # -- inbound webhooks ----------------------------------------------------------------
    async def insert_hook(self, row: Row) -> None:
        self.s.hooks[row["id"]] = dict(row)

    async def get_hook(self, hook_id: str) -> Row | None:
        found = self.s.hooks.get(hook_id)
        return dict(found) if found else None

    async def list_hooks(self) -> list[Row]:
        return _page(self.s.hooks.values(), "id", None, None, desc=False)

    async def delete_hook(self, hook_id: str) -> bool:
        return self.s.hooks.pop(hook_id, None) is not None

    def wake_workers(self, *, new_executions: bool = False) -> None:
        return None  # one process: its own signals wake its workers

    async def ping(self) -> None:
        return None


class MemoryRepository(Repository):
    dialect = "memory"
    exclusive = True

    def __init__(self, clock: Any = None) -> None:
        self._state = _State()
        self._lock = asyncio.Lock()

    async def open(self, migrate: bool = True) -> None:
        return None

    async def close(self) -> None:
        return None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        async with self._lock:
            saved = copy.deepcopy(self._state.__dict__)
            try:
                yield MemorySession(self._state, self)
            except BaseException:
                self._state.__dict__.update(saved)
                raise
