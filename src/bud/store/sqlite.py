"""SQLite in WAL mode: the embedded default.

SQLite has one writer and answers in microseconds from the page cache, so the repository
keeps one connection and runs statements on it directly from the event loop. Handing every
statement to a driver thread cost more than the statement itself: about 1 ms of thread round
trips per statement against tens of microseconds of work. Transactions take turns on an
``asyncio.Lock``; a transaction's statements never yield to other tasks in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from bud.store.records import WAIT_KEY
from bud.store.sql import SqlRepository, SqlSession, json_dumps

log = logging.getLogger("bud.store")


class SyncConnection:
    """The async face of a synchronous connection, as sessions and migrations use it."""

    def __init__(self, conn: Connection) -> None:
        self.sync = conn

    async def execute(self, stmt: Any, params: Any = None) -> Any:
        return self.sync.execute(stmt, params) if params is not None else self.sync.execute(stmt)

    async def exec_driver_sql(self, sql: str) -> Any:
        return self.sync.exec_driver_sql(sql)

    async def run_sync(self, fn: Callable[[Connection], Any]) -> Any:
        return fn(self.sync)


class _Checkpointer(threading.Thread):
    """Copies committed pages from the WAL into the database file, on a thread of its own.

    A commit then only appends to the WAL; without this, every thousandth commit on the event
    loop would stop to copy a thousand pages and flush the file (SQLite's autocheckpoint). The
    WAL is checkpointed every ``interval`` seconds, and truncated when the store closes.
    """

    def __init__(self, path: str, interval: float = 0.1) -> None:
        super().__init__(name="bud-sqlite-checkpoint", daemon=True)
        self.path = path
        self.interval = interval
        self._closing = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            while not self._closing.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.exception("WAL checkpoint failed (tried again shortly)")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()

    def close(self) -> None:
        self._closing.set()
        self.join(timeout=10)


class SqliteSession(SqlSession):
    row_locks = False  # BEGIN IMMEDIATE: one writer at a time already


class SqliteRepository(SqlRepository):
    dialect = "sqlite"
    exclusive = True  # one process per data directory (the flock in bud.services)
    session_class: type[SqlSession] = SqliteSession

    def __init__(self, url: str, clock: Any = None) -> None:
        super().__init__(url, clock)
        self.engine: Engine | None = None
        self._lock: asyncio.Lock | None = None
        self._conn: Any = None
        self._raw: Any = None
        self._checkpointer: _Checkpointer | None = None

    async def _connect(self) -> None:
        if self.engine is not None:
            return
        url = self.url.replace("sqlite+aiosqlite://", "sqlite://", 1)
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        checkpointer = _Checkpointer(path) if path and path != ":memory:" else None
        engine = create_engine(
            url,
            json_serializer=json_dumps,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Transactions are begun explicitly below (BEGIN IMMEDIATE), not by the driver.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=OFF")
            if checkpointer is not None:  # it copies the WAL into the database, off the loop
                cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        self.engine = engine
        # One connection for the life of the repository, in autocommit as far as SQLAlchemy
        # knows: transactions are begun and ended on the driver below, which costs a fraction
        # of SQLAlchemy's per-transaction bookkeeping (a pool checkout, a Transaction object).
        self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._raw = self._conn.connection.driver_connection
        self._lock = asyncio.Lock()
        self._checkpointer = checkpointer
        if checkpointer is not None:
            checkpointer.start()

    async def _disconnect(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self.engine is not None:
            self._conn.close()
            self.engine.dispose()
            self.engine = None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[SyncConnection]:
        assert self.engine is not None and self._lock is not None, "repository is not open"
        async with self._lock:
            raw = self._raw
            raw.execute("BEGIN IMMEDIATE")
            try:
                yield SyncConnection(self._conn)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")

    def insert(self, table: Table) -> Any:
        return sqlite_insert(table)


# -- the step hot path in plain SQL ------------------------------------------------------
# SQLAlchemy spends ~80 us preparing each statement; SQLite runs these in ~10 us. The work
# queue's statements run several times per step, so on SQLite they go to the driver directly
# (same connection, same transaction). Column lists follow bud.store.schema.

_STEP_COLUMNS = (
    "execution_id, step_id, position, action, status, attempts, max_attempts, attempt_base, "
    "params, outputs, logs, error, created_at, started_at, finished_at, ready_at, lease_owner, "
    "lease_expires_at"
)
_STEP_NAMES = tuple(c.strip() for c in _STEP_COLUMNS.split(","))
_STEP_JSON = ("params", "outputs", "logs")
_EXECUTION_COLUMNS = (
    "id, pipeline_id, pipeline_version, trigger_id, event_id, origin, status, params, event, "
    "error, created_at, started_at, finished_at, deadline_at, max_parallel, parent_key, "
    "delivery, concurrency_key, held, retry_count"
)
_EXECUTION_NAMES = tuple(c.strip() for c in _EXECUTION_COLUMNS.split(","))
_READY = (
    "((status IN ('pending', 'waiting') AND ready_at IS NOT NULL AND ready_at <= :now) "
    "OR (status = 'running' AND lease_expires_at < :now))"
)
_READY_S = (
    "((s.status IN ('pending', 'waiting') AND s.ready_at IS NOT NULL AND s.ready_at <= :now) "
    "OR (s.status = 'running' AND s.lease_expires_at < :now))"
)
_READY_ONE = _READY_S.replace("s.status", "+s.status")
_CLAIM = (
    "UPDATE steps SET status = 'running', attempts = attempts + 1, lease_owner = :owner, "
    "lease_expires_at = :until, started_at = coalesce(started_at, :now) "
    f"WHERE execution_id = :exe AND step_id = :step AND {_READY} RETURNING {_STEP_COLUMNS}"
)


def _loads(value: Any) -> Any:
    return orjson.loads(value) if value is not None else None


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _step(row: tuple[Any, ...]) -> Any:
    out = dict(zip(_STEP_NAMES, row, strict=True))
    for key in _STEP_JSON:
        out[key] = _loads(out[key])
    return out


class _FastSqliteSession(SqliteSession):
    @property
    def _raw(self) -> Any:
        return self.conn.sync.connection.driver_connection

    async def steps_of(self, execution_id: str) -> Any:
        rows = self._raw.execute(
            f"SELECT {_STEP_COLUMNS} FROM steps WHERE execution_id = ? ORDER BY position",
            (execution_id,),
        ).fetchall()
        return [_step(r) for r in rows]

    async def get_execution(self, execution_id: str) -> Any:
        row = self._raw.execute(
            f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        if row is None:
            return None
        out = dict(zip(_EXECUTION_NAMES, row, strict=True))
        out["params"], out["event"] = _loads(out["params"]), _loads(out["event"])
        out["held"] = bool(out["held"])
        return out

    async def mark_running(self, execution_id: str, now: float, deadline: float | None) -> None:
        self._raw.execute(
            "UPDATE executions SET status = 'running', started_at = ?, deadline_at = ? "
            "WHERE id = ? AND status = 'queued'",
            (now, deadline, execution_id),
        )

    async def finish_execution(
        self, execution_id: str, status: Any, error: str | None, now: float
    ) -> bool:
        cur = self._raw.execute(
            "UPDATE executions SET status = ?, error = ?, finished_at = ? "
            "WHERE id = ? AND status IN ('queued', 'running')",
            (str(status), error, now, execution_id),
        )
        return bool(cur.rowcount)

    async def recent_fires(self, trigger_id: str, since: float) -> int:
        row = self._raw.execute(
            "SELECT sum(fires) FROM trigger_fires WHERE trigger_id = ? AND bucket >= ?",
            (trigger_id, int(since)),
        ).fetchone()
        return int(row[0] or 0)

    async def mark_ready(self, execution_id: str, step_id: str, at: float) -> bool:
        cur = self._raw.execute(
            "UPDATE steps SET ready_at = ? WHERE execution_id = ? AND step_id = ? "
            "AND status = 'pending'",
            (at, execution_id, step_id),
        )
        return bool(cur.rowcount)

    async def claim_steps(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        *,
        execution_id: str | None = None,
        skip_pipelines: Collection[str] = (),
    ) -> Any:
        raw = self._raw
        params: dict[str, Any] = {"now": now, "limit": limit * 4, "execution_id": execution_id}
        skip = ""
        for i, pipeline_id in enumerate(sorted(skip_pipelines)):
            params[f"skip{i}"] = pipeline_id
        if skip_pipelines:
            marks = ", ".join(f":skip{i}" for i in range(len(skip_pipelines)))
            skip = f"AND e.pipeline_id NOT IN ({marks}) "
        select = (
            "SELECT s.execution_id, s.step_id, e.max_parallel, e.pipeline_id FROM steps s "
            "JOIN executions e ON e.id = s.execution_id WHERE "
        )
        if execution_id is not None:
            # One execution's steps, by its key. The unary + keeps SQLite off the status index,
            # which it would otherwise pick while many steps of other executions are ready.
            candidates = raw.execute(
                f"{select}{_READY_ONE} AND s.execution_id = :execution_id "
                f"AND e.id = :execution_id AND e.status IN ('queued', 'running') {skip}"
                "ORDER BY s.ready_at LIMIT :limit",
                params,
            ).fetchall()
        else:
            # Steps of running executions first, then the rest by when they became ready:
            # each part walks an index and stops at the limit, so a long queue costs nothing.
            candidates = raw.execute(
                f"{select}e.status = 'running' AND {_READY_ONE} {skip}LIMIT :limit", params
            ).fetchall()
            for status in ("pending", "waiting"):
                if len(candidates) >= params["limit"]:
                    break
                candidates += raw.execute(
                    f"{select}s.status = '{status}' AND s.ready_at <= :now "
                    f"AND e.status IN ('queued', 'running') {skip}"
                    "ORDER BY s.ready_at LIMIT :limit",
                    params,
                ).fetchall()
            if len(candidates) < params["limit"]:  # leases that ran out (their worker died)
                candidates += raw.execute(
                    f"{select}s.status = 'running' AND s.lease_expires_at < :now "
                    f"AND e.status IN ('queued', 'running') {skip}LIMIT :limit",
                    params,
                ).fetchall()
            candidates = list(dict.fromkeys(candidates))[: params["limit"]]
        if not candidates:
            return []
        limited = sorted({c[0] for c in candidates if c[2]})
        running: dict[str, int] = {}
        if limited:
            marks = ",".join("?" * len(limited))
            running = dict(
                raw.execute(
                    "SELECT execution_id, count(*) FROM steps WHERE status = 'running' "
                    f"AND lease_expires_at >= ? AND execution_id IN ({marks}) "
                    "GROUP BY execution_id",
                    (now, *limited),
                ).fetchall()
            )
        claimed: list[Any] = []
        for exe, step_id, cap, pipeline_id in candidates:
            if len(claimed) >= limit:
                break
            if cap:
                if running.get(exe, 0) >= cap:
                    continue
                running[exe] = running.get(exe, 0) + 1
            values = {"owner": owner, "until": now + lease_seconds, "now": now}
            row = raw.execute(_CLAIM, {**values, "exe": exe, "step": step_id}).fetchone()
            if row is not None:
                claimed.append({**_step(row), "pipeline_id": pipeline_id})
        return claimed

    async def start_attempts(self, claims: Any, worker: str, now: float) -> None:
        if not claims:
            return
        raw = self._raw
        for claim in claims:
            if claim["attempts"] > 1:
                raw.execute(
                    "UPDATE step_attempts SET status = 'failed', finished_at = ?, error = "
                    "'interrupted: the process running this attempt stopped before it finished' "
                    "WHERE execution_id = ? AND step_id = ? AND status = 'running' AND attempt < ?",
                    (now, claim["execution_id"], claim["step_id"], claim["attempts"]),
                )
        fresh = []
        for c in claims:
            outputs = c.get("outputs")
            if isinstance(outputs, dict) and WAIT_KEY in outputs:
                resumed = raw.execute(  # a waiting step goes on with its attempt
                    "UPDATE step_attempts SET status = 'running', worker = ? WHERE "
                    "execution_id = ? AND step_id = ? AND attempt = ? AND status = 'waiting'",
                    (worker, c["execution_id"], c["step_id"], c["attempts"]),
                ).rowcount
                if resumed:
                    continue
            fresh.append(c)
        raw.executemany(
            "INSERT INTO step_attempts (execution_id, step_id, attempt, status, worker, "
            "started_at) VALUES (?, ?, ?, 'running', ?, ?)",
            [(c["execution_id"], c["step_id"], c["attempts"], worker, now) for c in fresh],
        )

    async def finish_attempt(
        self, key: Any, owner: str, attempt: int, step: Any, record: Any
    ) -> bool:
        raw = self._raw
        cur = raw.execute(
            "UPDATE steps SET lease_owner = NULL, lease_expires_at = NULL, status = ?, params = ?, "
            "outputs = ?, logs = ?, error = ?, ready_at = ?, finished_at = ? "
            "WHERE execution_id = ? AND step_id = ? AND status = 'running' AND lease_owner = ? "
            "AND attempts = ?",
            (
                str(step.get("status")),
                _dumps(step.get("params")),
                _dumps(step.get("outputs")),
                _dumps(step.get("logs")),
                step.get("error"),
                step.get("ready_at"),
                step.get("finished_at"),
                key[0],
                key[1],
                owner,
                attempt,
            ),
        )
        if not cur.rowcount:
            return False
        raw.execute(
            "UPDATE step_attempts SET status = ?, params = ?, outputs = ?, logs = ?, error = ?, "
            "finished_at = ? WHERE execution_id = ? AND step_id = ? AND attempt = ?",
            (
                str(record.get("status")),
                _dumps(record.get("params")),
                _dumps(record.get("outputs")),
                _dumps(record.get("logs")),
                record.get("error"),
                record.get("finished_at"),
                key[0],
                key[1],
                attempt,
            ),
        )
        return True

    async def waits_for(self, event_types: Any) -> Any:
        types = sorted(event_types)
        marks = ",".join("?" * len(types))
        rows = self._raw.execute(
            "SELECT id, event_type, kind, execution_id, step_id, filter, created_at FROM waits "
            f"WHERE event_type IN ({marks}) ORDER BY created_at",
            types,
        ).fetchall()
        names = ("id", "event_type", "kind", "execution_id", "step_id", "filter", "created_at")
        found = [dict(zip(names, r, strict=True)) for r in rows]
        for w in found:
            w["filter"] = _loads(w["filter"])
        return found


SqliteRepository.session_class = _FastSqliteSession
