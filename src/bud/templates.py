"""Sandboxed Jinja2 rendering of step params.

Event data is untrusted: every template renders in Jinja2's ``SandboxedEnvironment``, and a
missing value is an error that names its path (``event.region``) unless the template gives a
fallback (``{{ event.region | default("us-east-1") }}``). A param that is exactly one
expression keeps its type: ``"{{ event.replicas }}"`` renders to an int.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NoReturn

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bud import render_limits as _limits
from bud.errors import ValidationError
from bud.redact import MASK as MASK  # re-exported: the mask every recorder uses
from bud.redact import masker
from bud.render_limits import DEFAULT_LIMITS, RenderLimits

SINGLE_EXPR_RE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class TemplateError(ValidationError):
    """A template could not be rendered."""

    code = "template_error"


class Scope(dict[str, Any]):
    """A dict that knows where it sits in the context, so a missing key names its full path."""

    __slots__ = ("_path",)

    def __init__(self, path: str, items: Mapping[str, Any]) -> None:
        super().__init__(items)
        self._path = path

    @property
    def path(self) -> str:
        return self._path


def scoped(path: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return Scope(path, {k: scoped(f"{path}.{k}", v) for k, v in value.items()})
    if isinstance(value, list):
        return [scoped(f"{path}[{i}]", v) for i, v in enumerate(value)]
    return value


class MissingValue(jinja2.StrictUndefined):
    """Undefined that fails with the full path of what was missing."""

    __slots__ = ()

    def _full_path(self) -> str:
        obj = self._undefined_obj
        name = self._undefined_name
        base = obj.path if isinstance(obj, Scope) else None
        if base is None:
            return str(name) if name is not None else "value"
        return f"{base}.{name}"

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        path = self._full_path()
        if self._undefined_hint:
            raise jinja2.UndefinedError(self._undefined_hint)
        raise jinja2.UndefinedError(f"missing value: {path} is not defined")

    __str__ = _fail_with_undefined_error
    __iter__ = _fail_with_undefined_error
    __len__ = _fail_with_undefined_error
    __bool__ = _fail_with_undefined_error
    __eq__ = _fail_with_undefined_error
    __ne__ = _fail_with_undefined_error
    __hash__ = _fail_with_undefined_error
    __contains__ = _fail_with_undefined_error

    def __getattr__(self, name: str) -> Any:
        if name[:2] == "__":
            raise AttributeError(name)
        self._fail_with_undefined_error()


# Filters that only select, count or convert numbers: they never turn a whole value into text.
_QUIET_FILTERS = frozenset(
    {
        "abs",
        "attr",
        "batch",
        "count",
        "d",
        "default",
        "dictsort",
        "first",
        "float",
        "groupby",
        "int",
        "items",
        "last",
        "length",
        "list",
        "map",
        "max",
        "min",
        "random",
        "reject",
        "rejectattr",
        "reverse",
        "round",
        "select",
        "selectattr",
        "slice",
        "sort",
        "sum",
        "unique",
        "bud_iter",
    }
)
_PADDING_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


class BudSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's sandbox (no unsafe attributes, no mutation of the context) within limits.

    Every operator, call, filter and loop step goes through ``bud.render_limits``: sizes are
    checked before a C-level operation runs, the clock between operations.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        _limits.active().tick()
        # Scope keys win over dict methods: `event.items` is the field, not dict.items.
        if isinstance(obj, Scope):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _limits.active().tick()
        if isinstance(obj, Scope) and argument not in obj:
            return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _limits.active()
        budget.tick()
        if operator == "*":
            _limits.check_repeat(budget, left, right)
        elif operator == "**":
            _limits.check_power(budget, left, right)
        elif operator == "+":
            _limits.check_sum(budget, left, right)
        elif operator == "%" and isinstance(left, str):
            _limits.check_format(budget, left, right if isinstance(right, tuple) else (right,))
        return budget.account(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _limits.active()
        budget.check_time()
        target = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(target, "__self__", None)
        if isinstance(owner, str):
            name = getattr(target, "__name__", "")
            if name in _PADDING_METHODS:
                _limits.check_widths(budget, *args[:1])
            elif name == "expandtabs":
                tabs = args[0] if args else kwargs.get("tabsize", 8)
                _limits.check_widths(
                    budget, owner.count("\t") * tabs if isinstance(tabs, int) else 0
                )
            elif name in ("format", "format_map"):
                _limits.check_format(budget, owner, [*args, *kwargs.values()])
            elif name == "replace" and len(args) >= 2:
                _check_replace(budget, owner, args[0], args[1])
            elif name == "join" and args:
                budget.check_text([owner, *args[0]] if isinstance(args[0], list) else args)
        return budget.account(super().call(__context, __obj, *args, **kwargs))

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):  # a loop's steps count, even with an empty body
            loop.iter = nodes.Filter(loop.iter, "bud_iter", [], [], None, None, lineno=loop.lineno)
        return tree


def _check_replace(budget: _limits.Budget, text: str, old: Any, new: Any) -> None:
    if isinstance(old, str) and isinstance(new, str) and len(new) > len(old):
        grows = (text.count(old) if old else len(text) + 1) * (len(new) - len(old))
        if len(text) + grows > budget.limits.max_output_chars:
            raise budget.too_large()


def _limited_filter(name: str, func: Any) -> Any:
    quiet = name in _QUIET_FILTERS

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        budget = _limits.active()
        budget.tick()
        values = args[1:] if getattr(func, "jinja_pass_arg", None) is not None else args
        if name in ("center", "indent"):
            width = values[1] if len(values) > 1 else kwargs.get("width")
            lines = str(values[0]).count("\n") + 1 if values and name == "indent" else 1
            _limits.check_widths(budget, width * lines if isinstance(width, int) else 0)
        elif name in ("batch", "slice") and len(values) > 1 and isinstance(values[1], int):
            budget.check_count(values[1], name)
        elif name == "format" and values:
            _limits.check_format(budget, values[0], [*values[1:], *kwargs.values()])
        elif name == "replace" and len(values) >= 3 and isinstance(values[0], str):
            _check_replace(budget, values[0], values[1], values[2])
        if not quiet:
            budget.check_text([*values, *kwargs.values()])
        return budget.account(func(*args, **kwargs))

    return run


def _bounded_range(*args: int) -> range:
    budget = _limits.active()
    numbers = range(*args)
    budget.check_count(len(numbers), "range")
    return numbers


def _finalize(value: Any) -> Any:
    """Every ``{{ ... }}`` output passes here before it becomes text."""
    if not isinstance(value, str):
        _limits.active().check_text(value)
    return value


def _make_env() -> BudSandbox:
    env = BudSandbox(
        undefined=MissingValue,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
        optimized=False,  # constant folding would run filters at compile time, outside limits
    )
    env.filters["json"] = env.filters["tojson"]
    env.filters["bud_iter"] = lambda items: _limits.active().iterate(items)
    env.filters = {
        name: f if name == "bud_iter" else _limited_filter(name, f)
        for name, f in env.filters.items()
    }
    env.globals["range"] = _bounded_range
    del env.globals["lipsum"]  # placeholder text, n paragraphs in one uninterruptible call
    return env


_ENV = _make_env()


CACHED_SOURCE_CHARS = 16_384  # compiled templates are kept for sources up to this size


@functools.lru_cache(maxsize=1024)
def _compiled_cached(text: str) -> jinja2.Template:
    return _ENV.from_string(text)


def _compiled(text: str) -> jinja2.Template:
    """A compiled template: compiling costs far more than rendering, so most are kept."""
    if len(text) > CACHED_SOURCE_CHARS:
        return _ENV.from_string(text)
    return _compiled_cached(text)


@functools.lru_cache(maxsize=1024)
def _expression_cached(text: str) -> Any:
    return _ENV.compile_expression(text, undefined_to_none=False)


def _expression(text: str) -> Any:
    if len(text) > CACHED_SOURCE_CHARS:
        return _ENV.compile_expression(text, undefined_to_none=False)
    return _expression_cached(text)


def event_scope(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The ``event`` namespace: data fields directly, envelope fields over them, and ``data``."""
    data = envelope.get("data") or {}
    merged: dict[str, Any] = dict(data)
    for key, value in envelope.items():
        merged[key] = value
    merged["data"] = data
    return merged


def build_context(
    *,
    event: Mapping[str, Any] | None = None,
    steps: Mapping[str, Any] | None = None,
    pipeline: Mapping[str, Any] | None = None,
    execution: Mapping[str, Any] | None = None,
    trigger: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "event": scoped("event", event_scope(event) if event else {}),
        "steps": scoped("steps", steps or {}),
        "pipeline": scoped("pipeline", pipeline or {}),
        "execution": scoped("execution", execution or {}),
        "trigger": scoped("trigger", trigger or {}),
        "params": scoped("params", params or {}),
        "secrets": scoped("secrets", secrets or {}),
    }


def is_falsy(value: Any) -> bool:
    """Whether a rendered ``condition`` skips its step: false values and "false"/"0"/"no"/""."""
    return not value or (
        isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "")
    )


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def has_templates(value: Any) -> bool:
    """Whether any string in ``value`` (nested in dicts and lists) is a template."""
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, Mapping):
        return any(has_templates(v) for v in value.values())
    if isinstance(value, list):
        return any(has_templates(v) for v in value)
    return False


def copy_json(value: Any) -> Any:
    """A copy of a JSON value's dicts and lists (what rendering template-free params gives)."""
    if isinstance(value, Mapping):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def render_string(
    template: str,
    context: Mapping[str, Any],
    *,
    where: str = "",
    limits: RenderLimits | None = None,
) -> Any:
    """Render one string; a lone ``{{ expr }}`` returns the expression's native value.

    The render is held to ``limits`` (``DEFAULT_LIMITS`` unless given); inside a
    ``render_value`` it shares that render's budget.
    """
    if not is_template(template):
        return template
    with _rendering(limits):
        return _render_string(template, context, where)


def _render_string(template: str, context: Mapping[str, Any], where: str) -> Any:
    if not is_template(template):
        return template
    prefix = f"{where}: " if where else ""
    budget = _limits.active()
    try:
        match = SINGLE_EXPR_RE.match(template)
        if match and "{{" not in match.group("expr") and "}}" not in match.group("expr"):
            value = _expression(match.group("expr"))(**context)
            if isinstance(value, jinja2.Undefined):
                value._fail_with_undefined_error()
            budget.check_text(value)
            budget.emit(len(value) if isinstance(value, str) else 0)
            return _plain(value)
        chunks: list[str] = []
        for chunk in _compiled(template).generate(**context):
            budget.emit(len(chunk))
            budget.tick()
            chunks.append(chunk)
        return "".join(chunks)
    except _limits.MoveOffLoop:
        raise
    except _limits.LimitExceeded as exc:
        raise TemplateError(f"{prefix}{exc}", details={"path": where, "limit": True}) from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{prefix}{exc.message}", details={"path": where}) from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"{prefix}template syntax error: {exc.message}", details={"path": where}
        ) from exc
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(
            f"{prefix}not allowed in a template: {exc}", details={"path": where}
        ) from exc
    except TemplateError:
        raise
    except MemoryError as exc:
        raise TemplateError(
            f"{prefix}template exceeded the render memory limit (out of memory)",
            details={"path": where, "limit": True},
        ) from exc
    except RecursionError as exc:
        raise TemplateError(
            f"{prefix}template exceeded the recursion depth limit (macros calling themselves)",
            details={"path": where, "limit": True},
        ) from exc
    except Exception as exc:  # any error inside an expression is the template's fault
        raise TemplateError(
            f"{prefix}template failed: {type(exc).__name__}: {exc}", details={"path": where}
        ) from exc


def _plain(value: Any) -> Any:
    if isinstance(value, Scope):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def render_value(
    value: Any,
    context: Mapping[str, Any],
    *,
    where: str = "params",
    limits: RenderLimits | None = None,
) -> Any:
    """Render every template string inside a JSON value, all within one budget (``limits``)."""
    with _rendering(limits):
        return _render_value(value, context, where)


def _render_value(value: Any, context: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        return _render_string(value, context, where)
    if isinstance(value, Mapping):
        return {k: _render_value(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


@contextlib.contextmanager
def _rendering(
    limits: RenderLimits | None, slice_seconds: float | None = None, *, yields: bool = False
) -> Iterator[None]:
    """Open a budget for this render, unless one is open already (a string inside a value)."""
    if _limits.current() is not None:
        yield
        return
    budget = _limits.Budget(limits or DEFAULT_LIMITS, slice_seconds, yields=yields)
    token = _limits.begin(budget)
    try:
        yield
    finally:
        _limits.end(token)


async def render_value_async(
    value: Any,
    context: Mapping[str, Any],
    *,
    where: str = "params",
    limits: RenderLimits | None = None,
) -> Any:
    """``render_value`` without holding the event loop.

    The render starts on the loop (most finish in microseconds); one still running after
    ``limits.loop_slice_seconds`` is started again in a render thread, where it has its whole
    time limit. Renders have no side effects (the sandbox forbids mutating the context), so
    running one again gives the same result.
    """
    return await _off_loop(_render_value, value, context, where, limits)


async def render_string_async(
    template: str,
    context: Mapping[str, Any],
    *,
    where: str = "",
    limits: RenderLimits | None = None,
) -> Any:
    """``render_string`` without holding the event loop (see ``render_value_async``)."""
    if not is_template(template):
        return template
    return await _off_loop(_render_string, template, context, where, limits)


async def _off_loop(
    render: Any, value: Any, context: Mapping[str, Any], where: str, limits: RenderLimits | None
) -> Any:
    chosen = limits or DEFAULT_LIMITS
    try:
        with _rendering(chosen, chosen.loop_slice_seconds):
            return render(value, context, where)
    except _limits.MoveOffLoop:
        pass

    def in_thread() -> Any:
        with _rendering(chosen, yields=True):
            return render(value, context, where)

    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_render_threads(), contextvars.Context().run, in_thread)


@functools.cache
def _render_threads() -> concurrent.futures.ThreadPoolExecutor:
    # Two threads: slow renders queue here instead of taking every thread of the default pool.
    return concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="bud-render")


def check_syntax(value: Any, *, where: str = "params") -> None:
    """Raise TemplateError for any template string that does not parse."""
    for path, text in iter_templates(value, where):
        try:
            _ENV.parse(text)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"{path}: template syntax error: {exc.message}", details={"path": path}
            ) from exc


def iter_templates(value: Any, where: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        if is_template(value):
            yield where, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from iter_templates(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_templates(v, f"{where}[{i}]")


def event_references(text: str) -> list[tuple[str, bool]]:
    """The ``event.<field>`` references of a template and whether each has a default.

    ``event.data.x`` is reported as ``x``; envelope fields are not reported.
    """
    try:
        ast = _ENV.parse(text)
    except jinja2.TemplateSyntaxError:
        return []
    found: list[tuple[str, bool]] = []
    defaulted: set[int] = set()
    for f in ast.find_all(nodes.Filter):
        if f.name in ("default", "d") and f.node is not None:
            for sub in [f.node, *f.node.find_all((nodes.Getattr, nodes.Getitem))]:
                defaulted.add(id(sub))
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        chain = _attr_chain(node)
        if not chain or chain[0] != "event" or len(chain) < 2:
            continue
        field = chain[2] if chain[1] == "data" and len(chain) > 2 else chain[1]
        if chain[1] == "data" and len(chain) == 2:
            continue
        found.append((field, id(node) in defaulted))
    # keep the outermost reference per field (inner Getattr nodes repeat the prefix)
    result: dict[str, bool] = {}
    for field, has_default in found:
        result[field] = result.get(field, False) or has_default
    return list(result.items())


def _attr_chain(node: nodes.Node) -> list[str]:
    parts: list[str] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            parts.append(node.arg.value)
        else:
            return []
        node = node.node
    if isinstance(node, nodes.Name):
        parts.append(node.name)
        return list(reversed(parts))
    return []


def mask_secrets(value: Any, secrets: Iterable[str]) -> Any:
    """Replace every form of a secret value with a mask, recursively (``bud.redact.forms``:
    raw, URL-encoded, base64, JSON-escaped; upper-cased, lower-cased and reversed too)."""
    values = tuple(sorted({s for s in secrets if isinstance(s, str)}))
    if not values:
        return value
    return masker(values).value(value)
