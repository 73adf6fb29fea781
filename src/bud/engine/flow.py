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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from bud.errors import ValidationError
from bud.render_limits import RenderLimits
from bud.store import Session
from bud.store.records import DecisionRecord, ExecutionRecord, ExecutionStatus, StepRecord
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


# A flow key renders on the ingest path, inside its transaction: it gets a small budget.
KEY_LIMITS = RenderLimits(cpu_seconds=0.05, max_output_chars=10_000, max_memory_bytes=1 << 20)


def render_key(template: str | None, event: Mapping[str, Any], default: str = "") -> str:
    """The rule's key for an event; a template that cannot render (or goes past its small
    budget) keys on its error text."""
    if not template:
        return default
    try:
        return str(render_string(template, build_context(event=event), limits=KEY_LIMITS))[:500]
    except TemplateError as exc:
        return f"!{exc.message}"[:500]


@dataclass(frozen=True)
class Verdict:
    outcome: str  # fired | suppressed | debounced
    code: str | None = None
    reason: str = ""


FIRED = Verdict("fired", None, "filter matched")


class Rule:
    """Names of the flow rules, for choosing which apply on a path."""

    DEDUP = "dedup"
    RATE_LIMIT = "rate_limit"
    BREAKER = "circuit_breaker"
    DEBOUNCE = "debounce"
    CONCURRENCY = "concurrency"


ALL_RULES = frozenset({Rule.DEDUP, Rule.RATE_LIMIT, Rule.BREAKER, Rule.DEBOUNCE, Rule.CONCURRENCY})


@dataclass
class FireBatch:
    """What one transaction has decided so far, before its rows are written."""

    now: float
    executions: list[ExecutionRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    fired: dict[str, int] = field(default_factory=dict)  # trigger id -> executions started
    dedup: dict[tuple[str, str], str] = field(default_factory=dict)
    open_keys: dict[tuple[str, str], str] = field(default_factory=dict)
    debounce: dict[tuple[str, str], DecisionRecord] = field(default_factory=dict)
    tripped: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    # Fires stored before this transaction, per (trigger, window start): read once, since the
    # transaction holds the trigger's row and writes its own fires only at the end.
    stored_fires: dict[tuple[str, float], int] = field(default_factory=dict)
    stored_executions: dict[tuple[str, float], int] = field(default_factory=dict)  # the same


class FlowGate:
    """Applies a trigger's flow rules to one matched event, inside the firing transaction.

    All state lives in the store (dedup and debounce keys, fire counts, open executions), so
    the rules hold across any number of processes; the transaction holds the trigger's row
    (``Session.hold_triggers``) so two processes deciding for one trigger take turns.
    """

    def __init__(self, settings: Any, close_execution: Any) -> None:
        self.settings = settings
        self._close = close_execution  # scheduler.close_execution

    def breaker_rule(self, flow: Mapping[str, Any]) -> tuple[int, float]:
        rule = flow.get("circuit_breaker") or {
            "max_fires": self.settings.breaker_max_fires,
            "window_seconds": self.settings.breaker_window_seconds,
        }
        return int(rule["max_fires"]), float(rule["window_seconds"])

    async def check(
        self,
        session: Session,
        view: Any,
        env: Mapping[str, Any],
        batch: FireBatch,
        decision: DecisionRecord | None,
        rules: frozenset[str] = ALL_RULES,
    ) -> tuple[Verdict, str | None, bool]:
        """Verdict for a matched event; also the execution's concurrency key and whether held."""
        flow: Mapping[str, Any] = view.flow or {}
        event_id = env["event_id"]
        now = batch.now

        rule = flow.get("dedup") if Rule.DEDUP in rules else None
        if rule:
            key = render_key(rule.get("key"), env, event_id)
            window = float(rule["window_seconds"])
            first = batch.dedup.get((view.id, key))
            if first is None:
                first = await session.claim_dedup(view.id, key, event_id, now, now + window)
                if first is None:
                    batch.dedup[(view.id, key)] = event_id
            if first is not None:
                return (
                    Verdict(
                        "suppressed",
                        "deduplicated",
                        f"duplicate of {first} within the {window:g}s dedup window (key {key!r})",
                    ),
                    None,
                    False,
                )

        rule = flow.get("rate_limit") if Rule.RATE_LIMIT in rules else None
        if rule:
            per, limit = float(rule["per_seconds"]), int(rule["max"])
            window_key = (view.id, now - per)
            if window_key not in batch.stored_executions:
                batch.stored_executions[window_key] = await session.count_recent_executions(
                    view.id, now - per, limit
                )
            recent = batch.stored_executions[window_key]
            if recent + batch.fired.get(view.id, 0) >= limit:
                return (
                    Verdict(
                        "suppressed", "rate_limited", f"rate limit of {limit} per {per:g}s reached"
                    ),
                    None,
                    False,
                )

        if Rule.BREAKER in rules:
            limit, window = self.breaker_rule(flow)
            since = (view.id, now - window)
            if since not in batch.stored_fires:
                batch.stored_fires[since] = await session.recent_fires(view.id, now - window)
            fires = batch.stored_fires[since] + batch.fired.get(view.id, 0)
            if fires >= limit:
                reason = (
                    f"circuit breaker tripped: more than {limit} fires in {window:g}s; "
                    "the trigger was disabled"
                )
                if not any(item["trigger"].id == view.id for item in batch.tripped):
                    batch.tripped.append(
                        {
                            "trigger": view,
                            "reason": reason,
                            "fires": limit,
                            "window_seconds": window,
                        }
                    )
                    await session.trip_trigger(view.id, reason, now)
                return Verdict("suppressed", "circuit_open", reason), None, False

        rule = flow.get("debounce") if Rule.DEBOUNCE in rules else None
        if rule and decision is not None:
            key = render_key(rule.get("key"), env, "")
            seconds = float(rule["seconds"])
            superseded = {
                "outcome": "suppressed",
                "reason_code": "superseded",
                "reason": f"superseded by {event_id} within the {seconds:g}s debounce",
            }
            pending = batch.debounce.get((view.id, key))
            previous = await session.put_debounce(view.id, key, event_id, now + seconds)
            if pending is not None:
                pending.update(superseded)  # type: ignore[typeddict-item]
            elif previous is not None:
                await session.settle_decision(previous, view.id, "debounced", superseded)
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

        rule = flow.get("concurrency") if Rule.CONCURRENCY in rules else None
        policy = rule["policy"] if rule else "allow"
        if policy == "allow":
            return FIRED, None, False
        key = render_key(rule.get("key"), env, "")  # type: ignore[union-attr]
        open_rows = await session.open_executions(view.id, key)
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
                await self._close(
                    session,
                    row["id"],
                    ExecutionStatus.CANCELLED,
                    f"cancelled by newer event {event_id} (concurrency policy cancel_previous)",
                    now,
                )
                batch.cancelled.append(row["id"])
            reason = (
                "filter matched; cancelled earlier executions" if open_rows else "filter matched"
            )
            return Verdict("fired", None, reason), key, False
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
