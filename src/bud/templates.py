"""Sandboxed Jinja2 rendering of step params.

Event data is untrusted: every template renders in Jinja2's ``SandboxedEnvironment``, and a
missing value is an error that names its path (``event.region``) unless the template gives a
fallback (``{{ event.region | default("us-east-1") }}``). A param that is exactly one
expression keeps its type: ``"{{ event.replicas }}"`` renders to an int.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

from bud.errors import ValidationError

SINGLE_EXPR_RE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
MASK = "******"


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


class BudSandbox(SandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        # Scope keys win over dict methods: `event.items` is the field, not dict.items.
        if isinstance(obj, Scope):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Scope) and argument not in obj:
            return self.undefined(obj=obj, name=argument)
        return super().getitem(obj, argument)


def _make_env() -> BudSandbox:
    env = BudSandbox(undefined=MissingValue, autoescape=False, keep_trailing_newline=True)
    env.filters["json"] = env.filters["tojson"]
    return env


_ENV = _make_env()


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


@functools.lru_cache(maxsize=4096)
def _template(text: str) -> jinja2.Template:
    """A compiled template: compiling costs far more than rendering, and texts repeat."""
    return _ENV.from_string(text)


@functools.lru_cache(maxsize=4096)
def _expression(text: str) -> Any:
    return _ENV.compile_expression(text, undefined_to_none=False)


def render_string(template: str, context: Mapping[str, Any], *, where: str = "") -> Any:
    """Render one string; a lone ``{{ expr }}`` returns the expression's native value."""
    if not is_template(template):
        return template
    prefix = f"{where}: " if where else ""
    try:
        match = SINGLE_EXPR_RE.match(template)
        if match and "{{" not in match.group("expr") and "}}" not in match.group("expr"):
            expr = _expression(match.group("expr"))
            value = expr(**context)
            if isinstance(value, jinja2.Undefined):
                value._fail_with_undefined_error()
            return _plain(value)
        return _template(template).render(**context)
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


def render_value(value: Any, context: Mapping[str, Any], *, where: str = "params") -> Any:
    """Render every template string inside a JSON value."""
    if isinstance(value, str):
        return render_string(value, context, where=where)
    if isinstance(value, Mapping):
        return {k: render_value(v, context, where=f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context, where=f"{where}[{i}]") for i, v in enumerate(value)]
    return value


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
    """Replace every occurrence of a secret value with a mask, recursively."""
    values = sorted((s for s in secrets if s and len(s) >= 3), key=len, reverse=True)
    if not values:
        return value

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            for s in values:
                if s in v:
                    v = v.replace(s, MASK)
            return v
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(value)
