"""The Store: the one source of truth, behind a small interface.

``Store`` owns the connection pool and migrations; ``Tx`` is one transaction and offers the
handful of row operations every part of the system needs (insert, insert-if-absent, get,
list with a cursor, update, delete) plus the work-queue claim. Backends differ only in how
they connect, how they spell insert-if-absent and how they lock claimed rows.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import functools
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Table, and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from bud.store import schema as t

Row = dict[str, Any]


def json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


@functools.cache
def _get_statement(table: Table, keys: tuple[str, ...]) -> Any:
    """One prepared SELECT per (table, keys): built and cache-keyed once, not per call."""
    return select(table).where(*[table.c[k] == bindparam(k) for k in keys]).limit(1)


# Statements of the step hot path, built once with bind parameters: building and cache-keying
# a SQLAlchemy statement costs more than SQLite takes to run it.
_RECORDED = ("status", "params", "outputs", "logs", "error", "ready_at", "finished_at")


def _ready_condition() -> Any:
    s = t.steps
    now: Any = bindparam("b_now")
    return or_(
        and_(s.c.status == "pending", s.c.ready_at.is_not(None), s.c.ready_at <= now),
        and_(s.c.status == "running", s.c.lease_expires_at < now),
    )


def _this_step() -> tuple[Any, Any]:
    """The step addressed by the ``b_execution_id`` and ``b_step_id`` parameters."""
    s = t.steps
    return (s.c.execution_id == bindparam("b_execution_id"), s.c.step_id == bindparam("b_step_id"))


@functools.cache
def _claimable(one_execution: bool) -> Any:
    s, e = t.steps, t.executions
    stmt = (
        select(s.c.execution_id, s.c.step_id, e.c.max_parallel)
        .join(e, e.c.id == s.c.execution_id)
        .where(_ready_condition(), e.c.status.in_(("queued", "running")))
        .order_by(case((e.c.status == "running", 0), else_=1), s.c.ready_at)
        .limit(bindparam("b_limit"))
    )
    if one_execution:
        stmt = stmt.where(s.c.execution_id == bindparam("b_execution_id"))
    return stmt


@functools.cache
def _claim() -> Any:
    s = t.steps
    return (
        update(s)
        .where(
            *_this_step(),
            _ready_condition(),
        )
        .values(
            status="running",
            attempts=s.c.attempts + 1,
            lease_owner=bindparam("b_owner"),
            lease_expires_at=bindparam("b_until"),
            started_at=func.coalesce(s.c.started_at, bindparam("b_now")),
        )
        .returning(*s.c)
    )


@functools.cache
def _steps_of() -> Any:
    s = t.steps
    return select(s).where(s.c.execution_id == bindparam("b_execution_id")).order_by(s.c.position)


@functools.cache
def _mark_ready() -> Any:
    s = t.steps
    return (
        update(s)
        .where(
            *_this_step(),
            s.c.status == "pending",
        )
        .values(ready_at=bindparam("b_at"))
    )


@functools.cache
def _record_step() -> Any:
    s = t.steps
    return (
        update(s)
        .where(
            *_this_step(),
            s.c.status == "running",
            s.c.lease_owner == bindparam("b_owner"),
            s.c.attempts == bindparam("b_attempt"),
        )
        .values(
            lease_owner=None, lease_expires_at=None, **{k: bindparam(f"b_{k}") for k in _RECORDED}
        )
    )


@functools.cache
def _insert_statement(table: Table) -> Any:
    return table.insert()


class Tx:
    """One transaction. Every method is a single statement or a short sequence of them."""

    def __init__(self, conn: Any, store: Store) -> None:
        self.conn = conn
        self.store = store

    # -- generic rows --------------------------------------------------------------------
    async def insert(self, table: Table, rows: Row | Sequence[Row]) -> None:
        batch = [rows] if isinstance(rows, Mapping) else list(rows)
        if batch:
            await self.conn.execute(_insert_statement(table), batch)

    async def insert_missing(self, table: Table, rows: Sequence[Row], key: str) -> set[Any]:
        """Insert rows whose unique ``key`` is not taken; return the keys inserted."""
        if not rows:
            return set()
        stmt = self.store.insert_ignore(table).returning(table.c[key])
        result = await self.conn.execute(stmt, list(rows))
        return {r[0] for r in result.all()}

    async def get(self, table: Table, **where: Any) -> Row | None:
        stmt = _get_statement(table, tuple(where))
        row = (await self.conn.execute(stmt, where)).mappings().first()
        return dict(row) if row else None

    async def list(
        self,
        table: Table,
        *,
        where: Iterable[ColumnElement[bool]] = (),
        order: str = "id",
        descending: bool = True,
        limit: int | None = None,
        after: Any = None,
    ) -> list[Row]:
        col = table.c[order]
        stmt = select(table).where(*where)
        if after is not None:
            stmt = stmt.where(col < after if descending else col > after)
        stmt = stmt.order_by(col.desc() if descending else col.asc())
        if limit is not None:
            stmt = stmt.limit(limit)
        return [dict(r) for r in (await self.conn.execute(stmt)).mappings().all()]

    async def lock(self, table: Table, **where: Any) -> Row | None:
        """Read a row and hold it for this transaction (SELECT ... FOR UPDATE).

        SQLite needs nothing: BEGIN IMMEDIATE already serialises writers.
        """
        stmt = select(table).where(*[table.c[k] == v for k, v in where.items()]).with_for_update()
        row = (await self.conn.execute(stmt)).mappings().first()
        return dict(row) if row else None

    async def hold(self, table: Table, **where: Any) -> None:
        """Hold a row for this transaction, for writers that must take turns on it."""
        if self.store.row_locks:
            await self.lock(table, **where)

    async def count(self, table: Table, *where: ColumnElement[bool]) -> int:
        stmt = select(func.count()).select_from(table).where(*where)
        return int((await self.conn.execute(stmt)).scalar_one())

    async def update(self, table: Table, values: Row, *where: ColumnElement[bool]) -> int:
        result = await self.conn.execute(update(table).where(*where).values(**values))
        return int(result.rowcount)

    async def delete(self, table: Table, *where: ColumnElement[bool]) -> int:
        result = await self.conn.execute(delete(table).where(*where))
        return int(result.rowcount)

    async def scalar(self, stmt: Any) -> Any:
        return (await self.conn.execute(stmt)).scalar()

    async def scalars(self, stmt: Any) -> builtins.list[Any]:
        return list((await self.conn.execute(stmt)).scalars().all())

    async def rows(self, stmt: Any) -> builtins.list[Row]:
        return [dict(r) for r in (await self.conn.execute(stmt)).mappings().all()]

    # -- the work queue ------------------------------------------------------------------
    async def claim_steps(
        self,
        owner: str,
        now: float,
        lease_seconds: float,
        limit: int,
        *,
        execution_id: str | None = None,
    ) -> builtins.list[Row]:
        """Claim up to ``limit`` ready steps (or steps whose lease expired) for ``owner``.

        A claim counts as an attempt. Executions with ``max_parallel`` are held to it. Steps of
        running executions go first: finishing started work beats starting new work.
        With ``execution_id``, only that execution's steps are considered (a worker continuing
        the execution whose step it just finished).
        """
        s = t.steps
        stmt = self.store.lock_skip(_claimable(execution_id is not None))
        params = {"b_now": now, "b_limit": limit * 4, "b_execution_id": execution_id}
        candidates = (await self.conn.execute(stmt, params)).all()
        if not candidates:
            return []
        limited = {c.execution_id for c in candidates if c.max_parallel}
        running: dict[str, int] = {}
        if limited:
            rows = await self.conn.execute(
                select(s.c.execution_id, func.count())
                .where(
                    s.c.execution_id.in_(limited),
                    s.c.status == "running",
                    s.c.lease_expires_at >= now,
                )
                .group_by(s.c.execution_id)
            )
            running = {r[0]: int(r[1]) for r in rows.all()}
        claimed: list[Row] = []
        for c in candidates:
            if len(claimed) >= limit:
                break
            if c.max_parallel:
                if running.get(c.execution_id, 0) >= c.max_parallel:
                    continue
                running[c.execution_id] = running.get(c.execution_id, 0) + 1
            result = await self.conn.execute(
                _claim(),
                {
                    "b_execution_id": c.execution_id,
                    "b_step_id": c.step_id,
                    "b_now": now,
                    "b_owner": owner,
                    "b_until": now + lease_seconds,
                },
            )
            row = result.mappings().first()
            if row:
                claimed.append(dict(row))
        return claimed

    async def steps_of(self, execution_id: str) -> builtins.list[Row]:
        """An execution's steps, in definition order."""
        result = await self.conn.execute(_steps_of(), {"b_execution_id": execution_id})
        return [dict(r) for r in result.mappings().all()]

    async def mark_ready(self, execution_id: str, step_id: str, at: float) -> int:
        result = await self.conn.execute(
            _mark_ready(), {"b_execution_id": execution_id, "b_step_id": step_id, "b_at": at}
        )
        return int(result.rowcount)

    async def record_step(
        self, execution_id: str, step_id: str, owner: str, attempt: int, values: Mapping[str, Any]
    ) -> int:
        """Write a finished attempt onto its step, if the step is still this owner's attempt."""
        params = {f"b_{k}": values.get(k) for k in _RECORDED}
        params.update(
            b_execution_id=execution_id, b_step_id=step_id, b_owner=owner, b_attempt=attempt
        )
        return int((await self.conn.execute(_record_step(), params)).rowcount)

    async def renew_leases(self, owner: str, keys: Sequence[tuple[str, str]], until: float) -> None:
        s = t.steps
        for execution_id, step_id in keys:
            await self.conn.execute(
                update(s)
                .where(
                    s.c.execution_id == execution_id,
                    s.c.step_id == step_id,
                    s.c.lease_owner == owner,
                    s.c.status == "running",
                )
                .values(lease_expires_at=until)
            )


class Store(abc.ABC):
    """A database behind SQLAlchemy Core. Subclasses say how to connect, begin and lock."""

    dialect: str = ""
    row_locks = True  # False where the whole database has one writer at a time (SQLite)

    def __init__(self, url: str) -> None:
        self.url = url

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    def begin(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A connection inside a transaction: ``await conn.execute(...)``, ``run_sync``."""

    @abc.abstractmethod
    def insert_ignore(self, table: Table) -> Any:
        """An INSERT that skips rows violating a unique constraint."""

    def lock_skip(self, stmt: Any) -> Any:
        """Lock selected rows for this transaction, skipping rows other claimers hold."""
        return stmt

    async def open(self) -> None:
        from bud.store.migrations import migrate

        await self._open()
        await migrate(self)

    async def close(self) -> None:
        await self._close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.begin() as conn:
            yield Tx(conn, self)

    read = transaction

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_store(url: str) -> Store:
    """A Store for a URL: ``sqlite:///path`` or ``postgresql://...``."""
    if url.startswith("sqlite"):
        from bud.store.sqlite import SqliteStore

        return SqliteStore(url)
    if url.startswith(("postgresql", "postgres")):
        from bud.store.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")
