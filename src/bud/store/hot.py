"""The work queue's hot statements, in SQL text on the driver, for both SQL families.

SQLAlchemy spends 80-250 us of Python preparing each statement, while SQLite runs these in
about 10 us and PostgreSQL answers them in a round trip. They run several times per step, so
the operations below skip SQLAlchemy: each family's session gives ``_rows``, ``_one``,
``_run`` and ``_many`` on its driver, inside the transaction the session already holds. One
SQL text serves both: it is written with ``:name`` parameters (turned into ``%(name)s`` for
psycopg) and the few places the families differ are attributes of the session (row locks,
JSON in and out, an index hint). Column lists follow bud.store.schema.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from bud.store.records import WAIT_KEY, lifecycle_snapshot
from bud.store.repository import StepKey
from bud.store.sql import SqlSession

STEP_COLUMNS = (
    "execution_id, step_id, position, action, status, attempts, max_attempts, attempt_base, "
    "params, outputs, logs, error, created_at, started_at, finished_at, ready_at, lease_owner, "
    "lease_expires_at"
)
STEP_NAMES = tuple(c.strip() for c in STEP_COLUMNS.split(","))
STEP_JSON = ("params", "outputs", "logs")
EXECUTION_COLUMNS = (
    "id, pipeline_id, pipeline_version, trigger_id, event_id, origin, status, params, event, "
    "error, created_at, started_at, finished_at, deadline_at, max_parallel, parent_key, "
    "delivery, concurrency_key, held, retry_count"
)
EXECUTION_NAMES = tuple(c.strip() for c in EXECUTION_COLUMNS.split(","))
EXECUTION_JSON = ("params", "event")
WAIT_NAMES = ("id", "event_type", "kind", "execution_id", "step_id", "filter", "created_at")
_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


@functools.cache
def pyformat(sql: str) -> str:
    """``:name`` parameters as psycopg's ``%(name)s`` (``::`` casts are left alone)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads(value: Any) -> Any:
    return orjson.loads(value) if value is not None else None


def _record(names: tuple[str, ...], json: tuple[str, ...], row: Sequence[Any]) -> Any:
    out = dict(zip(names, row, strict=True))
    for key in json:
        out[key] = _loads(out[key])
    return out


def step_record(row: Sequence[Any]) -> Any:
    return _record(STEP_NAMES, STEP_JSON, row)


def execution_record(row: Sequence[Any] | None) -> Any:
    if row is None:
        return None
    out = _record(EXECUTION_NAMES, EXECUTION_JSON, row)
    out["held"] = bool(out["held"])
    return out


class HotSession(SqlSession):
    """The hot operations of ``Session`` in SQL text; a family's session supplies the driver."""

    lock_rows = ""  # PostgreSQL: " FOR UPDATE OF s SKIP LOCKED"
    skip_held = ""  # PostgreSQL: "FOR UPDATE SKIP LOCKED"

    # -- what each family provides ------------------------------------------------------

    async def _rows(self, sql: str, params: Any = ()) -> list[Sequence[Any]]:
        raise NotImplementedError

    async def _one(self, sql: str, params: Any = ()) -> Sequence[Any] | None:
        raise NotImplementedError

    async def _run(self, sql: str, params: Any = ()) -> int:
        """Run a write; the number of rows it changed."""
        raise NotImplementedError

    async def _many(self, sql: str, params: Sequence[Any]) -> None:
        raise NotImplementedError

    @staticmethod
    def _json_in(name: str) -> str:
        """The SQL of a JSON parameter (PostgreSQL casts text to jsonb)."""
        return f":{name}"

    @staticmethod
    def _json_out(column: str) -> str:
        """The SQL that reads a JSON column as text (PostgreSQL casts jsonb to text)."""
        return column

    @staticmethod
    def _among(column: str, values: Sequence[str], name: str = "x") -> tuple[str, dict[str, Any]]:
        """``column IN (...)`` for ``values`` (text), and its parameters. PostgreSQL passes
        one array instead: a statement's text then does not change with the number of values,
        so the driver's cache of prepared statements keeps it (it holds 100 by default)."""
        params = {f"{name}{i}": v for i, v in enumerate(values)}
        return f"{column} IN ({', '.join(f':{p}' for p in params)})", params

    @staticmethod
    def _keyed(column: str) -> str:
        """``column`` in a form no index serves, for statements that reach their rows by key.

        A queue's statistics are taken at rest, when no step runs and no execution waits,
        so a planner judges "status = 'running'" rare and walks the status index instead of
        the key; under load that index holds every running step (a step's finish read
        hundreds of entries). Each family writes the column so that its planner cannot use
        the index (docs/architecture.md, "Stores")."""
        return column

    # -- statements, built once per session class ----------------------------------------

    @property
    def _sql(self) -> dict[str, str]:
        return _statements(type(self))

    @classmethod
    def build_statements(cls) -> dict[str, str]:
        steps = STEP_COLUMNS
        executions = EXECUTION_COLUMNS
        for column in STEP_JSON:
            steps = steps.replace(f" {column},", f" {cls._json_out(column)},")
        for column in EXECUTION_JSON:
            executions = executions.replace(f" {column},", f" {cls._json_out(column)},")
        k = cls._keyed
        status, e_status = k("s.status"), k("e.status")  # for rows reached by their key
        ready = (
            f"(({status} IN ('pending', 'waiting') AND s.ready_at IS NOT NULL "
            f"AND s.ready_at <= :now) OR ({status} = 'running' AND s.lease_expires_at < :now))"
        )
        select = (
            "SELECT s.execution_id, s.step_id, e.max_parallel, e.pipeline_id FROM steps s "
            "JOIN executions e ON e.id = s.execution_id WHERE "
        )
        j = cls._json_in
        return {
            "step_columns": steps,
            "claimable": ready.replace("s.", ""),  # a step a claim may take
            "steps_of": f"SELECT {steps} FROM steps WHERE execution_id = :exe ORDER BY position",
            "execution": f"SELECT {executions} FROM executions WHERE id = :exe",
            "executions": f"SELECT {executions} FROM executions WHERE",
            "steps_of_many": f"SELECT {steps} FROM steps WHERE",
            "hold": "SELECT id FROM executions WHERE id = :exe FOR UPDATE",
            "try_hold": "SELECT id FROM executions WHERE id = :exe FOR UPDATE SKIP LOCKED",
            "lifecycle": (
                "INSERT INTO lifecycle_outbox (execution_id, status, execution, created_at) "
                f"VALUES (:exe, :status, {j('execution')}, :now)"
            ),
            "running": (
                "UPDATE executions SET status = 'running', started_at = :now, "
                f"deadline_at = :deadline WHERE id = :exe AND {k('status')} = 'queued'"
            ),
            "finish": (
                "UPDATE executions SET status = :status, error = :error, finished_at = :now "
                f"WHERE id = :exe AND {k('status')} IN ('queued', 'running') RETURNING {executions}"
            ),
            "finish_raw": (  # the row as stored (for a statement that reads it in SQL)
                "UPDATE executions SET status = :status, error = :error, finished_at = :now "
                f"WHERE id = :exe AND {k('status')} IN ('queued', 'running') RETURNING *"
            ),
            "ready": (
                "UPDATE steps SET ready_at = :at WHERE execution_id = :exe AND step_id = :step "
                f"AND {k('status')} = 'pending'"
            ),
            "fires": (
                "SELECT sum(fires) FROM trigger_fires WHERE trigger_id = :trigger "
                "AND bucket >= :since"
            ),
            # One execution's steps, by its key.
            "one": (
                f"{select}{ready} AND s.execution_id = :exe AND e.id = :exe "
                f"AND {e_status} IN ('queued', 'running') {{skip}}"
                f"ORDER BY s.ready_at LIMIT :limit{cls.lock_rows}"
            ),
            # Any execution's: each part walks an index and stops at the limit.
            "of_running": (
                f"{select}e.status = 'running' AND {ready} {{skip}}LIMIT :limit{cls.lock_rows}"
            ),
            "by_status": (
                f"{select}s.status = :status AND s.ready_at <= :now "
                f"AND {e_status} IN ('queued', 'running') {{skip}}"
                f"ORDER BY s.ready_at LIMIT :limit{cls.lock_rows}"
            ),
            "expired": (
                f"{select}s.status = 'running' AND s.lease_expires_at < :now "
                f"AND {e_status} IN ('queued', 'running') {{skip}}LIMIT :limit{cls.lock_rows}"
            ),
            "in_flight": (
                f"SELECT execution_id, count(*) FROM steps WHERE {k('status')} = 'running' "
                "AND lease_expires_at >= :now AND {among} "
                "GROUP BY execution_id"
            ),
            "claim": (
                "UPDATE steps SET status = 'running', attempts = attempts + 1, "
                "lease_owner = :owner, lease_expires_at = :until, "
                "started_at = coalesce(started_at, :now) "
                f"WHERE execution_id = :exe AND step_id = :step AND "
                f"{ready.replace('s.', '')} RETURNING {steps}"
            ),
            "interrupt": (
                "UPDATE step_attempts SET status = 'failed', finished_at = :now, error = "
                "'interrupted: the process running this attempt stopped before it finished' "
                "WHERE execution_id = :exe AND step_id = :step AND status = 'running' "
                "AND attempt < :attempt"
            ),
            "resume": (
                "UPDATE step_attempts SET status = 'running', worker = :worker WHERE "
                "execution_id = :exe AND step_id = :step AND attempt = :attempt "
                "AND status = 'waiting'"
            ),
            "attempt": (
                "INSERT INTO step_attempts (execution_id, step_id, attempt, status, worker, "
                "started_at) VALUES (:exe, :step, :attempt, 'running', :worker, :now)"
            ),
            "finish_step": (
                f"UPDATE steps SET lease_owner = NULL, lease_expires_at = NULL, "
                f"status = :status, params = {j('params')}, outputs = {j('outputs')}, "
                f"logs = {j('logs')}, error = :error, ready_at = :ready_at, "
                "finished_at = :finished_at WHERE execution_id = :exe AND step_id = :step "
                f"AND {k('status')} = 'running' AND lease_owner = :owner AND attempts = :attempt"
            ),
            "finish_attempt": (
                f"UPDATE step_attempts SET status = :a_status, params = {j('a_params')}, "
                f"outputs = {j('a_outputs')}, logs = {j('a_logs')}, error = :a_error, "
                "finished_at = :a_finished_at WHERE execution_id = :exe AND step_id = :step "
                "AND attempt = :attempt"
            ),
        }

    # -- the operations --------------------------------------------------------------------

    async def steps_of(self, execution_id: str) -> Any:
        rows = await self._rows(self._sql["steps_of"], {"exe": execution_id})
        return [step_record(r) for r in rows]

    async def get_execution(self, execution_id: str) -> Any:
        return execution_record(await self._one(self._sql["execution"], {"exe": execution_id}))

    async def executions_to_run(self, execution_ids: Sequence[str]) -> Any:
        ids = list(dict.fromkeys(execution_ids))
        if not ids:
            return []
        among, params = self._among("id", ids)
        sql = f"{self._sql['executions']} {among}"
        if not self.row_locks:
            return [execution_record(r) for r in await self._rows(sql, params)]
        # Held rows are passed over; of those, only a queued execution waits for its own
        # transaction (marking it running would wait), the others are read as they are.
        found = [execution_record(r) for r in await self._rows(f"{sql} {self.skip_held}", params)]
        if len(found) < len(ids):
            seen = {r["id"] for r in found}
            for execution_id in ids:
                if execution_id not in seen:
                    row = await self.get_execution(execution_id)
                    if row is not None and row["status"] != "queued":
                        found.append(row)
        return found

    async def known_event_ids(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        among, params = self._among("event_id", list(dict.fromkeys(ids)))
        rows = await self._rows(f"SELECT event_id FROM events WHERE {among}", params)
        return {str(r[0]) for r in rows}

    async def steps_of_many(self, execution_ids: Sequence[str]) -> Any:
        ids = list(dict.fromkeys(execution_ids))
        out: dict[str, list[Any]] = {e: [] for e in ids}
        if not ids:
            return out
        among, params = self._among("execution_id", ids)
        for r in await self._rows(f"{self._sql['steps_of_many']} {among} {_BY_POSITION}", params):
            record = step_record(r)
            out[record["execution_id"]].append(record)
        return out

    async def hold_execution(self, execution_id: str) -> None:
        if self.row_locks:
            await self._one(self._sql["hold"], {"exe": execution_id})

    async def try_hold_execution(self, execution_id: str) -> bool:
        if not self.row_locks:
            return True
        return await self._one(self._sql["try_hold"], {"exe": execution_id}) is not None

    async def queue_lifecycle(self, execution: Any, now: float) -> None:
        params = {
            "exe": execution["id"],
            "status": str(execution["status"]),
            "execution": dumps(lifecycle_snapshot(execution)),
            "now": now,
        }
        await self._run(self._sql["lifecycle"], params)

    async def mark_running(self, execution_id: str, now: float, deadline: float | None) -> None:
        params = {"exe": execution_id, "now": now, "deadline": deadline}
        await self._run(self._sql["running"], params)

    async def finish_execution(
        self, execution_id: str, status: Any, error: str | None, now: float
    ) -> Any:
        params = {"exe": execution_id, "status": str(status), "error": error, "now": now}
        return execution_record(await self._one(self._sql["finish"], params))

    async def mark_ready(self, execution_id: str, step_id: str, at: float) -> bool:
        params = {"exe": execution_id, "step": step_id, "at": at}
        return bool(await self._run(self._sql["ready"], params))

    async def recent_fires(self, trigger_id: str, since: float) -> int:
        row = await self._one(self._sql["fires"], {"trigger": trigger_id, "since": int(since)})
        return int(row[0] or 0) if row is not None else 0

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
    ) -> Any:
        sql = self._sql
        params: dict[str, Any] = {"now": now, "limit": limit * 4, "exe": execution_id}
        skip = ""
        if skip_pipelines:
            among, named = self._among("e.pipeline_id", sorted(skip_pipelines), "skip")
            params.update(named)
            skip = f"AND NOT ({among}) "
        candidates: list[Sequence[Any]]
        if execution_id is not None:
            candidates = list(await self._rows(sql["one"].format(skip=skip), params))
        else:
            # Steps of running executions first, then the rest by when they became ready.
            candidates = []
            if running_first:
                candidates = list(await self._rows(sql["of_running"].format(skip=skip), params))
            for status in ("pending", "waiting") if stragglers else ("pending",):
                if len(candidates) >= params["limit"]:
                    break
                by_status = sql["by_status"].format(skip=skip)
                candidates += await self._rows(by_status, {**params, "status": status})
            if stragglers and len(candidates) < params["limit"]:  # leases that ran out
                candidates += await self._rows(sql["expired"].format(skip=skip), params)
            unique: dict[Sequence[Any], None] = dict.fromkeys(tuple(c) for c in candidates)
            candidates = list(unique)[: params["limit"]]

        if not candidates:
            return []
        limited = sorted({c[0] for c in candidates if c[2]})
        running: dict[str, int] = {}
        if limited:
            among, counted = self._among("execution_id", limited)
            rows = await self._rows(sql["in_flight"].format(among=among), {"now": now, **counted})
            running = {str(r[0]): int(r[1]) for r in rows}
        chosen: list[tuple[str, str, str]] = []
        for exe, step_id, cap, pipeline_id in candidates:
            if len(chosen) >= limit:
                break
            if cap:
                if running.get(exe, 0) >= cap:
                    continue
                running[exe] = running.get(exe, 0) + 1
            chosen.append((exe, step_id, pipeline_id))
        values = {"owner": owner, "until": now + lease_seconds, "now": now}
        return await self._claim_chosen(chosen, values)

    async def _claim_chosen(
        self, chosen: Sequence[tuple[str, str, str]], values: dict[str, Any]
    ) -> list[Any]:
        """Claim the chosen steps (the candidates this transaction holds), in their order."""
        claimed: list[Any] = []
        for exe, step_id, pipeline_id in chosen:
            row = await self._one(self._sql["claim"], {**values, "exe": exe, "step": step_id})
            if row is not None:
                claimed.append({**step_record(row), "pipeline_id": pipeline_id})
        return claimed

    async def start_attempts(self, claims: Any, worker: str, now: float) -> None:
        if not claims:
            return
        sql = self._sql
        for claim in claims:
            if claim["attempts"] > 1:  # an earlier attempt may have been cut short
                await self._run(
                    sql["interrupt"],
                    {
                        "now": now,
                        "exe": claim["execution_id"],
                        "step": claim["step_id"],
                        "attempt": claim["attempts"],
                    },
                )
        fresh = []
        for c in claims:
            key = {"exe": c["execution_id"], "step": c["step_id"], "attempt": c["attempts"]}
            outputs = c.get("outputs")
            waited = isinstance(outputs, dict) and WAIT_KEY in outputs
            if waited and await self._run(sql["resume"], {**key, "worker": worker}):
                continue  # a waiting step goes on with its attempt
            fresh.append({**key, "worker": worker, "now": now})
        if fresh:
            await self._add_attempts(fresh)

    async def _add_attempts(self, fresh: list[dict[str, Any]]) -> None:
        """Insert running attempts (``exe``, ``step``, ``attempt``, ``worker``, ``now``)."""
        await self._many(self._sql["attempt"], fresh)

    async def finish_attempt(
        self, key: StepKey, owner: str, attempt: int, step: Any, record: Any
    ) -> bool:
        return await self._finish(self._finish_params(key, owner, attempt, step, record))

    @staticmethod
    def _finish_params(
        key: StepKey, owner: str, attempt: int, step: Any, record: Any
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "exe": key[0],
            "step": key[1],
            "attempt": attempt,
            "owner": owner,
            "ready_at": step.get("ready_at"),
        }
        for prefix, values in (("", step), ("a_", record)):
            params[f"{prefix}status"] = str(values.get("status"))
            params[f"{prefix}error"] = values.get("error")
            params[f"{prefix}finished_at"] = values.get("finished_at")
            for column in STEP_JSON:  # the step and its attempt usually share these values
                value = values.get(column)
                same = prefix and value is step.get(column)
                params[f"{prefix}{column}"] = params[column] if same else dumps(value)
        return params

    async def _finish(self, params: dict[str, Any]) -> bool:
        """Record the step's result, and its attempt's if the step was still this attempt's."""
        if not await self._run(self._sql["finish_step"], params):
            return False
        await self._run(self._sql["finish_attempt"], params)
        return True

    async def waits_for(self, event_types: Collection[str]) -> Any:
        """Once per ingest transaction: the waits of its event types (bud.engine.waits)."""
        types = sorted(event_types)
        if not types:
            return []
        among, params = self._among("event_type", types)
        rows = await self._rows(
            f"SELECT {', '.join(WAIT_NAMES[:-2])}, {self._json_out('filter')}, created_at "
            f"FROM waits WHERE {among} ORDER BY created_at",
            params,
        )
        return [_record(WAIT_NAMES, ("filter",), r) for r in rows]


_BY_POSITION = "ORDER BY execution_id, position"


@functools.cache
def _statements(cls: type[HotSession]) -> dict[str, str]:
    return cls.build_statements()


__all__ = ["HotSession", "dumps", "pyformat", "step_record"]
