"""Two ``bud serve`` processes on one PostgreSQL database behave as one.

A trigger created, changed, disabled or deleted through one process is honoured by the other
within the catalogue bound (docs/architecture.md: at once on a NOTIFY, at the latest after
``catalogue_poll_seconds``), and flow-control state (rate limit, dedup window) is shared:
events split between the two are treated as if sent to one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bud import BudClient
from tests.support import BudProcess

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

LOG = {"steps": [{"id": "say", "action": "log", "params": {"message": "{{ event.model_id }}"}}]}
OLLAMA = {"model_id": "m2", "model_name": "y", "model_source": "ollama"}
BOUND = 0.5  # the default catalogue_poll_seconds
PATIENCE = 6 * BOUND  # a shared 2-core machine: generous, still far below "never"


@pytest.fixture
def pair(tmp_path: Path, postgres_database: str) -> Iterator[tuple[BudClient, BudClient]]:
    args = ["--database-url", postgres_database]
    a = BudProcess(tmp_path / "a", args=args).start()
    try:
        b = BudProcess(tmp_path / "b", args=args).start()
        try:
            with BudClient(base_url=a.url) as ca, BudClient(base_url=b.url) as cb:
                yield ca, cb
        finally:
            b.stop()
    finally:
        a.stop()


def _outcome(client: BudClient, event_id: str, trigger_id: str) -> str | None:
    for d in client.events.get(event_id).decisions:
        if d.trigger_id == trigger_id:
            return str(d.outcome)
    return None


def eventually(
    client: BudClient, trigger_id: str, data: dict[str, Any], expect: str | None
) -> float:
    """Publish to ``client`` until the trigger's decision is ``expect``; return the delay."""
    start = time.monotonic()
    while True:
        event = client.events.publish("model.added", {"model_id": "m", "model_name": "x", **data})
        got = _outcome(client, event.event_id, trigger_id)
        if got == expect:
            return time.monotonic() - start
        assert time.monotonic() - start < PATIENCE, f"still {got!r}, expected {expect!r}"
        time.sleep(0.05)


def test_trigger_changes_through_one_process_hold_on_the_other(
    pair: tuple[BudClient, BudClient],
) -> None:
    a, b = pair
    pipeline = a.pipelines.create(name="shared", definition=LOG)
    trigger = a.event_triggers.create(
        pipeline_id=pipeline.id, event_type="model.added", filter={"model_source": "hugging_face"}
    )
    hf = {"model_id": "m1", "model_name": "x", "model_source": "hugging_face"}
    delays = [eventually(b, trigger.id, hf, "fired")]
    a.event_triggers.update(trigger.id, filter=OLLAMA)
    delays.append(eventually(b, trigger.id, hf, "filtered"))
    assert _outcome(b, b.events.publish("model.added", {**OLLAMA}).event_id, trigger.id) == "fired"
    a.event_triggers.disable(trigger.id)
    delays.append(eventually(b, trigger.id, OLLAMA, "disabled"))
    a.event_triggers.enable(trigger.id)
    delays.append(eventually(b, trigger.id, OLLAMA, "fired"))
    a.event_triggers.delete(trigger.id)
    delays.append(eventually(b, trigger.id, OLLAMA, None))
    # And the other way round: a trigger made on b fires for events published to a.
    other = b.event_triggers.create(pipeline_id=pipeline.id, event_type="model.added")
    delays.append(eventually(a, other.id, hf, "fired"))
    print(f"catalogue delays seen across processes (s): {[round(d, 3) for d in delays]}")
    stats = [c.event_triggers.stats(other.id) for c in (a, b)]
    assert stats[0] == stats[1]  # statistics come from the store, whichever process answers


def _publish_split(
    clients: tuple[BudClient, BudClient], make: Callable[[int], dict[str, Any]], count: int
) -> list[str]:
    """Publish ``count`` events, alternating between the processes, from two threads at once."""
    ids: list[str] = [""] * count

    def run(offset: int) -> None:
        client = clients[offset]
        for i in range(offset, count, 2):
            ids[i] = client.events.publish("model.added", make(i)).event_id

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return ids


def test_rate_limit_and_dedup_hold_across_processes(pair: tuple[BudClient, BudClient]) -> None:
    a, b = pair
    pipeline = a.pipelines.create(name="flow", definition=LOG)
    limited = a.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        filter={"kind": "limited"},
        flow={"rate_limit": {"max": 3, "per_seconds": 600}},
    )
    deduped = a.event_triggers.create(
        pipeline_id=pipeline.id,
        event_type="model.added",
        filter={"kind": "deduped"},
        flow={"dedup": {"key": "{{ event.model_id }}", "window_seconds": 600}},
    )
    eventually(b, limited.id, {"kind": "warm-up"}, "filtered")  # b has both triggers now
    ids = _publish_split(
        (a, b), lambda i: {"kind": "limited", "model_id": f"m{i}", "model_name": "x"}, 12
    )
    outcomes = [_outcome(a, event_id, limited.id) for event_id in ids]
    assert outcomes.count("fired") == 3, outcomes
    assert outcomes.count("suppressed") == 9, outcomes
    ids = _publish_split(
        (a, b), lambda i: {"kind": "deduped", "model_id": "same", "model_name": "x"}, 10
    )
    outcomes = [_outcome(b, event_id, deduped.id) for event_id in ids]
    assert outcomes.count("fired") == 1, outcomes
    assert outcomes.count("suppressed") == 9, outcomes
    assert len(list(a.executions.list(trigger_id=deduped.id))) == 1
