"""A template bomb in a real app: the step fails naming the limit, the server keeps answering."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bud.client import BudClient
from bud.settings import Settings

NESTED_LOOPS = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Long enough that /healthz is asked while the bomb is still being rendered.
    return settings.model_copy(update=dict(template_cpu_seconds=3.0))


def _step(client: BudClient, execution_id: str) -> Any:
    return client.executions.get(execution_id).steps[0]


@pytest.mark.parametrize(
    ("template", "limit"),
    [
        (NESTED_LOOPS, "template exceeded the render time limit of 3.0s"),
        ("{{ 'a' * 10**9 }}", "template exceeded the render memory limit of 64 MiB"),
    ],
)
def test_a_bomb_fails_its_step_with_the_limit_while_healthz_answers(
    app_client: BudClient, template: str, limit: str
) -> None:
    pipeline = app_client.pipelines.create(
        name="bomb",
        definition={"steps": [{"id": "x", "action": "log", "params": {"message": template}}]},
    )
    execution = app_client.pipelines.run(pipeline.id)
    deadline = time.monotonic() + 10
    while _step(app_client, execution.id).status == "pending" and time.monotonic() < deadline:
        time.sleep(0.02)
    health = app_client._http.get("/healthz")  # asked while the step renders (or just after)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    done = app_client.executions.wait(execution.id, timeout=30)
    assert done.status == "failed"
    step = done.steps[0]
    assert step.status == "failed"
    assert step.error == f"steps.x.params.message: {limit}"
    # the limit is not worth retrying: one attempt, and the execution names it
    assert step.attempts == 1
    assert limit in (done.error or "")
