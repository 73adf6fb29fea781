"""Schedule triggers: cron (with a time zone) or a fixed interval, fired once per tick.

A schedule trigger has ``schedule: {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}`` or
``schedule: {"interval_seconds": 300}`` and the event type ``schedule.tick``. The store keeps
each schedule's next due tick (``trigger_schedules.next_at``). The sweeper of every process
that runs workers looks for due ticks; the one whose conditional update moves ``next_at``
on (``Session.claim_tick``) fires the tick through ``Launcher.fire``, in the same
transaction, so two processes never fire one tick and a restart neither loses nor repeats
one.

Missed ticks (the processes were down): the latest tick that is due is fired once, the ones
before it are skipped and counted (``skipped`` in the schedule state, ``missed_ticks`` in
the tick's data); the next tick is the first one after now. Cron expressions are read by
croniter, five fields (minute hour day-of-month month day-of-week), evaluated in the
schedule's time zone (IANA name, default UTC) so "9:00 in Berlin" follows daylight saving.
"""

from __future__ import annotations

import logging
import math
import zoneinfo
from datetime import datetime
from typing import Any

from croniter import croniter

from bud.clock import Clock
from bud.engine.catalogue import Catalogue
from bud.engine.ingest import Ingestor
from bud.engine.matcher import TriggerView
from bud.engine.records import derived_event_id
from bud.errors import ValidationError
from bud.store import Repository
from bud.timeutil import to_iso

__all__ = ["MIN_INTERVAL", "Ticker", "check_schedule", "first_tick", "plan_tick", "tick_envelope"]

log = logging.getLogger("bud.engine")
MIN_INTERVAL = 1.0
MAX_COUNTED = 10_000  # missed cron ticks counted one by one, at most
_KEYS = {"cron", "timezone", "interval_seconds"}


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"schedule.timezone: {name!r} is not a known IANA time zone "
            "(such as 'UTC' or 'Europe/Berlin')",
            details={"path": "schedule.timezone"},
        ) from exc


def check_schedule(value: Any) -> dict[str, Any]:
    """The schedule in its stored form, or a ValidationError naming the field."""
    if not isinstance(value, dict):
        raise ValidationError(
            'schedule must be an object: {"cron": "0 9 * * 1-5", "timezone": "UTC"} or '
            '{"interval_seconds": 300}',
            details={"path": "schedule"},
        )
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise ValidationError(
            f"schedule.{unknown[0]}: unknown field; a schedule has cron (with timezone) or "
            "interval_seconds",
            details={"path": f"schedule.{unknown[0]}"},
        )
    has_cron, has_interval = "cron" in value, "interval_seconds" in value
    if has_cron == has_interval:
        raise ValidationError(
            "schedule needs exactly one of cron and interval_seconds",
            details={"path": "schedule"},
        )
    if has_interval:
        seconds = value["interval_seconds"]
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds < MIN_INTERVAL
        ):
            raise ValidationError(
                f"schedule.interval_seconds must be a number of seconds, at least {MIN_INTERVAL:g}",
                details={"path": "schedule.interval_seconds"},
            )
        if "timezone" in value:
            raise ValidationError(
                "schedule.timezone applies to cron schedules only",
                details={"path": "schedule.timezone"},
            )
        return {"interval_seconds": seconds}
    cron = value["cron"]
    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ValidationError(
            f"schedule.cron: {cron!r} is not a valid cron expression; use five fields: "
            "minute hour day-of-month month day-of-week, such as '0 9 * * 1-5'",
            details={"path": "schedule.cron"},
        )
    timezone = value.get("timezone", "UTC")
    if not isinstance(timezone, str):
        raise ValidationError(
            "schedule.timezone must be an IANA time zone name such as 'Europe/Berlin'",
            details={"path": "schedule.timezone"},
        )
    _zone(timezone)
    return {"cron": cron, "timezone": timezone}


def _next_cron(schedule: dict[str, Any], after: float) -> float:
    start = datetime.fromtimestamp(after, _zone(schedule.get("timezone", "UTC")))
    return float(croniter(schedule["cron"], start).get_next(float))


def first_tick(schedule: dict[str, Any], now: float) -> float:
    """When a schedule created (or enabled, or changed) at ``now`` first fires."""
    if "interval_seconds" in schedule:
        return now + float(schedule["interval_seconds"])
    return _next_cron(schedule, now)


def plan_tick(schedule: dict[str, Any], due_at: float, now: float) -> tuple[float, int, float]:
    """For a schedule due at ``due_at``: the tick to fire, how many missed ticks before it
    are skipped, and the next tick after ``now``."""
    if "interval_seconds" in schedule:
        step = float(schedule["interval_seconds"])
        behind = max(0, math.floor((now - due_at) / step))
        tick = due_at + behind * step
        return tick, behind, tick + step
    tick, skipped = due_at, 0
    following = _next_cron(schedule, tick)
    while following <= now and skipped < MAX_COUNTED:
        tick, skipped = following, skipped + 1
        following = _next_cron(schedule, tick)
    if following <= now:  # too far behind to count: jump to the latest tick
        latest = croniter(
            schedule["cron"], datetime.fromtimestamp(now, _zone(schedule.get("timezone", "UTC")))
        ).get_prev(float)
        tick, following = float(latest), _next_cron(schedule, now)
    return tick, skipped, following


class Ticker:
    """Fires the due ticks of schedule triggers (called by the sweeper)."""

    def __init__(self, repo: Repository, catalogue: Catalogue, ingestor: Ingestor, clock: Clock):
        self.repo = repo
        self.catalogue = catalogue
        self.ingestor = ingestor
        self.clock = clock

    async def fire_due(self, limit: int = 100) -> list[str]:
        """Fire every due tick this process claims; return the executions started."""
        now = self.clock.now()
        async with self.repo.read() as session:
            due = await session.due_schedules(now, limit)
        started: list[str] = []
        for state in due:
            trigger_id = state["trigger_id"]
            view = self.catalogue.matcher.get(trigger_id)
            if view is None or trigger_id not in self.catalogue.matcher.schedules:
                continue  # not in this process's copy yet, or deleted meanwhile
            try:
                execution_id = await self._fire(state, view, now)
            except Exception:  # one schedule's trouble does not hold up the others
                log.exception("schedule tick of trigger %s failed", trigger_id)
                continue
            if execution_id is not None:
                started.append(execution_id)
        if started:
            self.ingestor.signals.wake()
        return started

    async def _fire(self, state: dict[str, Any], view: TriggerView, now: float) -> str | None:
        """Claim the due tick and fire it, in one transaction; None if another process won."""
        trigger_id = view.id
        async with self.repo.transaction() as session:
            stored = await session.get_trigger(trigger_id)  # newer than the cached copy
            if stored is None or not stored.get("schedule") or not stored["enabled"]:
                return None
            schedule = dict(stored["schedule"] or {})
            tick_at, skipped, next_at = plan_tick(schedule, state["next_at"], now)
            if not await session.claim_tick(
                trigger_id,
                state["next_at"],
                tick_at=tick_at,
                next_at=next_at,
                skipped=skipped,
                now=now,
            ):
                return None  # another process fired this tick
            await session.hold_triggers([trigger_id])
            pipeline = await session.get_pipeline(view.pipeline_id)
            env = self.ingestor.normalize(
                [tick_envelope(view.id, view.pipeline_id, schedule, tick_at, skipped, now)],
                default_source="schedule",
            )[0]
            outcome = await self.ingestor.ingest_for(session, env, view, pipeline, path="schedule")
        return outcome.execution_id


def tick_envelope(
    trigger_id: str,
    pipeline_id: str,
    schedule: dict[str, Any],
    tick_at: float,
    skipped: int,
    now: float,
) -> dict[str, Any]:
    """The ``schedule.tick`` event of one tick (its id is derived: one event per tick)."""
    scheduled = to_iso(tick_at)
    return {
        "event_type": "schedule.tick",
        "event_id": derived_event_id(f"{trigger_id}:{tick_at!r}", "schedule.tick"),
        "source": "schedule",
        "timestamp": scheduled,
        "data": {
            "trigger_id": trigger_id,
            "schedule_id": trigger_id,
            "pipeline_id": pipeline_id,
            "scheduled_time": scheduled,
            "fired_at": to_iso(now),
            "missed_ticks": skipped,
            "schedule": schedule,
        },
    }
