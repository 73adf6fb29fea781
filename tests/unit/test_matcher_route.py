"""``Matcher.route`` (the ingest path) says what ``Matcher.decide`` says, after any changes.

``route`` keeps the first candidates of each event type cached; the property below changes
triggers between events so a stale cache would show.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bud.engine.matcher import Matcher

ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "put_disabled", "remove", "disable", "event"]),
        st.integers(0, 9),  # trigger number, or the model number an event carries
        st.sampled_from(["a.b", "c.d"]),
    ),
    max_size=80,
)


def _row(n: int, event_type: str, enabled: bool) -> dict[str, object]:
    return {
        "id": f"t{n}",
        "pipeline_id": "p",
        "event_type": event_type,
        "enabled": enabled,
        "filter": {"model": n % 7} if n % 3 else {},  # every third trigger matches anything
    }


@settings(max_examples=200, deadline=None)
@given(ops, st.integers(0, 6))
def test_route_agrees_with_decide(steps: list[tuple[str, int, str]], limit: int) -> None:
    matcher = Matcher()
    for op, n, event_type in steps:
        if op in ("put", "put_disabled"):
            matcher.put(_row(n, event_type, enabled=op == "put"))
        elif op == "remove":
            matcher.remove(f"t{n}")
        elif op == "disable":
            matcher.disable(f"t{n}")
        else:
            event = {"event_type": event_type, "data": {"model": n % 7}}
            decisions, skipped = matcher.decide(event, explain_limit=limit)
            routed = matcher.route(event, explain_limit=limit)
            assert [v.id for v in routed.fired] == [
                d.trigger.id for d in decisions if d.outcome == "fired"
            ]
            assert [v.id for v in routed.disabled] == [
                d.trigger.id for d in decisions if d.outcome == "disabled"
            ]
            assert routed.filtered == [d.trigger.id for d in decisions if d.outcome == "filtered"]
            assert routed.unexplained == skipped


def test_a_trigger_disabled_after_routing_is_routed_as_disabled() -> None:
    matcher = Matcher()
    for n in range(3):
        matcher.put(_row(n, "a.b", enabled=True))
    event = {"event_type": "a.b", "data": {"model": 5}}
    assert matcher.route(event, explain_limit=5).filtered == ["t1", "t2"]  # t0 matches all
    matcher.disable("t1")
    routed = matcher.route(event, explain_limit=5)
    assert [v.id for v in routed.fired] == ["t0"]
    assert [v.id for v in routed.disabled] == ["t1"] and routed.filtered == ["t2"]
