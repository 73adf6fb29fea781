"""What an action is: declared metadata plus one async function.

An action declares its params schema (JSON Schema), its outputs, a default timeout and retry
policy, and whether it is idempotent. It is checked when it is declared, and can be run alone
in a test with a hand-made :class:`ActionContext`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema

from bud.errors import ValidationError
from bud.templates import is_template

log = logging.getLogger("bud.actions")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    backoff_seconds: float = 1.0
    backoff_multiplier: float = 2.0
    max_backoff_seconds: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        raw = self.backoff_seconds * (self.backoff_multiplier ** max(0, attempt - 1))
        return float(min(raw, self.max_backoff_seconds))

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "backoff_seconds": self.backoff_seconds,
            "backoff_multiplier": self.backoff_multiplier,
            "max_backoff_seconds": self.max_backoff_seconds,
        }


class ActionError(Exception):
    """The action failed; ``retryable=False`` stops further attempts."""

    def __init__(
        self, message: str, *, retryable: bool = True, outputs: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.outputs = outputs or {}


class Wait(Exception):
    """The step waits until ``until`` (epoch seconds) without holding a worker slot.

    The worker parks the step (status ``waiting``) on a durable timer in the store and gives
    its slot back; at ``until`` any worker claims it again and calls the action with
    ``ctx.state`` set to ``state``. The wait is not an attempt.

    With ``events`` (``[{"event_type", "filter"}]``, filters rendered), the step also waits
    for an event: the first stored event of one of those types that matches its filter wakes
    the step early, with the event in ``ctx.state["event"]``. ``until`` is then its timeout,
    which the step's own ``timeout_seconds`` does not bound.
    """

    def __init__(
        self,
        until: float,
        state: dict[str, Any] | None = None,
        *,
        events: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"waiting until {until}")
        self.until = until
        self.state = state or {}
        self.events = events or []


class Emitter(Protocol):
    async def __call__(
        self, event_type: str, data: dict[str, Any], *, key: str
    ) -> dict[str, Any]: ...


@dataclass
class ActionContext:
    """Everything an action may use. Built by the worker; built by hand in tests."""

    execution_id: str
    step_id: str
    attempt: int
    params: dict[str, Any]
    event: dict[str, Any] | None = None
    settings: Any = None
    platform: Any = None
    deliveries: Any = None  # records notification deliveries: async (dict) -> None
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    emit: Emitter | None = None
    run_pipeline: Callable[..., Awaitable[dict[str, Any]]] | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # kept across a Wait (see Wait)
    clock: Any = None  # the engine's clock (``now()``); None: the system's

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.step_id}"

    def log(self, message: str, level: str = "info", **extra: Any) -> None:
        entry = {"level": level, "message": message, **extra}
        self.logs.append(entry)
        log.log(
            logging.getLevelName(level.upper())
            if isinstance(logging.getLevelName(level.upper()), int)
            else logging.INFO,
            "%s/%s: %s",
            self.execution_id,
            self.step_id,
            message,
        )


ActionFn = Callable[[ActionContext, dict[str, Any]], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Action:
    name: str
    fn: ActionFn
    description: str = ""
    params_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    outputs: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    idempotent: bool = True

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("an action needs a name")
        jsonschema.Draft202012Validator.check_schema(self.params_schema)
        if self.timeout_seconds <= 0:
            raise ValueError(f"action {self.name}: timeout_seconds must be positive")

    def _validator(self) -> jsonschema.Draft202012Validator:
        # Built once per action: building a validator costs more than running it.
        found = self.__dict__.get("_cached_validator")
        if found is None:
            found = jsonschema.Draft202012Validator(self.params_schema)
            object.__setattr__(self, "_cached_validator", found)
        return found

    def check_params(self, params: Mapping[str, Any], *, where: str, rendered: bool) -> None:
        """Validate params against the schema. Before rendering, template strings pass."""
        validator = self._validator()
        for error in sorted(
            validator.iter_errors(dict(params)), key=lambda e: list(e.absolute_path)
        ):
            if not rendered and _involves_template(error):
                continue
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            path = f"{where}{loc}"
            raise ValidationError(
                f"{path}: {_message(error)} (params of action '{self.name}')",
                details={"path": path, "action": self.name},
            )

    async def __call__(self, ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
        return (await self.fn(ctx, params)) or {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params_schema": self.params_schema,
            "outputs": self.outputs,
            "timeout_seconds": self.timeout_seconds,
            "retry": self.retry.to_dict(),
            "idempotent": self.idempotent,
        }


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, but "needs one of: a, b" for an ``anyOf`` of ``required`` lists."""
    options = error.validator_value if error.validator == "anyOf" else None
    if isinstance(options, list) and all(set(o) == {"required"} for o in options):
        names = [", ".join(o["required"]) for o in options]
        return f"needs one of: {' or '.join(names)}"
    return str(error.message)


def _involves_template(error: jsonschema.ValidationError) -> bool:
    if is_template(error.instance):
        return True
    # `required`/`additionalProperties` errors are about the object, never a template.
    if error.validator in ("required", "additionalProperties"):
        return False
    return any(is_template(getattr(c, "instance", None)) for c in (error.context or []))


def action(
    name: str,
    *,
    description: str = "",
    params: dict[str, Any] | None = None,
    outputs: dict[str, str] | None = None,
    timeout_seconds: float = 60.0,
    retry: RetryPolicy | None = None,
    idempotent: bool = True,
) -> Callable[[ActionFn], Action]:
    """Declare an action: ``@action("log", params={...})`` over ``async def fn(ctx, params)``."""

    def wrap(fn: ActionFn) -> Action:
        return Action(
            name=name,
            fn=fn,
            description=description or (fn.__doc__ or "").strip(),
            params_schema=params or {"type": "object"},
            outputs=outputs or {},
            timeout_seconds=timeout_seconds,
            retry=retry or RetryPolicy(),
            idempotent=idempotent,
        )

    return wrap
