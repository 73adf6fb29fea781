"""PostgreSQL through psycopg 3: row locks, ``FOR UPDATE SKIP LOCKED`` claims, LISTEN/NOTIFY.

Many processes share one database. Claims skip rows other claimers hold; writers of one
execution or one trigger's flow state take turns on its row; catalogue changes are
numbered under an advisory lock (so they commit in number order and no reader skips one)
and announced with NOTIFY in the committing transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Column, Table, literal, text, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from bud.store import schema as t
from bud.store.hot import (
    EXECUTION_JSON,
    EXECUTION_NAMES,
    HotSession,
    execution_record,
    pyformat,
    step_record,
)
from bud.store.records import (
    LIFECYCLE_EVENT_FIELDS,
    LIFECYCLE_FIELDS,
    ChangeKind,
    IngestBatch,
    TriggerRecord,
)
from bud.store.repository import WORK_CHANNEL, StepKey
from bud.store.sql import SqlRepository, SqlSession, json_dumps

log = logging.getLogger("bud.store")

CATALOGUE_CHANNEL = "bud_catalogue"
_CATALOGUE_LOCK = 727275


def _libpq_url(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class PostgresSession(HotSession):
    lock_rows = " FOR UPDATE OF s SKIP LOCKED"  # claimers pass over rows others hold
    skip_held = "FOR UPDATE SKIP LOCKED"

    @staticmethod
    def _json_in(name: str) -> str:
        return f"CAST(:{name} AS jsonb)"

    @staticmethod
    def _json_out(column: str) -> str:
        return f"CAST({column} AS text)"

    @staticmethod
    def _among(column: str, values: Sequence[str], name: str = "x") -> tuple[str, dict[str, Any]]:
        return f"{column} = ANY(CAST(:{name} AS text[]))", {name: list(values)}

    @staticmethod
    def _keyed(column: str) -> str:
        return f"({column} || '')"  # an expression: no index on the column serves it

    @classmethod
    def build_statements(cls) -> dict[str, str]:
        # The claims' candidate queries, in shapes whose plans do not hang on statistics. A
        # queue's statistics are always wrong: its tables are analysed at rest, when no step
        # is pending, so the planner expects one ready step where thousands wait. With the
        # plain join it then matched each candidate step against every open execution (a
        # claim took 5-15 ms with a thousand events queued). Here the execution of each
        # candidate is looked up by its key (OFFSET 0 keeps the planner from flattening the
        # lookup back into a join), and the steps of running executions are read through
        # each one's key (``_keyed`` keeps the status index out of those lookups).
        sql = super().build_statements()
        status, x_status = cls._keyed("s.status"), cls._keyed("x.status")
        select = "SELECT s.execution_id, s.step_id, e.max_parallel, e.pipeline_id FROM "
        execution = (
            "steps s CROSS JOIN LATERAL (SELECT max_parallel, pipeline_id FROM executions x "
            f"WHERE x.id = s.execution_id AND {x_status} IN ('queued', 'running') OFFSET 0) e "
            "WHERE "
        )
        sql["of_running"] = (
            f"{select}executions e CROSS JOIN LATERAL (SELECT execution_id, step_id FROM steps s "
            f"WHERE s.execution_id = e.id AND (({status} IN ('pending', 'waiting') "
            f"AND s.ready_at <= :now) OR ({status} = 'running' "
            "AND s.lease_expires_at < :now)) FOR UPDATE SKIP LOCKED) s "
            "WHERE e.status = 'running' {skip}LIMIT :limit"
        )
        sql["by_status"] = (
            f"{select}{execution}s.status = :status AND s.ready_at <= :now "
            f"{{skip}}ORDER BY s.ready_at LIMIT :limit{cls.lock_rows}"
        )
        sql["expired"] = (
            f"{select}{execution}s.status = 'running' AND s.lease_expires_at < :now "
            f"{{skip}}LIMIT :limit{cls.lock_rows}"
        )
        return sql

    def __init__(self, conn: Any, repo: SqlRepository) -> None:
        super().__init__(conn, repo)
        self._psycopg: Any = None

    async def _driver(self) -> Any:
        """The psycopg connection under this session's (it is inside the same transaction)."""
        if self._psycopg is None:
            self._psycopg = (await self.conn.get_raw_connection()).driver_connection
        return self._psycopg

    async def _rows(self, sql: str, params: Any = ()) -> list[Any]:
        cur = await (await self._driver()).execute(pyformat(sql), params)
        rows: list[Any] = await cur.fetchall()
        return rows

    async def _one(self, sql: str, params: Any = ()) -> Any:
        cur = await (await self._driver()).execute(pyformat(sql), params)
        return await cur.fetchone()

    async def _run(self, sql: str, params: Any = ()) -> int:
        cur = await (await self._driver()).execute(pyformat(sql), params)
        return int(cur.rowcount)

    async def _finish(self, params: dict[str, Any]) -> bool:
        # The step and its attempt in one round trip: the attempt's update runs only if the
        # step's did (data-modifying CTEs all run; the EXISTS ties the second to the first).
        sql = self._sql
        row = await self._one(
            f"WITH s AS ({sql['finish_step']} RETURNING 1), "
            f"a AS ({sql['finish_attempt']} AND EXISTS (SELECT 1 FROM s) RETURNING 1) "
            "SELECT count(*) FROM s",
            params,
        )
        return bool(row and row[0])

    async def end_execution(
        self, execution_id: str, status: Any, error: str | None, now: float
    ) -> Any:
        # The lifecycle note is built from the row the UPDATE returns: lifecycle_snapshot's
        # fields, in SQL.
        fields = ", ".join(f"'{name}', u.{name}" for name in LIFECYCLE_FIELDS)
        event = ", ".join(f"'{k}', u.event -> '{k}'" for k in LIFECYCLE_EVENT_FIELDS)
        columns = ", ".join(
            f"CAST(u.{c} AS text)" if c in EXECUTION_JSON else f"u.{c}" for c in EXECUTION_NAMES
        )
        row = await self._one(
            f"WITH u AS ({self._sql['finish_raw']}), "
            "l AS (INSERT INTO lifecycle_outbox (execution_id, status, execution, created_at) "
            f"SELECT u.id, u.status, jsonb_build_object({fields}, 'event', "
            f"jsonb_build_object({event})), :now FROM u) SELECT {columns} FROM u",
            {"exe": execution_id, "status": str(status), "error": error, "now": now},
        )
        return execution_record(row)

    async def hold_for_firing(self, trigger_ids: Any, pipeline_ids: Any) -> Any:
        # The triggers' rows are taken (in id order) by an InitPlan, before the pipelines are
        # read; those come from the statement's snapshot, which is enough: a pipeline's
        # change does not wait for a trigger's row.
        triggers = sorted(set(trigger_ids))
        wanted = sorted(set(pipeline_ids))
        if not triggers or not wanted:
            return await super().hold_for_firing(triggers, wanted)
        rows = await self._rows(
            "SELECT id, name, description, version, CAST(definition AS text), created_at, "
            "updated_at FROM pipelines WHERE id = ANY(CAST(:pipelines AS text[])) AND "
            "(SELECT count(*) FROM (SELECT id FROM triggers WHERE id = ANY(CAST(:triggers AS "
            "text[])) ORDER BY id FOR UPDATE) AS held) >= 0",
            {"pipelines": wanted, "triggers": triggers},
        )
        names = ("id", "name", "description", "version", "definition", "created_at", "updated_at")
        out: dict[str, Any] = {}
        for row in rows:
            record = dict(zip(names, row, strict=True))
            record["definition"] = orjson.loads(record["definition"])
            out[record["id"]] = record
        return out

    async def store_ingest(self, batch: IngestBatch) -> set[str]:
        # Events, executions, steps and decisions in one statement, each table's rows as one
        # JSON parameter: an event already stored keeps its row, and so nothing of it is
        # written (its executions, their steps and its decisions go with the events this
        # statement inserted).
        if not batch.events:
            return await super().store_ingest(batch)
        tables: list[tuple[Table, Sequence[Mapping[str, Any]], str]] = [
            (t.events, cast(Sequence[Mapping[str, Any]], batch.events), "ev"),
            (t.executions, cast(Sequence[Mapping[str, Any]], batch.executions), "ex"),
            (t.steps, cast(Sequence[Mapping[str, Any]], batch.steps), "st"),
            (t.decisions, cast(Sequence[Mapping[str, Any]], batch.decisions), "de"),
        ]
        params = {name: _json_rows(table, rows) for table, rows, name in tables}
        ev, ex, st, de = (_json_insert(table, name) for table, _rows, name in tables)
        # Workers to wake for the new executions: the NOTIFY goes in this statement (it is
        # sent at commit all the same) instead of a round trip of its own before the commit.
        notify = woken = ""
        if self._wake_workers:
            notify = f", n AS (SELECT pg_notify('{WORK_CHANNEL}', '{self._work_said()}'))"
            woken = " UNION ALL SELECT NULL FROM n"
            self._wake_workers = self._ready_steps = False
        rows = await self._rows(
            f"WITH ev AS ({ev} ON CONFLICT (event_id) DO NOTHING RETURNING event_id), "
            f"ex AS ({ex} WHERE r.event_id IS NULL OR r.event_id IN (SELECT event_id FROM ev) "
            "RETURNING id), "
            f"st AS ({st} WHERE r.execution_id IN (SELECT id FROM ex)), "
            f"de AS ({de} WHERE r.event_id IN (SELECT event_id FROM ev)){notify} "
            f"SELECT event_id FROM ev{woken}",
            params,
        )
        inserted = {str(r[0]) for r in rows if r[0] is not None}
        if len(inserted) < len(batch.events):
            fires: dict[str, int] = {}
            for r in batch.executions:
                trigger_id = r.get("trigger_id")
                if r.get("event_id") in inserted and trigger_id is not None:
                    fires[trigger_id] = fires.get(trigger_id, 0) + 1
            batch.fires = fires
        return inserted

    async def count_fires(self, fires: Any, now: float) -> None:
        # The triggers' counts and the breaker's bucket in one statement (the ingest holds the
        # triggers' rows, in id order).
        if not fires:
            return
        ids = sorted(fires)
        await self._run(
            "WITH k AS (SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:ns AS integer[])) "
            "AS k(id, n)), u AS (UPDATE triggers SET fire_count = fire_count + k.n, "
            "last_fired_at = :now FROM k WHERE triggers.id = k.id) "
            "INSERT INTO trigger_fires (trigger_id, bucket, fires) SELECT k.id, :bucket, k.n "
            "FROM k ON CONFLICT (trigger_id, bucket) DO UPDATE "
            "SET fires = trigger_fires.fires + excluded.fires",
            {"ids": ids, "ns": [int(fires[i]) for i in ids], "now": now, "bucket": int(now)},
        )

    async def mark_running_many(self, executions: Any, now: float) -> None:
        if len(executions) < 2:
            await super().mark_running_many(executions, now)
            return
        await self._run(
            "UPDATE executions SET status = 'running', started_at = :now, "
            "deadline_at = k.deadline FROM unnest(CAST(:exes AS text[]), "
            "CAST(:deadlines AS double precision[])) AS k(exe, deadline) "
            f"WHERE id = k.exe AND {self._keyed('status')} = 'queued'",
            {
                "now": now,
                "exes": [e for e, _d in executions],
                "deadlines": [d for _e, d in executions],
            },
        )

    async def _add_attempts(self, fresh: list[dict[str, Any]]) -> None:
        # One INSERT from arrays: psycopg's executemany runs a pipeline of statements.
        if len(fresh) < 2:
            await self._run(self._sql["attempt"], fresh[0])
            return
        await self._run(
            "INSERT INTO step_attempts (execution_id, step_id, attempt, status, worker, "
            "started_at) SELECT k.exe, k.step, k.attempt, 'running', k.worker, k.now "
            "FROM unnest(CAST(:exes AS text[]), CAST(:steps AS text[]), "
            "CAST(:attempts AS integer[]), CAST(:workers AS text[]), "
            "CAST(:nows AS double precision[])) AS k(exe, step, attempt, worker, now)",
            {
                "exes": [f["exe"] for f in fresh],
                "steps": [f["step"] for f in fresh],
                "attempts": [f["attempt"] for f in fresh],
                "workers": [f["worker"] for f in fresh],
                "nows": [f["now"] for f in fresh],
            },
        )

    async def _claim_chosen(self, chosen: Any, values: dict[str, Any]) -> list[Any]:
        # Every chosen step in one UPDATE (the claim's SELECT holds their rows).
        if len(chosen) < 2:
            return await super()._claim_chosen(chosen, values)
        columns = self._sql["step_columns"]
        ready = self._sql["claimable"]
        rows = await self._rows(
            "UPDATE steps SET status = 'running', attempts = attempts + 1, "
            "lease_owner = :owner, lease_expires_at = :until, "
            "started_at = coalesce(started_at, :now) "
            "FROM unnest(CAST(:exes AS text[]), CAST(:steps AS text[])) AS k(exe, step) "
            f"WHERE execution_id = k.exe AND step_id = k.step AND {ready} RETURNING {columns}",
            {**values, "exes": [c[0] for c in chosen], "steps": [c[1] for c in chosen]},
        )
        got = {(r["execution_id"], r["step_id"]): r for r in map(step_record, rows)}
        return [
            {**got[(exe, step_id)], "pipeline_id": pipeline_id}
            for exe, step_id, pipeline_id in chosen
            if (exe, step_id) in got
        ]

    def _finishing(self, hold: bool) -> str:
        """``WITH`` the step's UPDATE (``s``, returning it) and its attempt's (``a``, only if
        the step's ran); with ``hold`` the execution's row taken first (``h``)."""
        sql = self._sql
        held = "h AS (SELECT id FROM executions WHERE id = :exe FOR UPDATE), " if hold else ""
        after = " AND EXISTS (SELECT 1 FROM h)" if hold else ""
        return (
            f"WITH {held}s AS ({sql['finish_step']}{after} RETURNING {sql['step_columns']}), "
            f"a AS ({sql['finish_attempt']} AND EXISTS (SELECT 1 FROM s) RETURNING 1)"
        )

    async def finish_and_read(
        self, key: StepKey, owner: str, attempt: int, step: Any, record: Any, *, hold: bool = False
    ) -> Any:
        # The step, its attempt, and the execution's steps in one round trip. The SELECT
        # sees the statement's snapshot (the step as it was), so the step comes from the
        # UPDATE's RETURNING instead. Held beforehand, the other steps are as current as a
        # statement of their own would read them; with ``hold`` the execution's row is taken
        # (before the step's: the order a cancel takes them in) by the step's UPDATE.
        columns = self._sql["step_columns"]
        rows = await self._rows(
            f"{self._finishing(hold)} "
            f"SELECT {columns} FROM steps WHERE execution_id = :exe AND step_id <> :step "
            "AND EXISTS (SELECT 1 FROM s) UNION ALL SELECT * FROM s",
            self._finish_params(key, owner, attempt, step, record),
        )
        if not rows:
            return None
        return sorted((step_record(r) for r in rows), key=lambda r: r["position"])

    async def finish_and_take(
        self,
        key: StepKey,
        owner: str,
        attempt: int,
        step: Any,
        record: Any,
        take: Any,
        now: float,
        lease: float,
        *,
        hold: bool = False,
    ) -> Any:
        # finish_and_read's statement with take_steps' in it: the next steps are claimed and
        # their attempts started by the statement that records this one (each sees the rows
        # as they were before it, so the steps taken come from their UPDATE's RETURNING, and
        # every claim waits for this step's write to have happened).
        if not take:
            rows = await self.finish_and_read(key, owner, attempt, step, record, hold=hold)
            return None if rows is None else (rows, [])
        columns = self._sql["step_columns"]
        params = self._finish_params(key, owner, attempt, step, record)
        params.update(take=list(take), now=now, until=now + lease)
        found = await self._rows(
            f"{self._finishing(hold)}, "
            "c AS (UPDATE steps SET status = 'running', attempts = attempts + 1, "
            "lease_owner = :owner, lease_expires_at = :until, "
            "started_at = coalesce(started_at, :now), ready_at = :now "
            "WHERE execution_id = :exe AND step_id = ANY(CAST(:take AS text[])) "
            f"AND {self._keyed('status')} = 'pending' AND ready_at IS NULL "
            "AND EXISTS (SELECT 1 FROM s) "
            f"RETURNING {columns}), "
            "t AS (INSERT INTO step_attempts (execution_id, step_id, attempt, status, worker, "
            "started_at) SELECT execution_id, step_id, attempts, 'running', :owner, :now "
            "FROM c WHERE attempts = 1) "
            f"SELECT {columns}, false FROM steps WHERE execution_id = :exe AND step_id <> :step "
            "AND step_id NOT IN (SELECT step_id FROM c) AND EXISTS (SELECT 1 FROM s) "
            "UNION ALL SELECT *, false FROM s UNION ALL SELECT *, true FROM c",
            params,
        )
        if not found:
            return None
        pairs = sorted(
            ((step_record(r[:-1]), r[-1]) for r in found), key=lambda p: p[0]["position"]
        )
        taken = [r for r, was_taken in pairs if was_taken]
        again = [r for r in taken if r["attempts"] > 1]  # given back before: start_attempts
        if again:
            await super().start_attempts(again, owner, now)
        return [r for r, _taken in pairs], taken

    async def take_steps(
        self, execution_id: str, step_ids: Any, owner: str, now: float, lease: float
    ) -> Any:
        # Ready, claimed and a first attempt started, in one round trip. A step claimed
        # before (attempts > 1: it was given back) goes through start_attempts instead.
        columns = self._sql["step_columns"]
        rows = await self._rows(
            "WITH c AS (UPDATE steps SET status = 'running', attempts = attempts + 1, "
            "lease_owner = :owner, lease_expires_at = :until, "
            "started_at = coalesce(started_at, :now), ready_at = coalesce(ready_at, :now) "
            "WHERE execution_id = :exe AND step_id = ANY(:steps) "
            f"AND {self._keyed('status')} = 'pending' "
            f"RETURNING {columns}), "
            "a AS (INSERT INTO step_attempts (execution_id, step_id, attempt, status, worker, "
            "started_at) SELECT execution_id, step_id, attempts, 'running', :owner, :now "
            "FROM c WHERE attempts = 1) SELECT * FROM c",
            {
                "exe": execution_id,
                "steps": list(step_ids),
                "owner": owner,
                "until": now + lease,
                "now": now,
            },
        )
        claimed = sorted((step_record(r) for r in rows), key=lambda r: r["position"])
        again = [c for c in claimed if c["attempts"] > 1]
        if again:
            await super().start_attempts(again, owner, now)
        return claimed

    async def _many(self, sql: str, params: Any) -> None:
        async with (await self._driver()).cursor() as cur:
            await cur.executemany(pyformat(sql), params)

    async def _changed(self, kind: ChangeKind, key: str) -> None:
        if not self._catalogue_changed:
            await self.conn.execute(text(f"SELECT pg_advisory_xact_lock({_CATALOGUE_LOCK})"))
        await super()._changed(kind, key)

    async def _filtered_count(self, trigger: TriggerRecord) -> int:
        sql = text(
            "SELECT count(*) FROM events WHERE event_type = :event_type "
            "AND filtered @> jsonb_build_array(CAST(:trigger_id AS text))"
        )
        params = {"event_type": trigger["event_type"], "trigger_id": trigger["id"]}
        return int((await self.conn.execute(sql, params)).scalar() or 0)

    def _filtered_by(self, trigger_id: str) -> Any:
        return type_coerce(t.events.c.filtered, JSONB).contains([trigger_id])

    def _data_holds(self, parts: list[str], value: Any, has_value: bool) -> Any:
        at = t.events.c.data[tuple(parts)]
        if not has_value:
            return at.is_not(None)
        return at == literal(value, type_=JSONB)


@functools.cache
def _ingest_columns(table: Table) -> tuple[Column[Any], ...]:
    """The columns an ingest row may give (all but an autoincrement key)."""
    return tuple(c for c in table.columns if not (c.primary_key and c.autoincrement is True))


@functools.cache
def _json_insert(table: Table, name: str) -> str:
    """``INSERT INTO <table> (...) SELECT ... FROM`` the rows of the JSON parameter ``:name``,
    read as the table's own row type (``r``). A JSON column's ``null`` stays JSON ``null``,
    as SQLAlchemy writes None."""
    columns = _ingest_columns(table)
    names = ", ".join(f'"{c.name}"' for c in columns)
    values = ", ".join(
        f"coalesce(r.\"{c.name}\", 'null')" if isinstance(c.type, JSON) else f'r."{c.name}"'
        for c in columns
    )
    return (
        f"INSERT INTO {table.name} ({names}) SELECT {values} FROM "
        f"jsonb_populate_recordset(NULL::{table.name}, CAST(:{name} AS jsonb)) AS r"
    )


@functools.cache
def _converters(table: Table) -> tuple[tuple[str, Any, Any], ...]:
    """Each ingest column's name, default (a missing key) and Python type (None for JSON)."""
    out = []
    for c in _ingest_columns(table):
        scalar = c.default if isinstance(c.default, ScalarElementColumnDefault) else None
        python = None if isinstance(c.type, JSON) else c.type.python_type
        out.append((str(c.name), scalar.arg if scalar is not None else None, python))
    return tuple(out)


def _json_rows(table: Table, rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as one JSON array of objects in the columns' types, a missing key as the
    column's Python default (orjson writes them in C: no array per column to dump)."""
    converters = _converters(table)
    out = []
    for row in rows:
        item: dict[str, Any] = {}
        for name, default, python in converters:
            v = row.get(name, default)
            if python is not None and v is not None:
                v = v.value if isinstance(v, enum.Enum) else python(v)
            item[name] = v
        out.append(item)
    return orjson.dumps(out).decode()


class PostgresRepository(SqlRepository):
    dialect = "postgresql"
    tells_work = True  # each NOTIFY on the work channel says what it made ready
    session_class = PostgresSession

    def __init__(self, url: str, clock: Any = None) -> None:
        super().__init__(url, clock)
        self.engine: AsyncEngine | None = None

    async def _connect(self) -> None:
        if self.engine is not None:
            return
        url = "postgresql+psycopg://" + _libpq_url(self.url).split("://", 1)[1]
        self.engine = create_async_engine(
            url,
            json_serializer=json_dumps,
            # orjson reads numbers beyond 64 bits (jsonb keeps 1e20 as an
            # integer literal) as floats, so a stored float never makes a read fail.
            json_deserializer=orjson.loads,
            pool_size=10,
            max_overflow=10,
            # No ping per checkout (a round trip per transaction): a connection PostgreSQL
            # dropped fails one transaction, and the pool then renews every connection.
            pool_pre_ping=False,
        )

    async def _disconnect(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        assert self.engine is not None, "repository is not open"
        async with self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresSession]:
        # The transaction is psycopg's own: it begins with the first statement and commits
        # (or rolls back) through psycopg, which costs a quarter less client CPU than
        # SQLAlchemy's transaction around it (two greenlet switches and its bookkeeping). Core
        # statements of the session run on the same connection, inside the same transaction;
        # SQLAlchemy's rollback when the connection goes back to the pool finds nothing to do.
        assert self.engine is not None, "repository is not open"
        async with self.engine.connect() as conn:
            assert conn.sync_connection is not None
            driver: Any = conn.sync_connection.connection.driver_connection
            session = PostgresSession(conn, self)
            session._psycopg = driver
            try:
                yield session
                await self._before_commit(session)
                await driver.commit()
            except BaseException:
                if driver.broken or driver.closed:
                    # The server went away: its other connections went with this one.
                    await conn.invalidate()
                    await self.engine.dispose()
                else:
                    with contextlib.suppress(Exception):
                        await driver.rollback()
                raise

    def insert(self, table: Table) -> Any:
        return pg_insert(table)

    async def _before_commit(self, session: SqlSession) -> None:
        if session._catalogue_changed:
            await session.conn.execute(text(f"SELECT pg_notify('{CATALOGUE_CHANNEL}', '')"))
        if session._wake_workers:
            said = session._work_said()
            await session.conn.execute(text(f"SELECT pg_notify('{WORK_CHANNEL}', '{said}')"))

    async def wakeups(self, channel: str) -> AsyncIterator[str]:
        """NOTIFY payloads on ``channel`` from a dedicated connection, reconnecting on loss."""
        import psycopg

        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(_libpq_url(self.url), autocommit=True)
            except psycopg.Error:
                log.warning("LISTEN %s: cannot connect; retrying", channel)
                await asyncio.sleep(1.0)
                continue
            try:
                async with conn:
                    await conn.execute(f"LISTEN {channel}")
                    yield ""  # listening: whatever changed before now must be read
                    async for notify in conn.notifies():
                        yield notify.payload
            except psycopg.Error:
                log.warning("LISTEN %s: connection lost; reconnecting", channel)
                await asyncio.sleep(0.5)
