"""The matcher: enabled triggers compiled into one index, with a decision per candidate."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bud.filters import Filter, TriggerIndex, compile_filter, summarize


@dataclass(frozen=True)
class TriggerView:
    id: str
    pipeline_id: str
    event_type: str
    enabled: bool
    filter: Filter
    name: str | None = None
    flow: dict[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    trigger: TriggerView
    outcome: str  # fired | filtered | disabled | suppressed | would_fire
    reason: str
    detail: dict[str, Any] | None = None


class Matcher:
    """In-memory view of every trigger, kept in step with the store by the trigger service."""

    def __init__(self) -> None:
        self._index = TriggerIndex()
        self._triggers: dict[str, TriggerView] = {}
        self._by_type: dict[str, dict[str, None]] = {}

    def load(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.put(row)

    def put(self, row: Mapping[str, Any]) -> None:
        self.remove(str(row["id"]))
        view = TriggerView(
            id=row["id"],
            pipeline_id=row["pipeline_id"],
            event_type=row["event_type"],
            enabled=bool(row["enabled"]),
            filter=compile_filter(row.get("filter") or {}),
            name=row.get("name"),
            flow=row.get("flow") or None,
        )
        self._triggers[view.id] = view
        self._by_type.setdefault(view.event_type, {})[view.id] = None
        if view.enabled:
            self._index.put(view.id, view.event_type, view.filter)

    def remove(self, trigger_id: str) -> None:
        old = self._triggers.pop(trigger_id, None)
        if old is not None:
            self._by_type.get(old.event_type, {}).pop(trigger_id, None)
            self._index.remove(trigger_id)

    def disable(self, trigger_id: str) -> None:
        view = self._triggers.get(trigger_id)
        if view is not None and view.enabled:
            self._triggers[trigger_id] = replace(view, enabled=False)
            self._index.remove(trigger_id)

    def get(self, trigger_id: str) -> TriggerView | None:
        return self._triggers.get(trigger_id)

    def candidates(self, event_type: str) -> list[str]:
        """Every trigger of an event type, enabled or not."""
        return list(self._by_type.get(event_type, {}))

    def __len__(self) -> int:
        return len(self._triggers)

    def decide(
        self, event: Mapping[str, Any], *, explain_limit: int = 100
    ) -> tuple[list[Decision], int]:
        """Decisions for the event's candidate triggers, and how many non-fired were not explained.

        Every trigger of the event's type is a candidate. Fired triggers always get a decision;
        filtered-out and disabled ones are explained up to ``explain_limit`` (explaining costs
        a full evaluation, which the index exists to avoid).
        """
        fired = set(self._index.match(event))
        decisions: list[Decision] = []
        skipped = 0
        explained = 0
        for trigger_id in self._by_type.get(str(event.get("event_type")), {}):
            view = self._triggers[trigger_id]
            if trigger_id in fired:
                decisions.append(Decision(view, "fired", "filter matched"))
                continue
            if explained >= explain_limit:
                skipped += 1
                continue
            explained += 1
            if not view.enabled:
                decisions.append(Decision(view, "disabled", "trigger is disabled"))
                continue
            verdict = view.filter.explain(event)
            decisions.append(Decision(view, "filtered", summarize(verdict), {"verdict": verdict}))
        return decisions, skipped
