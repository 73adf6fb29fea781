"""Distributed mode on a real PostgreSQL: an API node that runs no steps, and workers.

A worker killed with SIGKILL in the middle of steps loses its leases; the others finish its
steps (the cut-short attempts stay in the history). Every event is stored once, every
execution ends, none fires twice. ``/healthz`` (and ``bud status``) list the processes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bud import BudClient
from tests.support import BudProcess, WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

RETRY = {"max_attempts": 3, "backoff_seconds": 0.1}
PIPELINE = {
    "steps": [
        {"id": "wait", "action": "delay", "params": {"seconds": 0.2}, "retry": RETRY},
        {
            "id": "say",
            "action": "log",
            "params": {"message": "{{ event.model_id }}"},
            "depends_on": ["wait"],
            "retry": RETRY,
        },
        {
            "id": "keep",
            "action": "set_output",
            "params": {"model": "{{ event.model_id }}"},
            "depends_on": ["say"],
            "retry": RETRY,
        },
    ]
}
FAST = {"BUD_LEASE_SECONDS": "2", "BUD_HEARTBEAT_SECONDS": "0.5"}


def test_api_node_and_workers_share_the_work(tmp_path: Path, postgres_database: str) -> None:
    api = BudProcess(
        tmp_path / "api", env=FAST, args=["--database-url", postgres_database, "--no-workers"]
    ).start()
    workers = [
        WorkerProcess(postgres_database, tmp_path / f"w{i}.log", env=FAST).start() for i in range(2)
    ]
    try:
        with BudClient(base_url=api.url) as client:
            pipeline = client.pipelines.create(name="spread", definition=PIPELINE)
            client.event_triggers.create(pipeline_id=pipeline.id, event_type="model.added")
            ids: list[str] = []
            for b in range(4):
                batch = [
                    {
                        "event_type": "model.added",
                        "data": {"model_id": f"m{b}-{i}", "model_name": "x"},
                    }
                    for i in range(50)
                ]
                ids += [e.event_id for e in client.events.publish_many(batch)]
            time.sleep(1.0)  # steps are running on both workers now
            workers[0].kill()
            workers.append(WorkerProcess(postgres_database, tmp_path / "w2.log", env=FAST).start())
            deadline = time.monotonic() + 120
            while True:
                executions = list(client.executions.list(pipeline_id=pipeline.id))
                open_ = [e for e in executions if e.status in ("queued", "running")]
                if len(executions) == len(ids) and not open_:
                    break
                assert time.monotonic() < deadline, f"{len(open_)} executions still open"
                time.sleep(0.5)
            assert {e.status for e in executions} == {"succeeded"}
            assert sorted(e.event_id for e in executions) == sorted(ids)  # once per event
            assert len({e.event_id for e in client.events.list(event_type="model.added")}) == 200
            interrupted = [
                a
                for e in executions
                for a in client.executions.attempts(e.id)
                if "interrupted" in (a.error or "")
            ]
            assert interrupted, "the kill should have cut some attempts short"

            health = client.health()
            kinds = sorted((p["kind"], p["info"]["runs_steps"]) for p in health["processes"])
            assert ("serve", False) in kinds and kinds.count(("worker", True)) == 3
            states = sorted(p["state"] for p in health["processes"] if p["kind"] == "worker")
            assert states == ["alive", "alive", "lost"]  # the killed one stops beating
    finally:
        codes = [w.stop() for w in workers[1:]]
        api.stop()
    assert codes == [0, 0]  # SIGTERM drains and exits cleanly
