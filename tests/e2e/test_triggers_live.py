"""Schedules, lifecycle events and inbound webhooks in a real ``bud serve``, restarted once.

The engine tests move a manual clock (tests/integration/test_schedules.py); here the real
sweeper loop fires an interval schedule on the wall clock, a failure becomes an event that
starts an alert, a signed delivery over HTTP becomes an event, and a restart on the same data
directory neither repeats a tick nor loses the schedule.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bud import BudClient
from bud.signing import sign
from tests.support import BudProcess

pytestmark = pytest.mark.e2e

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "{{ event.event_type }}"}}]}
FAILS = {"steps": [{"id": "boom", "action": "fail", "params": {"message": "no GPUs"}}]}


def until(what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_schedules_lifecycle_events_and_hooks_in_a_real_server(data_dir: Path) -> None:
    with BudProcess(data_dir) as server:
        client = BudClient(base_url=server.url)
        ticking = client.pipelines.create(name="ticking", definition=LOG)
        schedule = client.event_triggers.create(ticking.id, schedule={"interval_seconds": 1})

        def two_ticks() -> list[Any]:
            found = list(client.executions.list(trigger_id=schedule.id))
            return found if len(found) >= 2 else []

        runs = until("two ticks", two_ticks)
        first = client.executions.wait(runs[-1].id, timeout=20)
        assert first.status == "succeeded"
        assert first.steps[0].outputs["message"] == "schedule.tick"

        failing = client.pipelines.create(name="failing", definition=FAILS)
        alert = client.pipelines.create(name="alert", definition=LOG)
        client.event_triggers.create(
            alert.id, "execution.failed", filter={"pipeline_id": failing.id}
        )
        run = client.pipelines.run(failing.id)
        assert client.executions.wait(run.id, timeout=20).status == "failed"
        [alerted] = until("the alert", lambda: list(client.executions.list(pipeline_id=alert.id)))
        done = client.executions.wait(alerted.id, timeout=20)
        assert done.steps[0].outputs["message"] == "execution.failed"

        hook = client.hooks.create("team.deploy_requested", name="ci")
        body = b'{"model": "llama"}'
        headers = {
            "content-type": "application/json",
            "x-hub-signature-256": sign(hook.secret or "", body),
            "x-github-delivery": "delivery-1",
        }
        url = f"{server.url}{hook.url}"
        assert httpx.post(url, content=body, headers=headers).status_code == 202
        assert httpx.post(url, content=body, headers=headers).status_code == 409
        bad = {**headers, "x-hub-signature-256": "sha256=" + "0" * 64, "x-github-delivery": "d2"}
        assert httpx.post(url, content=body, headers=bad).status_code == 401
        assert len(list(client.events.list(event_type="team.deploy_requested"))) == 1
        client.event_triggers.disable(schedule.id)
        ticks = {e.event_id for e in client.events.list(event_type="schedule.tick")}

    with BudProcess(data_dir) as server:  # the same store after a restart
        client = BudClient(base_url=server.url)
        assert {e.event_id for e in client.events.list(event_type="schedule.tick")} == ticks
        client.event_triggers.enable(schedule.id)
        until(
            "a tick after the restart",
            lambda: len(list(client.events.list(event_type="schedule.tick"))) > len(ticks),
        )
        events = list(client.events.list(event_type="schedule.tick"))
        times = [e.data["scheduled_time"] for e in events]
        assert len(times) == len(set(times))  # no tick fired twice
