"""A real bud serve: an http_request step cannot reach the server's own API, not directly and
not through a redirect from an allowed receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

from bud import BudClient
from tests.support import BudProcess, HttpReceiver

pytestmark = pytest.mark.e2e


def test_http_request_cannot_call_the_servers_own_api(
    data_dir: Path, receiver: HttpReceiver
) -> None:
    with BudProcess(data_dir) as server, BudClient(base_url=server.url) as client:
        own = f"{server.url}/v1/secrets/pwned"
        receiver.redirects["/go"] = own
        steps = [
            {
                "id": "direct",
                "action": "http_request",
                "params": {"url": own, "method": "PUT", "json": {"value": "x"}},
                "on_failure": "continue",
            },
            {
                "id": "redirected",
                "action": "http_request",
                "params": {"url": f"{receiver.url}/go", "method": "PUT", "json": {"value": "x"}},
                "on_failure": "continue",
            },
            {
                "id": "allowed",
                "action": "http_request",
                "params": {"url": f"{receiver.url}/fine", "method": "POST", "json": {}},
            },
        ]
        pipeline = client.pipelines.create(name="ssrf", definition={"steps": steps})
        execution = client.executions.wait(client.pipelines.run(pipeline.id).id, timeout=30)
        by_id = {s.step_id: s for s in execution.steps}
        for step_id in ("direct", "redirected"):
            step = by_id[step_id]
            assert step.status == "failed" and step.attempts == 1, step
            assert "this server itself" in (step.error or "")
        assert by_id["allowed"].status == "succeeded"
        assert sorted(r["path"] for r in receiver.requests) == ["/fine", "/go"]
        assert "pwned" not in {s.name for s in client.secrets.list()}
