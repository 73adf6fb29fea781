"""Flow control per trigger: dedup window, rate limit, debounce, concurrency, circuit breaker.

Every rule is optional and set in the trigger's ``flow`` object. A rule that holds an event
back records why as that event's decision (``suppressed`` with a reason code); nothing is
dropped silently.

    {"dedup":       {"key": "{{ event.model_id }}", "window_seconds": 300},
     "rate_limit":  {"max": 10, "per_seconds": 60},
     "debounce":    {"seconds": 5, "key": "{{ event.cluster_id }}"},
     "concurrency": {"policy": "skip", "key": "{{ event.model_id }}"},
     "circuit_breaker": {"max_fires": 100, "window_seconds": 60}}
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from bud.engine.status import ExecutionStatus
from bud.errors import ValidationError
from bud.store import schema as t
from bud.templates import TemplateError, build_context, check_syntax, render_string

_TEMPLATE = {"type": "string", "minLength": 1, "maxLength": 1000}
_SECONDS = {"type": "number", "exclusiveMinimum": 0, "maximum": 30 * 86400}
FLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "dedup": {
            "type": "object",
            "additionalProperties": False,
            "required": ["window_seconds"],
            "properties": {"key": _TEMPLATE, "window_seconds": _SECONDS},
        },
        "rate_limit": {
            "type": "object",
            "additionalProperties": False,
            "required": ["max", "per_seconds"],
            "properties": {"max": {"type": "integer", "minimum": 1}, "per_seconds": _SECONDS},
        },
        "debounce": {
            "type": "object",
            "additionalProperties": False,
            "required": ["seconds"],
            "properties": {"seconds": _SECONDS, "key": _TEMPLATE},
        },
        "concurrency": {
            "type": "object",
            "additionalProperties": False,
            "required": ["policy"],
            "properties": {
                "policy": {"enum": ["allow", "skip", "queue", "cancel_previous"]},
                "key": _TEMPLATE,
            },
        },
        "circuit_breaker": {
            "type": "object",
            "additionalProperties": False,
            "required": ["max_fires", "window_seconds"],
            "properties": {
                "max_fires": {"type": "integer", "minimum": 1},
                "window_seconds": _SECONDS,
            },
        },
    },
}


def check_flow(flow: Any) -> dict[str, Any]:
    """Validate a trigger's flow object; raise ValidationError naming the field."""
    if flow is None:
        return {}
    validator = jsonschema.Draft202012Validator(FLOW_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(flow))
    if error is not None:
        loc = ".".join(str(p) for p in error.absolute_path)
        path = "flow" + (f".{loc}" if loc else "")
        raise ValidationError(f"{path}: {error.message}", details={"path": path})
    for rule in ("dedup", "debounce", "concurrency"):
        key = flow.get(rule, {}).get("key")
        if key is not None:
            try:
                check_syntax(key, where=f"flow.{rule}.key")
            except TemplateError as exc:
                raise ValidationError(exc.message, details={"path": f"flow.{rule}.key"}) from exc
    return dict(flow)


def render_key(template: str | None, event: Mapping[str, Any], default: str = "") -> str:
    """The rule's key for an event; a template that cannot render keys on its error text."""
    if not template:
        return default
    try:
        return str(render_string(template, build_context(event=event)))[:500]
    except TemplateError as exc:
        return f"!{exc.message}"[:500]


@dataclass(frozen=True)
class Verdict:
    outcome: str  # fired | suppressed | debounced
    code: str | None = None
    reason: str = ""


class FireCounter:
    """Recent fire times per trigger, for the circuit breaker (per process, in memory)."""

    def __init__(self) -> None:
        self._times: dict[str, collections.deque[float]] = {}

    def add(self, trigger_id: str, now: float, window: float) -> int:
        times = self._times.setdefault(trigger_id, collections.deque())
        times.append(now)
        while times and times[0] < now - window:
            times.popleft()
        return len(times)

    def rate(self, trigger_id: str, now: float, window: float) -> int:
        times = self._times.get(trigger_id)
        return sum(1 for t in times if t >= now - window) if times else 0

    def forget(self, trigger_id: str) -> None:
        self._times.pop(trigger_id, None)


HELD = 1e18  # ready_at of a queued execution's first steps: never due until released


@dataclass
class BatchState:
    """What one ingest batch has decided so far, before its rows are written."""

    dedup: dict[tuple[str, str], float]
    fired: dict[str, int]
    open_keys: dict[tuple[str, str], str]
    debounce: dict[tuple[str, str], dict[str, Any]]
    tripped: list[dict[str, Any]]
    cancelled: list[str]

    @classmethod
    def new(cls) -> BatchState:
        return cls({}, {}, {}, {}, [], [])


async def _put_state(
    tx: Any, trigger_id: str, kind: str, key: str, event_id: str, expires_at: float
) -> None:
    """Remember the event a rule keyed on (replacing what was there) until ``expires_at``."""
    st = t.trigger_state
    await tx.delete(st, st.c.trigger_id == trigger_id, st.c.kind == kind, st.c.key == key)
    await tx.insert(
        st,
        {
            "trigger_id": trigger_id,
            "kind": kind,
            "key": key,
            "value": {"event_id": event_id},
            "expires_at": expires_at,
        },
    )


class FlowGate:
    """Applies a trigger's flow rules to one matched event inside the ingest transaction."""

    def __init__(self, settings: Any, counter: FireCounter) -> None:
        self.settings = settings
        self.counter = counter

    async def check(
        self,
        tx: Any,
        view: Any,
        env: Mapping[str, Any],
        now: float,
        batch: BatchState,
        decision: dict[str, Any],
    ) -> tuple[Verdict, str | None, bool]:
        """Verdict for a matched event; also the execution's concurrency key and whether held."""
        from bud.engine import scheduler  # scheduler imports this module: import on use

        flow: Mapping[str, Any] = view.flow or {}
        event_id = env["event_id"]

        rule = flow.get("dedup")
        if rule:
            key = render_key(rule.get("key"), env, event_id)
            window = float(rule["window_seconds"])
            seen_until = batch.dedup.get((view.id, key))
            if seen_until is None:
                row = await tx.get(t.trigger_state, trigger_id=view.id, kind="dedup", key=key)
                if row is not None and row["expires_at"] > now:
                    first = (row["value"] or {}).get("event_id")
                    return (
                        Verdict(
                            "suppressed",
                            "deduplicated",
                            f"duplicate of {first} within the {window:g}s dedup window "
                            f"(key {key!r})",
                        ),
                        None,
                        False,
                    )
                await _put_state(tx, view.id, "dedup", key, event_id, now + window)
                batch.dedup[(view.id, key)] = now + window
            else:
                return (
                    Verdict(
                        "suppressed",
                        "deduplicated",
                        f"duplicate within the {window:g}s dedup window (key {key!r})",
                    ),
                    None,
                    False,
                )

        rule = flow.get("rate_limit")
        if rule:
            per, limit = float(rule["per_seconds"]), int(rule["max"])
            recent = await tx.count(
                t.executions,
                t.executions.c.trigger_id == view.id,
                t.executions.c.created_at >= now - per,
            )
            if recent + batch.fired.get(view.id, 0) >= limit:
                return (
                    Verdict(
                        "suppressed", "rate_limited", f"rate limit of {limit} per {per:g}s reached"
                    ),
                    None,
                    False,
                )

        rule = flow.get("circuit_breaker") or {
            "max_fires": self.settings.breaker_max_fires,
            "window_seconds": self.settings.breaker_window_seconds,
        }
        window, limit = float(rule["window_seconds"]), int(rule["max_fires"])
        if self.counter.rate(view.id, now, window) >= limit:
            reason = (
                f"circuit breaker tripped: more than {limit} fires in {window:g}s; "
                "the trigger was disabled"
            )
            batch.tripped.append(
                {"trigger": view, "reason": reason, "fires": limit, "window_seconds": window}
            )
            await tx.update(
                t.triggers,
                {"enabled": False, "tripped_at": now, "tripped_reason": reason},
                t.triggers.c.id == view.id,
            )
            return Verdict("suppressed", "circuit_open", reason), None, False

        rule = flow.get("debounce")
        if rule:
            key = render_key(rule.get("key"), env, "")
            seconds = float(rule["seconds"])
            pending = batch.debounce.get((view.id, key))
            if pending is not None:
                pending.update(
                    outcome="suppressed",
                    reason_code="superseded",
                    reason=f"superseded by {event_id} within the {seconds:g}s debounce",
                )
            else:
                row = await tx.get(t.trigger_state, trigger_id=view.id, kind="debounce", key=key)
                if row is not None:
                    previous = (row["value"] or {}).get("event_id")
                    await tx.update(
                        t.decisions,
                        {
                            "outcome": "suppressed",
                            "reason_code": "superseded",
                            "reason": f"superseded by {event_id} within the {seconds:g}s debounce",
                        },
                        t.decisions.c.event_id == previous,
                        t.decisions.c.trigger_id == view.id,
                        t.decisions.c.outcome == "debounced",
                    )
            await _put_state(tx, view.id, "debounce", key, event_id, now + seconds)
            batch.debounce[(view.id, key)] = decision
            return (
                Verdict(
                    "debounced",
                    "debounced",
                    f"waiting for {seconds:g}s without newer events before firing",
                ),
                None,
                False,
            )

        rule = flow.get("concurrency")
        policy = rule["policy"] if rule else "allow"
        if policy == "allow":
            return Verdict("fired", None, "filter matched"), None, False
        key = render_key(rule.get("key"), env, "")  # type: ignore[union-attr]
        open_rows = await tx.list(
            t.executions,
            where=[
                t.executions.c.trigger_id == view.id,
                t.executions.c.concurrency_key == key,
                t.executions.c.status.in_(("queued", "running")),
            ],
        )
        in_batch = batch.open_keys.get((view.id, key))
        if policy == "skip" and (open_rows or in_batch):
            running = open_rows[0]["id"] if open_rows else in_batch
            return (
                Verdict(
                    "suppressed",
                    "concurrency_skip",
                    f"skipped: execution {running} of this trigger is still open "
                    f"(concurrency policy skip, key {key!r})",
                ),
                key,
                False,
            )
        if policy == "cancel_previous":
            for row in open_rows:
                await scheduler.close_execution(
                    tx,
                    row["id"],
                    ExecutionStatus.CANCELLED,
                    f"cancelled by newer event {event_id} (concurrency policy cancel_previous)",
                    now,
                )
                batch.cancelled.append(row["id"])
            return (
                Verdict(
                    "fired",
                    None,
                    "filter matched; cancelled earlier executions"
                    if open_rows
                    else "filter matched",
                ),
                key,
                False,
            )
        held = bool(open_rows or in_batch)
        return (
            Verdict(
                "fired",
                None,
                "filter matched; queued behind a running execution" if held else "filter matched",
            ),
            key,
            held,
        )
