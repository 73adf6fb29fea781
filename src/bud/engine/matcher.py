"""The matcher: enabled triggers compiled into one index, with a decision per candidate.

Memory matters here (DESIGN.md section 6: under 300 MB with 100,000 triggers), so the matcher
keeps per trigger only a small :class:`TriggerView` and the index entry. A view keeps its
filter as compact JSON text and compiles it when someone reads ``view.filter`` (explaining a
decision, replaying an event): the hot path never does, the index has its own compiled form.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import FrozenInstanceError, dataclass
from functools import lru_cache
from typing import Any

from bud.filters import Filter, TriggerIndex, compile_filter, summarize

_EMPTY_FILTER = Filter()


def _dump_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


@lru_cache(maxsize=256)
def _filter_from_json(text: str) -> Filter:
    """A compiled filter for a view's stored JSON; recently read ones are kept (immutable)."""
    return Filter(json.loads(text))


class TriggerView:
    """One trigger as the matcher sees it. Immutable; ``filter`` is compiled when read."""

    __slots__ = (
        "_filter",
        "enabled",
        "event_type",
        "flow",
        "id",
        "name",
        "pipeline_id",
        "updated_at",
    )

    id: str
    pipeline_id: str
    event_type: str
    enabled: bool
    name: str | None
    flow: dict[str, Any] | None
    updated_at: float
    # The compiled filter, or its source as compact JSON text (None for the empty filter).
    _filter: Filter | str | None

    def __init__(
        self,
        id: str,
        pipeline_id: str,
        event_type: str,
        enabled: bool,
        filter: Filter | Mapping[str, Any] | str | None,
        name: str | None = None,
        flow: dict[str, Any] | None = None,
        updated_at: float = 0.0,
    ) -> None:
        if isinstance(filter, Mapping):
            filter = _compact(filter)
        setattr_ = object.__setattr__
        setattr_(self, "id", id)
        setattr_(self, "pipeline_id", pipeline_id)
        setattr_(self, "event_type", event_type)
        setattr_(self, "enabled", enabled)
        setattr_(self, "_filter", filter)
        setattr_(self, "name", name)
        setattr_(self, "flow", flow)
        setattr_(self, "updated_at", updated_at)

    @property
    def filter(self) -> Filter:
        found = self._filter
        if found is None:
            return _EMPTY_FILTER
        if isinstance(found, Filter):
            return found
        return _filter_from_json(found)

    def _fields(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.pipeline_id,
            self.event_type,
            self.enabled,
            self.filter,
            self.name,
            self.flow,
            self.updated_at,
        )

    def with_enabled(self, enabled: bool) -> TriggerView:
        """A copy with ``enabled`` changed (the filter is not recompiled)."""
        return TriggerView(
            self.id,
            self.pipeline_id,
            self.event_type,
            enabled,
            self._filter,
            self.name,
            self.flow,
            self.updated_at,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, TriggerView)
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"TriggerView(id={self.id!r}, pipeline_id={self.pipeline_id!r}, "
            f"event_type={self.event_type!r}, enabled={self.enabled!r}, filter={self.filter!r}, "
            f"name={self.name!r}, flow={self.flow!r}, updated_at={self.updated_at!r})"
        )


def _compact(source: Mapping[str, Any]) -> str | None:
    """A validated filter's source as compact JSON text; it reads back equal."""
    if not source:
        return None
    return json.dumps(source, ensure_ascii=False, separators=(",", ":"), default=_dump_json)


@dataclass(frozen=True)
class Decision:
    trigger: TriggerView
    outcome: str  # fired | filtered | disabled | suppressed | would_fire
    reason: str
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Routed:
    """Where one event goes (the ingest hot path): fired triggers, disabled ones, and the ids
    of filtered-out ones (explained when read), each non-fired list at most the explain limit."""

    fired: list[TriggerView]
    disabled: list[TriggerView]
    filtered: list[str]
    unexplained: int  # non-fired candidates beyond the explain limit


class Matcher:
    """In-memory view of every trigger, kept in step with the store by the trigger service."""

    def __init__(self) -> None:
        self._index = TriggerIndex()
        self._triggers: dict[str, TriggerView] = {}
        self._by_type: dict[str, dict[str, None]] = {}
        # One string object per event type, shared by every view of that type.
        self._type_names: dict[str, str] = {}
        # The first candidates of each event type (id, view), what ``route`` explains: built
        # on first use, dropped when a trigger of that type changes.
        self._heads: dict[str, list[TriggerView]] = {}
        # Schedule triggers: fired by their clock (bud.engine.schedules), never by a match.
        self.schedules: dict[str, dict[str, Any]] = {}

    def load(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.put(row)

    def put(self, row: Mapping[str, Any]) -> None:
        self.remove(str(row["id"]))
        compiled = compile_filter(row.get("filter") or {})  # FilterError before any change
        event_type = row["event_type"]
        event_type = self._type_names.setdefault(event_type, event_type)
        view = TriggerView(
            id=row["id"],
            pipeline_id=row["pipeline_id"],
            event_type=event_type,
            enabled=bool(row["enabled"]),
            filter=_compact(compiled.source),
            name=row.get("name"),
            flow=row.get("flow") or None,
            updated_at=float(row.get("updated_at") or 0.0),
        )
        self._triggers[view.id] = view
        if row.get("schedule"):
            self.schedules[view.id] = dict(row["schedule"])
            return
        self._by_type.setdefault(event_type, {})[view.id] = None
        self._heads.pop(event_type, None)
        if view.enabled:
            self._index.put(view.id, event_type, compiled)

    def remove(self, trigger_id: str) -> None:
        old = self._triggers.pop(trigger_id, None)
        self.schedules.pop(trigger_id, None)
        if old is not None:
            self._by_type.get(old.event_type, {}).pop(trigger_id, None)
            self._heads.pop(old.event_type, None)
            self._index.remove(trigger_id)

    def disable(self, trigger_id: str) -> None:
        view = self._triggers.get(trigger_id)
        if view is not None and view.enabled:
            self._triggers[trigger_id] = view.with_enabled(False)
            self._heads.pop(view.event_type, None)
            self._index.remove(trigger_id)

    def get(self, trigger_id: str) -> TriggerView | None:
        return self._triggers.get(trigger_id)

    def candidates(self, event_type: str) -> list[str]:
        """Every trigger of an event type, enabled or not."""
        return list(self._by_type.get(event_type, {}))

    def __len__(self) -> int:
        return len(self._triggers)

    def route(self, event: Mapping[str, Any], *, explain_limit: int = 100) -> Routed:
        """``decide`` for the ingest path: the same outcomes, without a Decision per trigger.

        Costs the index lookup plus a walk of at most ``explain_limit`` + fired cached views,
        however many triggers the event type has.
        """
        fired_ids = self._index.match(event)
        event_type = str(event.get("event_type"))
        candidates = self._by_type.get(event_type, {})
        fired = [self._triggers[tid] for tid in fired_ids]
        disabled: list[TriggerView] = []
        filtered: list[str] = []
        if explain_limit <= 0 or len(candidates) == len(fired):
            return Routed(fired, disabled, filtered, len(candidates) - len(fired))
        head = self._heads.get(event_type)
        if head is None or len(head) < min(len(candidates), explain_limit + len(fired)):
            head = [self._triggers[tid] for tid in itertools.islice(candidates, explain_limit + 8)]
            self._heads[event_type] = head
        explained = 0
        taken = set(fired_ids) if fired_ids else ()
        # The cached head first; past it (when many of the first candidates fired) the rest.
        rest = (self._triggers[t] for t in itertools.islice(candidates, len(head), None))
        for view in itertools.chain(head, rest):
            if explained >= explain_limit:
                break
            if view.id in taken:
                continue
            explained += 1
            if view.enabled:
                filtered.append(view.id)
            else:
                disabled.append(view)
        return Routed(fired, disabled, filtered, len(candidates) - len(fired) - explained)

    def decide(
        self, event: Mapping[str, Any], *, explain_limit: int = 100
    ) -> tuple[list[Decision], int]:
        """Decisions for the event's candidate triggers, and how many non-fired were not explained.

        Every trigger of the event's type is a candidate. Fired triggers always get a decision;
        filtered-out and disabled ones are recorded up to ``explain_limit``. A filtered-out
        decision is explained when it is read (``explain_decision``): explaining costs a full
        evaluation of the filter, which the index exists to avoid on the hot path.
        """
        fired_ids = self._index.match(event)
        decisions = [Decision(self._triggers[tid], "fired", "filter matched") for tid in fired_ids]
        candidates = self._by_type.get(str(event.get("event_type")), {})
        fired = set(fired_ids)
        explained = 0
        if explain_limit > 0 and len(candidates) > len(fired):
            # Visits at most explain_limit + len(fired) triggers, whatever their number.
            for trigger_id in candidates:
                if explained >= explain_limit:
                    break
                if trigger_id in fired:
                    continue
                explained += 1
                view = self._triggers[trigger_id]
                if not view.enabled:
                    decisions.append(Decision(view, "disabled", "trigger is disabled"))
                    continue
                # Why it did not match is worked out when someone reads the decision.
                decisions.append(Decision(view, "filtered", ""))
        skipped = len(candidates) - len(fired) - explained
        return decisions, skipped


def explain_decision(
    view: TriggerView | None, event: Mapping[str, Any], *, changed_since: bool
) -> tuple[str, dict[str, Any] | None]:
    """The reason and verdict of a stored ``filtered`` decision, worked out now."""
    if view is None:
        return "filter did not match (the trigger has since been deleted)", None
    verdict = view.filter.explain(event)
    reason = summarize(verdict)
    if changed_since:
        reason += " (explained with the trigger's current filter, changed after this event)"
    return reason, {"verdict": verdict}
