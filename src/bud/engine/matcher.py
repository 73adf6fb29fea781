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
    updated_at: float = 0.0


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
            updated_at=float(row.get("updated_at") or 0.0),
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
