"""Every failure is recorded: attempts exist from their start, and nothing loops for ever."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bud import BudClient, ConflictError
from bud.actions.base import ActionContext, action


@action("custom_plugin", description="A plugin action that will be removed.", params={})
async def custom_plugin(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    return {}


RETRY = {"max_attempts": 2, "backoff_seconds": 0.1}


def test_a_step_whose_action_is_gone_fails_after_max_attempts(app_client: BudClient) -> None:
    bud = app_client.app.state.bud  # type: ignore[attr-defined]
    bud.registry.register(custom_plugin)
    pipeline = app_client.pipelines.create(
        name="plugin",
        definition={
            "steps": [
                {"id": "wait", "action": "delay", "params": {"seconds": 0.3}, "retry": RETRY},
                {
                    "id": "use",
                    "action": "custom_plugin",
                    "params": {},
                    "depends_on": ["wait"],
                    "retry": RETRY,
                },
            ]
        },
    )
    execution = app_client.pipelines.run(pipeline.id)
    # The plugin is removed while the execution runs (as after a restart without it).
    bud.registry.unregister("custom_plugin")
    bud.engine.catalogue.forget_definitions()
    done = app_client.executions.wait(execution.id, timeout=20)
    assert done.status == "failed"
    # The version no longer validates, so the next step to run fails: "wait" if it had not
    # started yet, else "use". Either way: twice (max_attempts), with the reason.
    [step] = [s for s in done.steps if s.status == "failed"]
    assert step.attempts == 2
    assert "unknown action 'custom_plugin'" in (step.error or "")
    attempts = [
        a for a in app_client.executions.attempts(execution.id) if a.step_id == step.step_id
    ]
    assert [(a.attempt, a.status) for a in attempts] == [(1, "failed"), (2, "failed")]
    assert all("does not validate any more" in (a.error or "") for a in attempts)
    assert f"step {step.step_id} failed" in (done.error or "")
    # New runs are refused with the reason instead of starting what cannot run.
    with pytest.raises(ConflictError, match=r"cannot run: .*unknown action 'custom_plugin'"):
        app_client.pipelines.run(pipeline.id)


def test_a_running_step_shows_its_attempt_and_params(app_client: BudClient) -> None:
    pipeline = app_client.pipelines.create(
        name="slow",
        definition={"steps": [{"id": "wait", "action": "delay", "params": {"seconds": 1.5}}]},
    )
    execution = app_client.pipelines.run(pipeline.id)
    deadline = time.monotonic() + 10
    while True:
        attempts = list(app_client.executions.attempts(execution.id))
        if attempts and attempts[0].params is not None:
            break
        assert time.monotonic() < deadline, "the running attempt never showed its params"
        time.sleep(0.05)
    [running] = attempts
    assert (running.attempt, running.status, running.params) == (1, "running", {"seconds": 1.5})
    assert running.finished_at is None and running.started_at is not None
    done = app_client.executions.wait(execution.id, timeout=20)
    assert done.status == "succeeded"
    [finished] = list(app_client.executions.attempts(execution.id))
    assert (finished.status, finished.params) == ("succeeded", {"seconds": 1.5})
