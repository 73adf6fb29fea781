"""``GET /v1/stream`` against a real ``bud serve``: changes are pushed, bad requests answer
before the stream starts, and stopping the server ends open streams cleanly."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bud import BudClient
from tests.support import BudProcess

pytestmark = [pytest.mark.e2e]

STEPS = {
    "steps": [
        {"id": "a", "action": "log", "params": {"message": "a"}},
        {"id": "w", "action": "delay", "params": {"seconds": 0.6}, "depends_on": ["a"]},
    ]
}


def frames(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, data) for each server-sent event; comments and retry lines are skipped."""
    event, data = "message", []
    for line in response.iter_lines():
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BudProcess]:
    with BudProcess(tmp_path / "bud") as proc:
        yield proc


def test_an_execution_stream_pushes_each_change_until_it_ends(server: BudProcess) -> None:
    with BudClient(base_url=server.url) as client, httpx.Client(base_url=server.url) as http:
        pipeline = client.pipelines.create(name="streamed", definition=STEPS)
        execution = client.pipelines.run(pipeline.id)
        statuses: list[str] = []
        with http.stream(
            "GET", "/v1/stream", params={"execution_id": execution.id}, timeout=30
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for event, data in frames(response):
                assert event == "execution" and data["now"].endswith("Z")
                assert data["execution"]["id"] == execution.id
                statuses.append(data["execution"]["status"])
                if statuses[-1] == "succeeded":
                    assert {a["step_id"] for a in data["attempts"]} == {"a", "w"}
                    break
        assert statuses[-1] == "succeeded"
        assert len(statuses) >= 2  # the first state, then what changed


def test_list_streams_send_new_rows_and_bad_requests_fail_first(server: BudProcess) -> None:
    with BudClient(base_url=server.url) as client, httpx.Client(base_url=server.url) as http:
        assert http.get("/v1/stream").status_code == 422
        missing = http.get("/v1/stream", params={"execution_id": "exe_nope"})
        assert missing.status_code == 404
        bad = http.get("/v1/stream", params={"topic": "events", "data_path": "a..b"})
        assert bad.status_code == 422 and bad.json()["error"]["details"]["path"] == "data_path"

        with http.stream(
            "GET", "/v1/stream", params={"topic": "events", "source": "streamed"}, timeout=30
        ) as response:
            published = client.events.publish("model.added", {"model_id": "s"}, source="streamed")
            event, data = next(frames(response))
            assert event == "events"
            assert [e["event_id"] for e in data["items"]] == [published.event_id]


def test_stopping_the_server_ends_open_streams_cleanly(server: BudProcess) -> None:
    with httpx.Client(base_url=server.url) as http:
        with http.stream("GET", "/v1/stream", params={"topic": "executions"}, timeout=30) as r:
            lines = r.iter_lines()
            assert next(lines) == "retry: 1000"
            server.stop()
            # The response ends with its final chunk (no protocol error from a cut connection).
            rest = list(lines)
        assert all(line == "" or line.startswith(("event:", "data:", ":")) for line in rest)
    assert server.proc is not None and server.proc.returncode != -signal.SIGKILL
    assert "Application shutdown complete" in server.log.read_text()
    # uvicorn did not have to cancel the stream after its graceful-shutdown timeout.
    assert "graceful shutdown exceeded" not in server.log.read_text()
