"""Operator insight: pipeline dry runs, filter backtests, trigger stats and event replay.

None of these change what a trigger does: dry runs and backtests store nothing, stats only
read, and replay hands stored events back to the engine (``Engine.replay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, NoReturn

from bud.engine.core import Engine
from bud.engine.records import envelope_from_row
from bud.errors import NotFoundError, RateLimitedError, ValidationError
from bud.events import normalize_partial_event
from bud.filters import compile_filter, summarize
from bud.pipelines import StepDef
from bud.render_limits import RenderLimits
from bud.services.common import iso_times
from bud.services.pipelines import run_inputs
from bud.store import Session
from bud.store.records import TriggerRecord
from bud.templates import (
    TemplateError,
    build_context,
    is_falsy,
    mask_secrets,
    render_string_async,
    render_value_async,
    scoped,
)
from bud.timeutil import parse_iso, to_iso

BACKTEST_DEFAULT = 1000
REPLAY_DEFAULT = 1000
SCAN_MAX = 10_000
SHOWN = 5  # examples and near misses listed by a backtest
SCAN_CONCURRENCY = 2
SCAN_QUEUE = 32
SCAN_CHUNK = 500


class NeedsRuntime(Exception):
    """A template read ``steps.<id>...``: only known once that step has run."""

    def __init__(self, step_id: str) -> None:
        super().__init__(step_id)
        self.step_id = step_id


class _RuntimeSteps:
    """The ``steps`` namespace of a dry run: any access raises NeedsRuntime.

    Raising (rather than being undefined) keeps ``| default(...)`` from hiding the reference:
    a value that only exists at run time cannot be shown before it.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NeedsRuntime(name)

    def __getitem__(self, key: Any) -> Any:
        raise NeedsRuntime(str(key))

    def __iter__(self) -> NoReturn:
        raise NeedsRuntime("*")


def _template_message(exc: TemplateError) -> str:
    cause = exc.__cause__
    if isinstance(cause, NeedsRuntime):
        where = exc.details.get("path") or "template"
        if cause.step_id == "*":
            return f"needs runtime output: {where} reads the steps, only known at run time"
        return (
            f"needs runtime output: {where} reads steps.{cause.step_id}, "
            f"which is only known once step {cause.step_id} has run"
        )
    return exc.message


class _NoItems(Exception):
    """A for_each step whose items are not known before it runs."""


async def _dry_items(
    step: StepDef, context: dict[str, Any], limits: RenderLimits
) -> tuple[list[Any] | None, dict[str, Any], str | None]:
    """A for_each step's items, and the context of its first item (params are shown for it)."""
    where = f"steps.{step.id}.for_each"
    try:
        items = await render_value_async(step.for_each, context, where=where, limits=limits)
    except TemplateError as exc:
        return None, context, _template_message(exc)
    if not isinstance(items, list):
        return None, context, f"{where}: must yield a list, but {step.for_each!r} gave {items!r}"
    if not items:
        return items, context, None
    return items, {**context, "item": scoped("item", items[0]), "index": 0}, None


def _failing(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The nodes that made a verdict fail: failing leaves, or a failed ``$not``."""
    if node.get("matched", False):
        return []
    if "children" not in node or node.get("op") == "$not":
        return [node]
    return [leaf for child in node["children"] for leaf in _failing(child)]


def _check_scan_limit(limit: Any, default: int) -> int:
    if limit is None:
        return default
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SCAN_MAX:
        raise ValidationError(
            f"limit must be an integer from 1 to {SCAN_MAX}", details={"path": "limit"}
        )
    return limit


def _time(value: Any, path: str) -> float | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return parse_iso(value)
    except ValueError as exc:
        raise ValidationError(
            f"{path}: {value!r} is not an ISO 8601 time", details={"path": path}
        ) from exc


# A dry run takes a partial event; its schema mismatches become warnings.
def _partial_event(engine: Engine, event: Any) -> tuple[dict[str, Any] | None, list[str]]:
    if event is None:
        return None, []
    if isinstance(event, dict) and "event_type" not in event:
        raise ValidationError("event.event_type is required", details={"path": "event.event_type"})
    return normalize_partial_event(
        event,
        engine.catalogue.event_types,
        max_bytes=engine.settings.max_event_bytes,
        default_source="dry_run",
    )


def _backtest_rows(compiled: Any, rows: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    """A backtest's verdicts over stored rows: pure, so it runs in a worker thread."""
    matched = 0
    examples: list[dict[str, Any]] = []
    near: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        if i % 100 == 0:
            time.sleep(0)  # hand the GIL to the event loop's thread now and then
        env = envelope_from_row(row)
        if compiled.matches(env):
            matched += 1
            if len(examples) < SHOWN:
                examples.append(
                    {
                        "event_id": env["event_id"],
                        "timestamp": env["timestamp"],
                        "data": env["data"],
                    }
                )
            continue
        if len(near) >= SHOWN:
            continue  # explaining costs a full evaluation; stop once enough are shown
        verdict = compiled.explain(env)
        failing = _failing(verdict)
        if len(failing) == 1:
            near.append(
                {
                    "event_id": env["event_id"],
                    "path": failing[0].get("path"),
                    "summary": summarize(verdict),
                }
            )
    return {
        "event_type": event_type,
        "scanned": len(rows),
        "matched": matched,
        "examples": examples,
        "near_misses": near,
    }


class InsightService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.repo = engine.repo
        self.catalogue = engine.catalogue
        self._scans = asyncio.Semaphore(SCAN_CONCURRENCY)
        self._scan_waiting = 0

    def _check_event_type(self, event_type: Any) -> str:
        if event_type is None:
            raise ValidationError("event_type is required", details={"path": "event_type"})
        if not isinstance(event_type, str) or event_type not in self.catalogue.event_types:
            known = sorted(self.catalogue.event_types)
            raise ValidationError(
                f"event_type: unknown event type {event_type!r}; known types: {', '.join(known)}",
                details={"path": "event_type", "known": known},
            )
        return event_type

    async def _trigger(self, session: Session, trigger_id: str) -> TriggerRecord:
        row = await session.get_trigger(trigger_id)
        if row is None:
            raise NotFoundError(
                f"event trigger {trigger_id} not found", details={"trigger_id": trigger_id}
            )
        return row

    # -- dry run -------------------------------------------------------------------------
    async def dry_run(
        self, pipeline_id: str, event: Any = None, params: Any = None
    ) -> dict[str, Any]:
        """Render every step against an event without storing or running anything."""
        params, _ = run_inputs(self.engine, params, None, source="dry_run")
        envelope, warnings = _partial_event(self.engine, event)
        async with self.repo.read() as session:
            pipeline = await session.get_pipeline(pipeline_id)
            if pipeline is None:
                raise NotFoundError(
                    f"pipeline {pipeline_id} not found", details={"pipeline_id": pipeline_id}
                )
            definition = await self.catalogue.definition(pipeline_id, pipeline["version"], session)
        secrets = self.catalogue.secrets
        context = build_context(
            event=envelope,
            pipeline={"id": pipeline_id, "version": pipeline["version"], "name": pipeline["name"]},
            execution={
                "id": "exe_dry_run",  # a placeholder: a dry run has no execution
                "trigger_id": None,
                "event_id": envelope["event_id"] if envelope else None,
                "origin": "dry_run",
            },
            params={**definition.parameters, **(params or {})},
            secrets=secrets,
        )
        context["steps"] = _RuntimeSteps()
        hidden = list(secrets.values())
        limits = RenderLimits.from_settings(self.engine.settings)
        steps = []
        for step in definition.steps:
            errors: list[str] = []
            condition: Any = None
            would_skip = False
            if step.condition is not None:
                try:
                    condition = await render_string_async(
                        step.condition, context, where=f"steps.{step.id}.condition", limits=limits
                    )
                    would_skip = is_falsy(condition)
                except TemplateError as exc:
                    errors.append(_template_message(exc))
            rendered: Any = None
            items: list[Any] | None = None
            scope = context
            if step.for_each is not None:
                items, scope, problem = await _dry_items(step, context, limits)
                if problem:
                    errors.append(problem)
            try:
                if step.for_each is not None and items is None:
                    raise _NoItems  # params are per item: without the items, nothing to show
                rendered = await render_value_async(
                    step.params, scope, where=f"steps.{step.id}.params", limits=limits
                )
                self.catalogue.registry.get(step.action).check_params(
                    rendered, where=f"steps.{step.id}.params", rendered=True
                )
            except _NoItems:
                pass
            except TemplateError as exc:
                errors.append(_template_message(exc))
            except (ValidationError, NotFoundError) as exc:
                # Rendered, but the action would refuse it: show both the params and why.
                errors.append(exc.message)
            steps.append(
                {
                    "step_id": step.id,
                    "action": step.action,
                    "params": mask_secrets(rendered, hidden),
                    "error": mask_secrets("; ".join(errors), hidden) if errors else None,
                    "condition": mask_secrets(condition, hidden),
                    "would_skip": would_skip,
                    "depends_on": list(step.depends_on),
                    "items": mask_secrets(items, hidden),
                }
            )
        return {
            "pipeline_id": pipeline_id,
            "version": pipeline["version"],
            "steps": steps,
            "warnings": warnings,
        }

    # -- backtest ------------------------------------------------------------------------
    async def backtest(
        self, event_type: Any, filter: Any = None, limit: Any = None
    ) -> dict[str, Any]:
        """How a filter would have treated the newest stored events of a type (not test ones)."""
        event_type = self._check_event_type(event_type)
        compiled = compile_filter(filter)  # FilterError (422) names the offending clause
        limit = _check_scan_limit(limit, BACKTEST_DEFAULT)
        async with self._scan_slot():
            rows = await self._newest_events(event_type, limit)
            return await asyncio.to_thread(_backtest_rows, compiled, rows, event_type)

    # -- scans run a few at a time, read in chunks, evaluate in a thread ------------------
    @contextlib.asynccontextmanager
    async def _scan_slot(self) -> AsyncIterator[None]:
        """One of SCAN_CONCURRENCY scans at a time; SCAN_QUEUE may wait, the rest get 429."""
        if self._scan_waiting >= SCAN_QUEUE:
            raise RateLimitedError(
                f"too many scans (backtests, stats, replays) at once: {SCAN_CONCURRENCY} run and "
                f"{SCAN_QUEUE} wait; try again shortly",
                details={"retry_after": 1},
            )
        self._scan_waiting += 1
        try:
            await self._scans.acquire()
        finally:
            self._scan_waiting -= 1
        try:
            yield
        finally:
            self._scans.release()

    async def _newest_events(self, event_type: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` stored events of a type (not test ones), read in chunks, each
        its own short read, so other requests get the store in between."""
        rows: list[dict[str, Any]] = []
        before: int | None = None
        while len(rows) < limit:
            async with self.repo.read() as session:
                chunk = await session.recent_events(
                    event_type, min(SCAN_CHUNK, limit - len(rows)), before
                )
            rows.extend(dict(r) for r in chunk)
            if len(chunk) < SCAN_CHUNK:
                break
            before = int(chunk[-1]["seq"])
            await asyncio.sleep(0)
        return rows

    async def backtest_trigger(self, trigger_id: str, limit: Any = None) -> dict[str, Any]:
        async with self.repo.read() as session:
            row = await self._trigger(session, trigger_id)
        result = await self.backtest(row["event_type"], row["filter"], limit)
        result["trigger_id"] = trigger_id
        return result

    # -- stats ---------------------------------------------------------------------------
    async def stats(self, trigger_id: str) -> dict[str, Any]:
        async with self._scan_slot(), self.repo.read() as session:
            row = await self._trigger(session, trigger_id)
            stats = await session.trigger_stats(row, self.engine.clock.now())
        return {
            "trigger_id": trigger_id,
            "fire_count": stats["fire_count"],
            "last_fired_at": to_iso(stats["last_fired_at"]),
            "decisions": stats["decisions"],
            "suppressed": stats["suppressed"],
            "rate": stats["rate"],
        }

    # -- replay --------------------------------------------------------------------------
    async def replay(
        self,
        *,
        event_ids: Any = None,
        event_type: Any = None,
        since: Any = None,
        until: Any = None,
        trigger_id: str | None = None,
        bypass_dedup: bool = False,
        limit: Any = None,
    ) -> dict[str, Any]:
        """Select stored events (by id, or by type and received time) and replay them."""
        limit = _check_scan_limit(limit, REPLAY_DEFAULT)
        if event_ids is None and event_type is None:
            raise ValidationError(
                "give event_ids, or event_type (optionally with since/until), to choose "
                "the events to replay",
                details={"path": "event_ids", "fields": ["event_ids", "event_type"]},
            )
        if event_ids is not None and event_type is not None:
            raise ValidationError(
                "give either event_ids or event_type, not both",
                details={"path": "event_type", "fields": ["event_ids", "event_type"]},
            )
        if trigger_id is not None and self.catalogue.matcher.get(trigger_id) is None:
            raise NotFoundError(
                f"event trigger {trigger_id} not found", details={"trigger_id": trigger_id}
            )
        if event_ids is not None:
            if since is not None or until is not None:
                raise ValidationError(
                    "since/until select events by event_type; they do not apply to event_ids",
                    details={"path": "since" if since is not None else "until"},
                )
            if (
                not isinstance(event_ids, list)
                or not event_ids
                or not all(isinstance(i, str) and i for i in event_ids)
            ):
                raise ValidationError(
                    "event_ids must be a non-empty list of event ids",
                    details={"path": "event_ids"},
                )
            if len(event_ids) > limit:
                raise ValidationError(
                    f"event_ids: {len(event_ids)} ids given; the limit is {limit}",
                    details={"path": "event_ids"},
                )
            ids = list(dict.fromkeys(event_ids))  # each event once, in the order given
        else:
            event_type = self._check_event_type(event_type)
            start, end = _time(since, "since"), _time(until, "until")
            # Test events never fire: replaying one would start what it only explained.
            async with self.repo.read() as session:
                ids = await session.select_event_ids(event_type, start, end, limit)
        async with self._scan_slot():
            result = await self.engine.ingestor.replay(
                ids, trigger_id=trigger_id, bypass_dedup=bypass_dedup
            )
        result["decisions"] = [iso_times(d, "created_at") for d in result["decisions"]]
        return result
