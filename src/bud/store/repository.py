"""The domain repository: the only way the engine and the services reach the database.

``Repository`` opens and closes the database, hands out transactions and wake-ups.
``Session`` is one transaction and speaks in domain operations: store a batch of events
with their decisions, fire counts, claim steps, start and finish an attempt, advance an
execution, read and write flow-control state. No caller sees a query; the SQL lives in one
implementation per SQL family (``bud.store.sqlite``, ``bud.store.postgres`` on the shared
``bud.store.sql``), free to use each backend's best statements.

Writes that change the catalogue (triggers, event types, pipelines, channels, secrets) also
append to the catalogue log in the same transaction, so every process's cached copy can
catch up: see ``Session.catalogue_changes`` and ``bud.engine.catalogue``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from typing import Any

from bud.store.records import (
    AttemptRecord,
    Change,
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

StepKey = tuple[str, str]  # (execution_id, step_id)


class Session(abc.ABC):
    """One transaction. Every operation is a statement or a short sequence of them."""

    # -- catalogue -----------------------------------------------------------------------
    @abc.abstractmethod
    async def catalogue_version(self) -> int:
        """The newest catalogue change number (0 when nothing has changed yet)."""

    @abc.abstractmethod
    async def catalogue_changes(self, since: int) -> list[Change]:
        """Changes after ``since``, oldest first."""

    # -- event types ---------------------------------------------------------------------
    @abc.abstractmethod
    async def list_event_types(self) -> list[Row]: ...

    @abc.abstractmethod
    async def get_event_type(self, name: str) -> Row | None: ...

    @abc.abstractmethod
    async def put_event_type(self, row: Row) -> None:
        """Register or replace a custom event type."""

    # -- pipelines -----------------------------------------------------------------------
    @abc.abstractmethod
    async def create_pipeline(self, row: PipelineRecord) -> None:
        """Store a new pipeline and its version 1."""

    @abc.abstractmethod
    async def get_pipeline(self, pipeline_id: str) -> PipelineRecord | None: ...

    @abc.abstractmethod
    async def pipelines_by_id(self, ids: Iterable[str]) -> dict[str, PipelineRecord]: ...

    @abc.abstractmethod
    async def list_pipelines(self, limit: int, after: str | None) -> list[PipelineRecord]: ...

    @abc.abstractmethod
    async def pipeline_summaries(
        self, ids: Sequence[str]
    ) -> dict[str, tuple[int, ExecutionRecord | None]]:
        """Per pipeline: how many triggers it has, and its newest execution."""

    @abc.abstractmethod
    async def update_pipeline(
        self, pipeline_id: str, values: Row, new_version: Row | None = None
    ) -> None:
        """Change a pipeline; with ``new_version``, also store that version."""

    @abc.abstractmethod
    async def delete_pipeline(self, pipeline_id: str) -> list[str]:
        """Delete a pipeline and its triggers; return the trigger ids deleted."""

    @abc.abstractmethod
    async def pipeline_versions(self, pipeline_id: str) -> list[Row]: ...

    @abc.abstractmethod
    async def get_pipeline_version(self, pipeline_id: str, version: int) -> Row | None: ...

    # -- triggers ------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_trigger(self, row: TriggerRecord) -> None: ...

    @abc.abstractmethod
    async def get_trigger(self, trigger_id: str) -> TriggerRecord | None: ...

    @abc.abstractmethod
    async def triggers_by_id(self, ids: Iterable[str]) -> list[TriggerRecord]: ...

    @abc.abstractmethod
    async def all_triggers(self) -> list[TriggerRecord]: ...

    @abc.abstractmethod
    async def list_triggers(
        self,
        *,
        pipeline_id: str | None,
        event_type: str | None,
        enabled: bool | None,
        limit: int,
        after: str | None,
    ) -> list[TriggerRecord]: ...

    @abc.abstractmethod
    async def update_trigger(self, trigger_id: str, values: Row) -> None: ...

    @abc.abstractmethod
    async def delete_trigger(self, trigger_id: str) -> bool: ...

    @abc.abstractmethod
    async def hold_triggers(self, ids: Iterable[str]) -> None:
        """Make concurrent transactions that fire these triggers take turns (flow rules
        read, then write, per-trigger state). A no-op where writers never overlap."""

    async def hold_for_firing(
        self, trigger_ids: Iterable[str], pipeline_ids: Iterable[str]
    ) -> dict[str, PipelineRecord]:
        """``hold_triggers``, then ``pipelines_by_id``: what an ingest does before it fires
        (one round trip on PostgreSQL)."""
        await self.hold_triggers(trigger_ids)
        return await self.pipelines_by_id(pipeline_ids)

    @abc.abstractmethod
    async def count_fires(self, fires: Mapping[str, int], now: float) -> None:
        """Add executions started to each trigger's statistics and breaker window."""

    @abc.abstractmethod
    async def recent_fires(self, trigger_id: str, since: float) -> int:
        """How often the trigger fired since ``since`` (the circuit breaker's count)."""

    @abc.abstractmethod
    async def reset_breaker(self, trigger_id: str) -> None:
        """Start the breaker's window afresh (a tripped trigger is enabled again)."""

    @abc.abstractmethod
    async def trip_trigger(self, trigger_id: str, reason: str, now: float) -> None:
        """Disable a trigger whose circuit breaker tripped."""

    @abc.abstractmethod
    async def trigger_stats(self, trigger: TriggerRecord, now: float) -> TriggerStats: ...

    # -- events and decisions ------------------------------------------------------------
    @abc.abstractmethod
    async def known_event_ids(self, ids: Sequence[str]) -> set[str]: ...

    @abc.abstractmethod
    async def store_ingest(self, batch: IngestBatch) -> set[str]:
        """Store new events with their decisions and executions; return the ids stored.

        Events whose id is already stored are skipped together with everything they
        decided: a concurrent publisher stored them first, and its decisions stand.
        """

    @abc.abstractmethod
    async def get_event(self, event_id: str) -> EventRecord | None: ...

    @abc.abstractmethod
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
        """Events, newest first. ``data_path`` (with ``data_value`` when ``has_value``) keeps
        events whose data holds that value at the path, or has the path; ``started_nothing``
        those that started no execution (or some); ``filtered_by`` those whose filter check
        failed for that trigger."""

    @abc.abstractmethod
    async def record_ingest_error(self, row: Row, *, keep: int) -> None:
        """Log a refused publish; keep only the newest ``keep``."""

    @abc.abstractmethod
    async def list_ingest_errors(self, limit: int, after: int | None) -> list[Row]: ...

    @abc.abstractmethod
    async def select_event_ids(
        self, event_type: str, since: float | None, until: float | None, limit: int
    ) -> list[str]:
        """Ids of non-test events of a type, oldest first (for replays)."""

    @abc.abstractmethod
    async def recent_events(
        self, event_type: str, limit: int, before: int | None = None
    ) -> list[EventRecord]:
        """The newest non-test events of a type, older than ``before`` (a ``seq``) when given
        (for backtests, read in chunks)."""

    @abc.abstractmethod
    async def decisions_of(self, event_id: str) -> list[DecisionRecord]: ...

    @abc.abstractmethod
    async def record_decisions(self, rows: Sequence[DecisionRecord]) -> None: ...

    @abc.abstractmethod
    async def settle_decision(
        self, event_id: str, trigger_id: str, outcome: str, values: Row
    ) -> int:
        """Rewrite the event's decision for the trigger that currently reads ``outcome``."""

    @abc.abstractmethod
    async def add_event_fired(self, event_id: str, count: int) -> None: ...

    # -- executions ----------------------------------------------------------------------
    @abc.abstractmethod
    async def create_execution(
        self, row: ExecutionRecord, steps: Sequence[StepRecord], *, once: bool = False
    ) -> bool:
        """Store an execution and its steps. With ``once``, skip it (and return False) when
        its ``parent_key`` already has an execution."""

    @abc.abstractmethod
    async def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    @abc.abstractmethod
    async def hold_execution(self, execution_id: str) -> None:
        """Changes to one execution take turns (its row lock); a no-op where writers never
        overlap."""

    @abc.abstractmethod
    async def try_hold_execution(self, execution_id: str) -> bool:
        """``hold_execution`` unless another transaction holds the row: then False at once.

        For a transaction that already holds step rows (a claim), where waiting for the
        execution's row could deadlock with one that holds it and waits for those steps.
        """

    @abc.abstractmethod
    async def lock_execution(self, execution_id: str) -> ExecutionRecord | None:
        """Read an execution and hold it: changes to one execution take turns."""

    @abc.abstractmethod
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
    ) -> list[ExecutionRecord]: ...

    @abc.abstractmethod
    async def executions_for(self, trigger_id: str, event_id: str) -> list[ExecutionRecord]:
        """Executions a trigger started for an event (one per delivery)."""

    @abc.abstractmethod
    async def execution_by_parent_key(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def count_recent_executions(self, trigger_id: str, since: float, cap: int) -> int:
        """Executions the trigger started since ``since``, counted up to ``cap``."""

    @abc.abstractmethod
    async def open_executions(self, trigger_id: str, key: str) -> list[ExecutionRecord]:
        """Queued or running executions of a trigger with this concurrency key."""

    @abc.abstractmethod
    async def mark_running(self, execution_id: str, now: float, deadline: float | None) -> None:
        """A queued execution starts running."""

    @abc.abstractmethod
    async def finish_execution(
        self, execution_id: str, status: ExecutionStatus, error: str | None, now: float
    ) -> ExecutionRecord | None:
        """Close an open execution: the execution as it now is, None when it was already
        final."""

    @abc.abstractmethod
    async def cancel_open_steps(self, execution_id: str, now: float) -> None: ...

    @abc.abstractmethod
    async def release_next_held(self, trigger_id: str, key: str, now: float) -> str | None:
        """Start the oldest execution held behind this concurrency key, if any."""

    @abc.abstractmethod
    async def reset_for_retry(self, execution_id: str) -> None:
        """Failed and cancelled steps become pending again; the execution queued."""

    @abc.abstractmethod
    async def reset_steps(self, execution_id: str, step_ids: Sequence[str]) -> None:
        """Make these steps pending again, outputs cleared (a retry from a chosen step)."""

    @abc.abstractmethod
    async def overdue_executions(self, now: float) -> list[ExecutionRecord]:
        """Running executions past their deadline."""

    @abc.abstractmethod
    async def void_leases(self) -> None:
        """Every running step's lease has run out (the only process restarted)."""

    # -- steps and attempts: the work queue ----------------------------------------------
    @abc.abstractmethod
    async def steps_of(self, execution_id: str) -> list[StepRecord]:
        """An execution's steps, in definition order."""

    @abc.abstractmethod
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
        """Claim up to ``limit`` ready steps (or steps whose lease ran out) for ``owner``.

        A claim counts as an attempt. Executions with ``max_parallel`` are held to it. Steps of
        running executions go first. With ``execution_id``, only that execution's steps; steps
        of ``skip_pipelines`` are left for later (the worker's fairness rule). Each claimed
        record carries its execution's ``pipeline_id``. With ``stragglers`` false a store may
        skip its separate look for waiting steps and run-out leases of executions not running
        (the worker looks once per poll): those of running executions come first anyway.
        With ``running_first`` false a store may skip its separate look for those steps of
        running executions: they are then claimed in the order they became ready (the worker
        asks for that look only when a wake-up said such steps exist, and once per poll).
        """

    @abc.abstractmethod
    async def start_attempts(self, claims: Sequence[StepRecord], worker: str, now: float) -> None:
        """Record the claimed attempts as running; an earlier attempt still marked running
        was cut short (its process died) and is recorded as failed."""

    @abc.abstractmethod
    async def show_attempt(
        self, key: StepKey, attempt: int, params: Any, logs: list[dict[str, Any]]
    ) -> None:
        """Write a running attempt's rendered params and its log so far."""

    @abc.abstractmethod
    async def finish_attempt(
        self, key: StepKey, owner: str, attempt: int, step: Row, record: AttemptRecord
    ) -> bool:
        """Write a finished attempt and its step, if the step is still this owner's attempt."""

    async def executions_to_run(self, execution_ids: Sequence[str]) -> list[ExecutionRecord]:
        """The executions whose claimed steps are about to run, in one read: every one that
        exists, except a queued one whose row another transaction holds (it would have to
        wait, and the caller holds step rows that transaction may be waiting for)."""
        found: list[ExecutionRecord] = []
        for execution_id in dict.fromkeys(execution_ids):
            row = await self.get_execution(execution_id)
            if row is None:
                continue
            if row["status"] == ExecutionStatus.QUEUED and not await self.try_hold_execution(
                execution_id
            ):
                continue
            found.append(row)
        return found

    async def end_execution(
        self, execution_id: str, status: ExecutionStatus, error: str | None, now: float
    ) -> ExecutionRecord | None:
        """``finish_execution`` and, when it ended the execution, ``queue_lifecycle`` for it
        (in one round trip on PostgreSQL)."""
        ended = await self.finish_execution(execution_id, status, error, now)
        if ended is not None:
            await self.queue_lifecycle(ended, now)
        return ended

    async def mark_running_many(
        self, executions: Sequence[tuple[str, float | None]], now: float
    ) -> None:
        """``mark_running`` for several (execution id, deadline) pairs, in one write."""
        for execution_id, deadline in executions:
            await self.mark_running(execution_id, now, deadline)

    async def steps_of_many(self, execution_ids: Sequence[str]) -> dict[str, list[StepRecord]]:
        """``steps_of`` for several executions, in one read."""
        return {e: await self.steps_of(e) for e in dict.fromkeys(execution_ids)}

    async def finish_and_read(
        self,
        key: StepKey,
        owner: str,
        attempt: int,
        step: Row,
        record: AttemptRecord,
        *,
        hold: bool = False,
    ) -> list[StepRecord] | None:
        """``finish_attempt``, then the execution's steps as they now are (None when the step
        was no longer this owner's attempt). PostgreSQL does both in one round trip.

        With ``hold`` the execution's row is taken first, in the same round trip. The steps
        read may then miss one that another transaction finished while this one waited for
        the row, so only a caller that knows no other step of the execution is open (none
        can finish meanwhile) passes it; the others hold the execution beforehand.
        """
        if hold:
            await self.hold_execution(key[0])
        if not await self.finish_attempt(key, owner, attempt, step, record):
            return None
        return await self.steps_of(key[0])

    async def finish_and_take(
        self,
        key: StepKey,
        owner: str,
        attempt: int,
        step: Row,
        record: AttemptRecord,
        take: Sequence[str],
        now: float,
        lease: float,
        *,
        hold: bool = False,
    ) -> tuple[list[StepRecord], list[StepRecord]] | None:
        """``finish_and_read``, and ``take_steps`` of ``take``: steps this one's end makes
        ready whatever the others' state (their only dependency is this step, which
        succeeded). Returns the execution's steps as they now are (those taken claimed) and
        the steps taken; None when the step was no longer this owner's attempt. A step of
        ``take`` no longer pending on its dependency is left alone. PostgreSQL does it all in
        one round trip."""
        rows = await self.finish_and_read(key, owner, attempt, step, record, hold=hold)
        if rows is None:
            return None
        ready = {r["step_id"] for r in rows if _waits_on_dependencies(r)}
        wanted = [s for s in take if s in ready]
        taken = await self.take_steps(key[0], wanted, owner, now, lease) if wanted else []
        by_id = {t["step_id"]: t for t in taken}
        return [by_id.get(r["step_id"], r) for r in rows], taken

    async def take_steps(
        self, execution_id: str, step_ids: Sequence[str], owner: str, now: float, lease: float
    ) -> list[StepRecord]:
        """Make these pending steps of one execution ready and claim them for ``owner``, their
        attempts started: what a finishing step does with the steps it made ready. The caller
        holds the execution and has checked its ``max_parallel``. PostgreSQL does it in one
        round trip."""
        for step_id in step_ids:
            await self.mark_ready(execution_id, step_id, now)
        claimed = await self.claim_steps(
            owner, now, lease, len(step_ids), execution_id=execution_id
        )
        await self.start_attempts(claimed, owner, now)
        return claimed

    @abc.abstractmethod
    async def suspend_step(
        self, key: StepKey, owner: str, attempt: int, until: float, state: dict[str, Any]
    ) -> bool:
        """Park a running step until ``until`` (status ``waiting``, no lease, the attempt not
        counted; ``state`` comes back to the action when it is claimed again)."""

    @abc.abstractmethod
    async def renew_leases(self, owner: str, keys: Sequence[StepKey], until: float) -> set[StepKey]:
        """Extend the owner's leases; return the keys it still holds."""

    @abc.abstractmethod
    async def release_steps(self, owner: str, keys: Sequence[StepKey], now: float) -> None:
        """Give claimed steps back (a graceful stop): pending again, the attempt not counted."""

    @abc.abstractmethod
    async def mark_ready(self, execution_id: str, step_id: str, at: float) -> bool: ...

    @abc.abstractmethod
    async def attempts_of(self, execution_id: str) -> list[AttemptRecord]: ...

    # -- fan-out items and durable waits for events --------------------------------------
    @abc.abstractmethod
    async def add_steps(self, rows: Sequence[StepRecord]) -> None:
        """Insert steps of an open execution (a fan-out's items); ones that exist stay."""

    @abc.abstractmethod
    async def cancel_steps(self, execution_id: str, step_ids: Sequence[str], now: float) -> None:
        """Cancel these steps where they are pending (items a fan-out will not start)."""

    @abc.abstractmethod
    async def wake_step(self, key: StepKey, at: float, state: dict[str, Any] | None) -> bool:
        """Make a waiting step claimable at ``at``; with ``state``, add its keys to what
        comes back to its action (``ctx.state``). False if the step is not waiting."""

    @abc.abstractmethod
    async def add_waits(self, rows: Sequence[Row]) -> None:
        """Store waits for events: ``id``, ``event_type``, ``kind`` (step | cancel),
        ``execution_id``, ``step_id``, ``filter`` (rendered), ``created_at``."""

    @abc.abstractmethod
    async def waits_for(self, event_types: Collection[str]) -> list[Row]:
        """The stored waits for any of these event types, oldest first."""

    @abc.abstractmethod
    async def drop_waits(self, execution_id: str, wait_ids: Collection[str] | None = None) -> None:
        """Forget an execution's waits (those of ``wait_ids`` only, when given)."""

    # -- deliveries ----------------------------------------------------------------------
    @abc.abstractmethod
    async def record_delivery(self, row: Row) -> None: ...

    @abc.abstractmethod
    async def list_deliveries(
        self, *, execution_id: str | None, channel: str | None, limit: int, after: int | None
    ) -> list[Row]: ...

    # -- flow-control state --------------------------------------------------------------
    @abc.abstractmethod
    async def claim_dedup(
        self, trigger_id: str, key: str, event_id: str, now: float, until: float
    ) -> str | None:
        """Open the dedup window for ``key``; if one is open, return the event that opened it."""

    @abc.abstractmethod
    async def put_debounce(
        self, trigger_id: str, key: str, event_id: str, until: float
    ) -> str | None:
        """Make ``event_id`` the pending debounced event; return the one it supersedes."""

    @abc.abstractmethod
    async def take_due_debounces(self, now: float, limit: int) -> list[Row]:
        """Remove and return debounced events whose quiet period has passed."""

    @abc.abstractmethod
    async def prune(self, now: float) -> None:
        """Drop expired flow-control state."""

    # -- lifecycle events (an outbox written where an execution ends) --------------------
    @abc.abstractmethod
    async def queue_lifecycle(self, execution: ExecutionRecord, now: float) -> None:
        """Note that an execution just ended, in the transaction that ended it, with the
        execution as it ended; the engine turns the note into an ``execution.<status>`` event
        (``take_lifecycle``)."""

    @abc.abstractmethod
    async def take_lifecycle(self, limit: int) -> list[Row]:
        """Remove and return up to ``limit`` notes, oldest first (``seq``, ``execution_id``,
        ``status``, ``execution``, ``created_at``); a concurrent taker gets other notes, or
        none."""

    # -- schedules -----------------------------------------------------------------------
    @abc.abstractmethod
    async def put_schedule(self, trigger_id: str, next_at: float | None, now: float) -> None:
        """Set when a schedule trigger's next tick is due (None: never, e.g. disabled)."""

    @abc.abstractmethod
    async def schedules_of(self, ids: Iterable[str]) -> dict[str, Row]:
        """The schedule state of these triggers (``next_at``, ``last_tick_at``,
        ``last_fired_at``, ``ticks``, ``skipped``)."""

    @abc.abstractmethod
    async def due_schedules(self, now: float, limit: int) -> list[Row]:
        """Schedule states of enabled triggers whose next tick is due at ``now``, the most
        overdue first (a tripped trigger's schedule waits, due, until it is enabled)."""

    @abc.abstractmethod
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
        """Take the tick at ``tick_at`` (``skipped`` missed ticks before it are not fired)
        and move the schedule to ``next_at``, if it still reads ``due_at`` (a conditional
        update): of two processes that try, one wins."""

    # -- inbound webhooks ----------------------------------------------------------------
    @abc.abstractmethod
    async def insert_hook(self, row: Row) -> None: ...

    @abc.abstractmethod
    async def get_hook(self, hook_id: str) -> Row | None: ...

    @abc.abstractmethod
    async def list_hooks(self) -> list[Row]: ...

    @abc.abstractmethod
    async def delete_hook(self, hook_id: str) -> bool: ...

    # -- notification channels and secrets ----------------------------------------------
    @abc.abstractmethod
    async def list_channels(self) -> list[Row]: ...

    @abc.abstractmethod
    async def put_channel(self, name: str, config: dict[str, Any], now: float) -> None: ...

    @abc.abstractmethod
    async def delete_channel(self, name: str) -> bool: ...

    @abc.abstractmethod
    async def list_secrets(self) -> list[Row]: ...

    @abc.abstractmethod
    async def put_secret(self, name: str, value: str, now: float) -> None: ...

    @abc.abstractmethod
    async def delete_secret(self, name: str) -> bool: ...

    # -- the built-in platform's records ------------------------------------------------
    @abc.abstractmethod
    async def get_record(self, kind: str, record_id: str) -> Row | None:
        """A record of the built-in platform (``kind``: models | clusters | deployments |
        deployment_revisions | monitors | cluster_checks)."""

    @abc.abstractmethod
    async def insert_record(self, kind: str, row: Row) -> None: ...

    @abc.abstractmethod
    async def update_record(self, kind: str, record_id: str, values: Row) -> None: ...

    @abc.abstractmethod
    async def delete_record(self, kind: str, record_id: str) -> bool: ...

    @abc.abstractmethod
    async def list_records(
        self, kind: str, *, where: Mapping[str, Any], limit: int | None, after: str | None
    ) -> list[Row]:
        """Records whose fields equal ``where`` (a value ``...`` means "is set")."""

    @abc.abstractmethod
    async def deployment_by_key(self, key: str) -> Row | None: ...

    # -- API keys (stored hashed) ---------------------------------------------------------
    @abc.abstractmethod
    async def insert_api_key(self, row: Row) -> None: ...

    @abc.abstractmethod
    async def list_api_keys(self) -> list[Row]: ...

    @abc.abstractmethod
    async def get_api_key(self, key_id: str) -> Row | None: ...

    @abc.abstractmethod
    async def api_key_by_hash(self, digest: str) -> Row | None: ...

    @abc.abstractmethod
    async def revoke_api_key(self, key_id: str, now: float) -> None: ...

    @abc.abstractmethod
    async def count_active_api_keys(self) -> int: ...

    # -- processes sharing the store -----------------------------------------------------
    @abc.abstractmethod
    async def beat(self, process: Row) -> None:
        """Record a process's heartbeat (insert or replace by ``id``)."""

    @abc.abstractmethod
    async def processes(self, seen_since: float) -> list[Row]:
        """Processes whose last heartbeat is at or after ``seen_since``, oldest first."""

    @abc.abstractmethod
    async def forget_process(self, process_id: str) -> None: ...

    @abc.abstractmethod
    def wake_workers(self, *, new_executions: bool = False) -> None:
        """After this transaction commits, wake idle workers of every process (NOTIFY on
        PostgreSQL); steps became ready. ``new_executions`` says they are only the first
        steps of executions this transaction started (no running execution's)."""

    # -- health --------------------------------------------------------------------------
    @abc.abstractmethod
    async def ping(self) -> None: ...


def _waits_on_dependencies(row: StepRecord) -> bool:
    return row["status"] == StepStatus.PENDING and row["ready_at"] is None


#: The channel a commit that made steps ready notifies (LISTEN/NOTIFY), and its payloads:
#: what the commit made ready.
WORK_CHANNEL = "bud_work"
NEW_WORK = ""  # new executions (their first steps)
READY_STEPS = "steps"  # steps of running executions: woken waits, fan-out items, steps left over


class Repository(abc.ABC):
    """A database: sessions, and wake-ups that other processes' commits send."""

    dialect: str = ""
    #: True where one process owns the database (SQLite's data-dir lock)
    exclusive: bool = False
    #: True where ``wakeups`` tell new executions (payload ``NEW_WORK``) from steps of
    #: running executions made ready (``READY_STEPS``)
    tells_work: bool = False

    @abc.abstractmethod
    async def open(self, migrate: bool = True) -> None:
        """Connect and (unless ``migrate`` is false) bring the schema to the newest revision."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Session]:
        """A session that commits when the block ends, or rolls back on an exception."""

    def read(self) -> contextlib.AbstractAsyncContextManager[Session]:
        """A session that only reads."""
        return self.transaction()

    async def wakeups(self, channel: str) -> AsyncIterator[str]:
        """Payloads other processes send on ``channel`` after they commit (PostgreSQL's
        LISTEN/NOTIFY). Backends without it yield nothing; callers poll as a fallback."""
        return
        yield  # pragma: no cover - makes this an async generator

    async def __aenter__(self) -> Repository:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
