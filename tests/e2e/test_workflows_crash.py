"""SIGKILL while a fan-out's items and a deployment wait for events: a restart resumes them.

The waits live in the store (steps parked as ``waiting``, rows in ``waits``), so a new
``bud serve`` on the same data directory matches the events published after it started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bud import BudClient
from tests.support import BudProcess

pytestmark = pytest.mark.e2e

FAN_OUT = {
    "steps": [
        {
            "id": "each",
            "action": "wait_for_event",
            "for_each": "{{ event.refs }}",
            "params": {
                "event_type": "deployment.created",
                "filter": {"deployment_id": "{{ item }}"},
                "timeout_seconds": 600,
            },
        },
        {
            "id": "after",
            "action": "log",
            "depends_on": ["each"],
            "params": {"message": "{{ steps.each.outputs.count }} ready"},
        },
    ]
}


def _until(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def _step(client: BudClient, execution_id: str, step_id: str) -> Any:
    steps = client.executions.get(execution_id).steps or []
    return next(s for s in steps if s.step_id == step_id)


def test_waits_survive_a_kill(tmp_path: Path) -> None:
    server = BudProcess(tmp_path / "data", env={"BUD_PLATFORM_DEPLOYMENTS_PENDING": "true"})
    server.start()
    try:
        with BudClient(base_url=server.url) as client:
            fan = client.pipelines.create(name="fan", definition=FAN_OUT)
            fanned = client.pipelines.run(
                fan.id,
                event={
                    "event_type": "model.added",
                    "data": {"model_id": "m", "refs": ["d1", "d2", "d3"]},
                },
            ).id
            client.clusters.create("Prod", id="cluster_prod", environment="production")
            model = client.models.add("llama", "hugging_face")
            deploy = client.pipelines.create(
                name="deploy",
                definition={
                    "steps": [
                        {
                            "id": "deploy",
                            "action": "deployment_create",
                            "params": {
                                "model_id": model.id,
                                "cluster_id": "cluster_prod",
                                "deployment_name": "llama-prod",
                                "wait": True,
                            },
                        }
                    ]
                },
            )
            deploying = client.pipelines.run(deploy.id).id
            _until(
                lambda: (
                    [i.status for i in _step(client, fanned, "each").items or []] == ["waiting"] * 3
                )
            )
            _until(lambda: _step(client, deploying, "deploy").status == "waiting")
        server.kill()
        server.start()
        with BudClient(base_url=server.url) as client:
            assert _step(client, deploying, "deploy").status == "waiting"
            for ref in ("d3", "d1", "d2"):
                client.events.publish("deployment.created", {"deployment_id": ref})
            done = client.executions.wait(fanned, timeout=30)
            assert done.status == "succeeded"
            each = _step(client, fanned, "each")
            refs = [o["event"]["data"]["deployment_id"] for o in each.outputs["items"]]
            assert refs == ["d1", "d2", "d3"]
            [deployment] = client.deployments.list(model_id=model.id).to_list()
            assert deployment.status == "pending"
            client.deployments.update(deployment.id, status="running")
            finished = client.executions.wait(deploying, timeout=30)
            assert finished.status == "succeeded"
            assert _step(client, deploying, "deploy").outputs == {
                "deployment_id": deployment.id,
                "deployment_name": "llama-prod",
                "status": "running",
            }
    finally:
        server.stop()
