"""Long steps cannot starve other pipelines (docs/architecture.md, "Slots and waits").

A long ``delay`` waits on a durable timer and gives its worker slot back; and one pipeline
may hold at most its fair share of a worker's slots, the rest staying free for the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bud import BudClient
from bud.settings import Settings

LOG = {"steps": [{"id": "say", "action": "log", "params": {"message": "quick"}}]}


@pytest.fixture
def small_worker(tmp_path: Path, store_url: str) -> Iterator[BudClient]:
    """The app with a worker of 4 slots."""
    from starlette.testclient import TestClient

    from bud.server.app import create_app

    settings = Settings(
        data_dir=tmp_path / "data", poll_seconds=0.2, workers=4, database_url=store_url
    )
    app = create_app(settings, check_responses=True)
    with (
        TestClient(app, base_url="http://localhost") as http,
        BudClient(base_url="http://localhost", http_client=http) as client,
    ):
        yield client


def _runs(client: BudClient, definition: dict[str, Any], count: int) -> list[str]:
    pipeline = client.pipelines.create(name="many", definition=definition)
    return [client.pipelines.run(pipeline.id).id for _ in range(count)]


def _until(check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_long_delays_wait_without_holding_a_slot(small_worker: BudClient) -> None:
    client = small_worker
    seconds = 5.5  # past durable_delay_seconds (5 s by default)
    slow = _runs(
        client, {"steps": [{"id": "nap", "action": "delay", "params": {"seconds": seconds}}]}, 12
    )

    def waiting() -> list[Any]:
        return [s for e in slow for s in client.executions.get(e).steps if s.status == "waiting"]

    _until(lambda: len(waiting()) == 12)  # all twelve parked, with 4 slots
    parked = waiting()[0]
    assert parked.waiting_until is not None and parked.outputs == {}
    quick = _runs(client, LOG, 1)[0]
    done = client.executions.wait(quick, timeout=10)
    assert done.status == "succeeded"
    finished = [client.executions.wait(e, timeout=30) for e in slow]
    assert {f.status for f in finished} == {"succeeded"}
    assert done.finished_at < min(f.finished_at for f in finished)  # not queued behind them
    assert {f.steps[0].attempts for f in finished} == {1}  # a wait is not an attempt
    [attempt] = client.executions.attempts(slow[0])
    assert attempt.status == "succeeded" and attempt.outputs == {"seconds": seconds}


def test_one_pipeline_cannot_take_every_slot(small_worker: BudClient) -> None:
    client = small_worker
    slow = _runs(
        client, {"steps": [{"id": "nap", "action": "delay", "params": {"seconds": 2.0}}]}, 8
    )

    def running() -> int:
        return sum(1 for e in slow for s in client.executions.get(e).steps if s.status == "running")

    _until(lambda: running() == 3)  # its fair share of 4 slots
    time.sleep(0.3)
    assert running() == 3  # and no more, though five more of its steps are ready
    quick = _runs(client, LOG, 1)[0]
    done = client.executions.wait(quick, timeout=10)
    finished = [client.executions.wait(e, timeout=30) for e in slow]
    assert done.status == "succeeded" and {f.status for f in finished} == {"succeeded"}
    assert done.finished_at < min(f.finished_at for f in finished)  # it took the free slot
