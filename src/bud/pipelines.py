"""Pipeline definitions: the model, its validation and DAG order.

A definition is ``{"steps": [{"id", "action", "params", "depends_on"}...]}`` plus the optional
fields of DESIGN 4.5. Validation collects every problem, each naming the step and field
(``steps[1] (deploy).depends_on``), and a cycle is named as one (``a -> b -> a``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bud.actions.base import RetryPolicy
from bud.actions.registry import ActionRegistry
from bud.errors import FilterError, ValidationError
from bud.filters import compile_filter
from bud.templates import TemplateError, check_syntax, is_template, iter_templates

STEP_ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
STEP_KEYS = {
    "id",
    "action",
    "params",
    "depends_on",
    "name",
    "condition",
    "retry",
    "timeout_seconds",
    "on_failure",
    "for_each",
    "max_parallel",
    "on_item_failure",
}
PIPELINE_KEYS = {
    "steps",
    "parameters",
    "timeout_seconds",
    "max_parallel_steps",
    "description",
    "cancel_on",
}
CANCEL_ON_KEYS = {"event_type", "filter"}
RETRY_KEYS = {"max_attempts", "backoff_seconds", "backoff_multiplier", "max_backoff_seconds"}
MAX_STEPS = 200
MAX_ITEMS = 1000  # items of one for_each step
FOR_EACH_ID_LENGTH = 56  # room for "[999]" in the 64 characters of a step id
MAX_CANCEL_ON = 10


@dataclass(frozen=True)
class StepDef:
    id: str
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    name: str | None = None
    condition: str | None = None
    retry: RetryPolicy | None = None
    timeout_seconds: float | None = None
    on_failure: str = "fail"
    for_each: Any = None  # a template yielding a list (or a literal list): one item run each
    max_parallel: int | None = None  # items running at once
    on_item_failure: str = "stop"  # stop: start no more items; continue: run them all

    @functools.cached_property
    def templated(self) -> bool:
        """Whether running the step renders anything (a condition, params with templates, or
        a for_each: its items and the step itself need the context)."""
        from bud.templates import has_templates

        return self.condition is not None or self.for_each is not None or has_templates(self.params)


@dataclass(frozen=True)
class CancelOn:
    """An event that cancels the execution (``cancel_on`` of a pipeline)."""

    event_type: str
    filter: dict[str, Any] = field(default_factory=dict)  # templates rendered at start


@dataclass(frozen=True)
class PipelineDef:
    steps: tuple[StepDef, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: float | None = None
    max_parallel_steps: int | None = None
    cancel_on: tuple[CancelOn, ...] = ()

    @property
    def uses_waits(self) -> bool:
        """Whether an execution of this pipeline may store waits (the store is swept of
        them when it ends)."""
        return bool(self.cancel_on) or any(
            s.action == "wait_for_event" or (s.action == "deployment_create" and "wait" in s.params)
            for s in self.steps
        )

    def step(self, step_id: str) -> StepDef:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def dependents(self, step_id: str) -> list[str]:
        return [s.id for s in self.steps if step_id in s.depends_on]

    def roots(self) -> list[str]:
        return [s.id for s in self.steps if not s.depends_on]


class _Errors:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append({"path": path, "message": f"{path}: {message}"})

    def raise_if_any(self) -> None:
        if self.items:
            first = self.items[0]["message"]
            more = f" (and {len(self.items) - 1} more)" if len(self.items) > 1 else ""
            raise ValidationError(
                f"invalid pipeline definition: {first}{more}",
                details={"path": self.items[0]["path"], "errors": self.items},
            )


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_retry(raw: Any, where: str, errors: _Errors) -> RetryPolicy | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        errors.add(where, "must be an object with max_attempts, backoff_seconds, ...")
        return None
    for key in raw:
        if key not in RETRY_KEYS:
            errors.add(f"{where}.{key}", f"unknown field; allowed: {', '.join(sorted(RETRY_KEYS))}")
    max_attempts = raw.get("max_attempts", 1)
    if (
        not isinstance(max_attempts, int)
        or isinstance(max_attempts, bool)
        or not 1 <= max_attempts <= 100
    ):
        errors.add(f"{where}.max_attempts", "must be an integer from 1 to 100")
        return None
    values = {}
    for key, default in (
        ("backoff_seconds", 1.0),
        ("backoff_multiplier", 2.0),
        ("max_backoff_seconds", 300.0),
    ):
        v = raw.get(key, default)
        if not _num(v) or v < 0:
            errors.add(f"{where}.{key}", "must be a non-negative number")
            return None
        values[key] = float(v)
    return RetryPolicy(max_attempts=max_attempts, **values)


def parse_definition(raw: Any, registry: ActionRegistry) -> PipelineDef:
    """Validate a definition; raise ValidationError listing every problem."""
    errors = _Errors()
    if not isinstance(raw, Mapping):
        errors.add("definition", "must be a JSON object with a 'steps' list")
        errors.raise_if_any()
    assert isinstance(raw, Mapping)
    for key in raw:
        if key not in PIPELINE_KEYS:
            errors.add(
                f"definition.{key}", f"unknown field; allowed: {', '.join(sorted(PIPELINE_KEYS))}"
            )
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        errors.add("steps", "must be a non-empty list of steps")
        errors.raise_if_any()
    assert isinstance(raw_steps, list)
    if len(raw_steps) > MAX_STEPS:
        errors.add("steps", f"has {len(raw_steps)} steps; the limit is {MAX_STEPS}")
        errors.raise_if_any()

    steps: list[StepDef] = []
    seen: dict[str, int] = {}
    for i, rs in enumerate(raw_steps):
        where = f"steps[{i}]"
        if not isinstance(rs, Mapping):
            errors.add(where, "must be an object with id and action")
            continue
        sid = rs.get("id")
        if isinstance(sid, str) and sid:
            where = f"steps[{i}] ({sid})"
        for key in rs:
            if key not in STEP_KEYS:
                errors.add(
                    f"{where}.{key}", f"unknown field; allowed: {', '.join(sorted(STEP_KEYS))}"
                )
        if not isinstance(sid, str) or not STEP_ID_RE.match(sid):
            errors.add(
                f"{where}.id", "is required: letters, digits, _ or -, starting with a letter or _"
            )
            continue
        if sid in seen:
            errors.add(f"{where}.id", f"duplicate step id {sid!r} (also steps[{seen[sid]}])")
            continue
        seen[sid] = i
        action_name = rs.get("action")
        params = rs.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            errors.add(f"{where}.params", "must be an object")
            params = {}
        if not isinstance(action_name, str) or not action_name:
            errors.add(f"{where}.action", "is required")
        elif action_name not in registry:
            errors.add(
                f"{where}.action",
                f"unknown action {action_name!r}; known actions: {', '.join(registry.names())}",
            )
        else:
            try:
                registry.get(action_name).check_params(
                    params, where=f"{where}.params", rendered=False
                )
            except ValidationError as exc:
                errors.add(
                    exc.details.get("path", f"{where}.params"), exc.message.split(": ", 1)[-1]
                )
        try:
            check_syntax(dict(params), where=f"{where}.params")
        except TemplateError as exc:
            errors.add(exc.details.get("path", where), exc.message.split(": ", 1)[-1])
        deps = rs.get("depends_on", [])
        if deps is None:
            deps = []
        if isinstance(deps, str):
            deps = [deps]
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            errors.add(f"{where}.depends_on", "must be a list of step ids")
            deps = []
        condition = rs.get("condition")
        if condition is not None:
            if not isinstance(condition, str):
                errors.add(
                    f"{where}.condition",
                    'must be a template string such as "{{ steps.check.outputs.healthy }}"',
                )
                condition = None
            else:
                try:
                    check_syntax(condition, where=f"{where}.condition")
                except TemplateError as exc:
                    errors.add(f"{where}.condition", exc.message.split(": ", 1)[-1])
        timeout = rs.get("timeout_seconds")
        if timeout is not None and (not _num(timeout) or timeout <= 0):
            errors.add(f"{where}.timeout_seconds", "must be a positive number")
            timeout = None
        on_failure = rs.get("on_failure", "fail")
        if on_failure not in ("fail", "continue"):
            errors.add(f"{where}.on_failure", "must be 'fail' or 'continue'")
        name = rs.get("name")
        if name is not None and not isinstance(name, str):
            errors.add(f"{where}.name", "must be a string")
            name = None
        for_each, max_parallel, on_item_failure = _parse_fan_out(rs, sid, where, errors)
        steps.append(
            StepDef(
                id=sid,
                action=str(action_name),
                params=dict(params),
                depends_on=tuple(dict.fromkeys(deps)),
                name=name,
                condition=condition,
                retry=_parse_retry(rs.get("retry"), f"{where}.retry", errors),
                timeout_seconds=float(timeout) if timeout is not None else None,
                on_failure=on_failure if on_failure in ("fail", "continue") else "fail",
                for_each=for_each,
                max_parallel=max_parallel,
                on_item_failure=on_item_failure,
            )
        )

    by_id = {s.id: s for s in steps}
    for s in steps:
        where = f"steps[{seen[s.id]}] ({s.id}).depends_on"
        for d in s.depends_on:
            if d == s.id:
                errors.add(where, f"step {s.id!r} depends on itself")
            elif d not in by_id and d not in [
                str(r.get("id")) for r in raw_steps if isinstance(r, Mapping)
            ]:
                errors.add(where, f"unknown step {d!r}; steps are: {', '.join(by_id)}")
    cycle = find_cycle({s.id: [d for d in s.depends_on if d in by_id and d != s.id] for s in steps})
    if cycle:
        errors.add("steps", f"depends_on forms a cycle: {' -> '.join(cycle)}")

    parameters = raw.get("parameters", {}) or {}
    if not isinstance(parameters, Mapping):
        errors.add("definition.parameters", "must be an object of parameter names to defaults")
        parameters = {}
    p_timeout = raw.get("timeout_seconds")
    if p_timeout is not None and (not _num(p_timeout) or p_timeout <= 0):
        errors.add("definition.timeout_seconds", "must be a positive number")
        p_timeout = None
    mps = raw.get("max_parallel_steps")
    if mps is not None and (not isinstance(mps, int) or isinstance(mps, bool) or mps < 1):
        errors.add("definition.max_parallel_steps", "must be a positive integer")
        mps = None
    cancel_on = _parse_cancel_on(raw.get("cancel_on"), errors)
    errors.raise_if_any()
    return PipelineDef(
        steps=tuple(steps),
        parameters=dict(parameters),
        timeout_seconds=float(p_timeout) if p_timeout is not None else None,
        max_parallel_steps=mps,
        cancel_on=cancel_on,
    )


def _parse_fan_out(
    rs: Mapping[str, Any], sid: str, where: str, errors: _Errors
) -> tuple[Any, int | None, str]:
    """``for_each``, ``max_parallel`` and ``on_item_failure`` of a step."""
    for_each = rs.get("for_each")
    max_parallel = rs.get("max_parallel")
    on_item_failure = rs.get("on_item_failure", "stop")
    if for_each is None:
        for key in ("max_parallel", "on_item_failure"):
            if rs.get(key) is not None:
                errors.add(f"{where}.{key}", "only applies to a step with for_each")
        return None, None, "stop"
    if isinstance(for_each, str):
        if not is_template(for_each):
            errors.add(
                f"{where}.for_each",
                'must be a template that yields a list, such as "{{ steps.find.outputs.models }}",'
                " or a list",
            )
        else:
            try:
                check_syntax(for_each, where=f"{where}.for_each")
            except TemplateError as exc:
                errors.add(f"{where}.for_each", exc.message.split(": ", 1)[-1])
    elif isinstance(for_each, list):
        if len(for_each) > MAX_ITEMS:
            errors.add(f"{where}.for_each", f"has {len(for_each)} items; the limit is {MAX_ITEMS}")
        try:
            check_syntax(for_each, where=f"{where}.for_each")
        except TemplateError as exc:
            errors.add(exc.details.get("path", f"{where}.for_each"), exc.message.split(": ", 1)[-1])
    else:
        errors.add(f"{where}.for_each", "must be a template that yields a list, or a list")
    if len(sid) > FOR_EACH_ID_LENGTH:
        errors.add(
            f"{where}.id",
            f"a step with for_each has an id of at most {FOR_EACH_ID_LENGTH} characters",
        )
    if max_parallel is not None and (
        not isinstance(max_parallel, int) or isinstance(max_parallel, bool) or max_parallel < 1
    ):
        errors.add(f"{where}.max_parallel", "must be a positive integer")
        max_parallel = None
    if on_item_failure not in ("stop", "continue"):
        errors.add(f"{where}.on_item_failure", "must be 'stop' or 'continue'")
        on_item_failure = "stop"
    return for_each, max_parallel, on_item_failure


def _parse_cancel_on(raw: Any, errors: _Errors) -> tuple[CancelOn, ...]:
    if raw is None:
        return ()
    where = "definition.cancel_on"
    if not isinstance(raw, list):
        errors.add(where, "must be a list of {event_type, filter}")
        return ()
    if len(raw) > MAX_CANCEL_ON:
        errors.add(where, f"has {len(raw)} entries; the limit is {MAX_CANCEL_ON}")
        return ()
    found: list[CancelOn] = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            errors.add(at, "must be an object with event_type and filter")
            continue
        for key in entry:
            if key not in CANCEL_ON_KEYS:
                errors.add(f"{at}.{key}", "unknown field; allowed: event_type, filter")
        event_type = entry.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            errors.add(f"{at}.event_type", "is required: the type of the event that cancels")
            continue
        filter_ = entry.get("filter") or {}
        if not isinstance(filter_, Mapping):
            errors.add(f"{at}.filter", "must be an object in the trigger filter language")
            continue
        try:
            check_syntax(dict(filter_), where=f"{at}.filter")
        except TemplateError as exc:
            errors.add(exc.details.get("path", f"{at}.filter"), exc.message.split(": ", 1)[-1])
            continue
        if not any(True for _ in iter_templates(dict(filter_), "")):
            try:  # no templates: the filter is final now, so check it now
                compile_filter(dict(filter_))
            except FilterError as exc:
                errors.add(f"{at}.filter", exc.message)
                continue
        found.append(CancelOn(event_type=event_type, filter=dict(filter_)))
    return tuple(found)


def find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle in ``step -> dependencies`` as a closed path (``a -> b -> a``), or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for dep in graph.get(node, []):
            if color.get(dep, black) == grey:
                start = stack.index(dep)
                # report in execution order: dependency first
                return list(reversed([*stack[start:], dep]))
            if color.get(dep) == white:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        color[node] = black
        return None

    for n in graph:
        if color[n] == white:
            found = visit(n)
            if found:
                return found
    return None


def definition_to_dict(d: PipelineDef) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": []}
    for s in d.steps:
        step: dict[str, Any] = {"id": s.id, "action": s.action, "params": s.params}
        if s.depends_on:
            step["depends_on"] = list(s.depends_on)
        for key in ("name", "condition", "timeout_seconds"):
            if getattr(s, key) is not None:
                step[key] = getattr(s, key)
        if s.retry:
            step["retry"] = s.retry.to_dict()
        if s.on_failure != "fail":
            step["on_failure"] = s.on_failure
        if s.for_each is not None:
            step["for_each"] = s.for_each
            if s.max_parallel is not None:
                step["max_parallel"] = s.max_parallel
            step["on_item_failure"] = s.on_item_failure
        out["steps"].append(step)
    if d.parameters:
        out["parameters"] = d.parameters
    if d.timeout_seconds is not None:
        out["timeout_seconds"] = d.timeout_seconds
    if d.max_parallel_steps is not None:
        out["max_parallel_steps"] = d.max_parallel_steps
    if d.cancel_on:
        out["cancel_on"] = [{"event_type": c.event_type, "filter": c.filter} for c in d.cancel_on]
    return out
