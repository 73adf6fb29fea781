"""SIGKILL in the middle of executions and publishing: nothing accepted is lost.

An attempt cut short by the kill counts against ``max_attempts`` (docs/architecture.md), so
the steps here allow three; the interrupted attempt stays in the step's history.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from bud import BudClient
from tests.support import BudProcess

pytestmark = pytest.mark.e2e

RETRY = {"max_attempts": 3, "backoff_seconds": 0.1}
DEFINITION = {
    "steps": [
        {"id": "first", "action": "delay", "params": {"seconds": 0.3}, "retry": RETRY},
        {
            "id": "left",
            "action": "log",
            "params": {"message": "left {{ event.model_id }}"},
            "depends_on": ["first"],
            "retry": RETRY,
        },
        {
            "id": "right",
            "action": "delay",
            "params": {"seconds": 0.3},
            "depends_on": ["first"],
            "retry": RETRY,
        },
        {
            "id": "last",
            "action": "set_output",
            "params": {"model": "{{ event.model_id }}"},
            "depends_on": ["left", "right"],
            "retry": RETRY,
        },
    ]
}


class Publisher(threading.Thread):
    """Publishes events until told to stop; remembers the ids the server acknowledged."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.accepted: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as http:
            i = 0
            while not self.stop.is_set() and i < 5000:
                event_id = f"evt_crash_{i}"
                i += 1
                try:
                    r = http.post(
                        "/v1/events",
                        json={
                            "event_type": "model.added",
                            "event_id": event_id,
                            "data": {"model_id": f"m{i}", "model_name": "x"},
                        },
                    )
                except httpx.HTTPError:
                    continue  # not acknowledged: the publisher may not count it as accepted
                if r.status_code == 202:
                    self.accepted.append(event_id)
                time.sleep(0.01)


def test_sigkill_loses_no_event_and_every_execution_finishes(data_dir: Path) -> None:
    server = BudProcess(data_dir).start()
    client = BudClient(base_url=server.url)
    pipeline = client.pipelines.create(name="crash", definition=DEFINITION)
    client.event_triggers.create(pipeline_id=pipeline.id, event_type="model.added")

    publisher = Publisher(server.url)
    publisher.start()
    time.sleep(1.5)
    in_flight = [e for e in client.executions.list() if e.status in ("queued", "running")]
    server.kill()
    time.sleep(0.3)
    publisher.stop.set()
    publisher.join(10)
    assert in_flight, "the kill should land while executions are running"
    accepted = list(publisher.accepted)
    assert len(accepted) > 20

    restarted = BudProcess(data_dir).start()
    try:
        client = BudClient(base_url=restarted.url)
        stored = {e.event_id for e in client.events.list(event_type="model.added")}
        missing = [e for e in accepted if e not in stored]
        assert not missing, f"{len(missing)} accepted events were lost: {missing[:5]}"
        deadline = time.monotonic() + 60
        while True:
            executions = list(client.executions.list(pipeline_id=pipeline.id))
            open_ = [e for e in executions if e.status not in ("succeeded", "failed", "cancelled")]
            if not open_ or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert not open_, f"{len(open_)} executions never finished after the restart"
        assert all(e.status == "succeeded" for e in executions), {e.status for e in executions}
        # exactly one execution per stored event, and each event's accepted execution is there
        assert len(executions) == len(stored)
        assert {e.event_id for e in executions} == stored
        resumed = client.executions.get(in_flight[0].id)
        assert resumed.status == "succeeded"
        # Some step was running at the kill: its cut-short attempt is in the history.
        interrupted = [
            a
            for e in in_flight
            for a in client.executions.attempts(e.id)
            if a.status == "failed" and "interrupted" in (a.error or "")
        ]
        assert interrupted, "the attempts cut short by the kill should stay in the history"
        assert resumed.steps[-1].outputs == {
            "model": client.events.get(resumed.event_id).data["model_id"]
        }
    finally:
        restarted.stop()
