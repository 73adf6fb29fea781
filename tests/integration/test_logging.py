"""Request ids, the access log and the two log formats."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bud.server import logs
from bud.server.app import create_app
from bud.settings import Settings


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", demo=True, port=18232, poll_seconds=0.2)
    with TestClient(
        create_app(settings, check_responses=True), base_url="http://localhost"
    ) as client:
        yield client


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.handler.addFilter(logs.RequestIdFilter())
    caplog.set_level(logging.INFO)
    yield caplog


def test_a_request_id_is_made_echoed_and_accepted(http: TestClient) -> None:
    made = http.get("/v1/pipelines")
    assert made.headers["x-request-id"].startswith("req_")
    assert http.get("/v1/pipelines").headers["x-request-id"] != made.headers["x-request-id"]
    given = http.get("/v1/pipelines", headers={"X-Request-ID": "lb-7f3a.42"})
    assert given.headers["x-request-id"] == "lb-7f3a.42"
    # An id that is not a sane token (spaces, too long) is replaced, not echoed.
    for bad in ("two words", "x" * 200):
        answer = http.get("/v1/pipelines", headers={"X-Request-ID": bad})
        assert answer.headers["x-request-id"].startswith("req_")
    # Answers made before routing (404, 413, 401) carry one too.
    assert http.get("/v1/nothing-here").headers["x-request-id"].startswith("req_")


def test_one_access_line_per_request_with_the_request_id(
    http: TestClient, records: pytest.LogCaptureFixture
) -> None:
    answer = http.get("/v1/pipelines/pipe_nope", headers={"X-Request-ID": "abc-1"})
    assert answer.status_code == 404
    (line,) = [r for r in records.records if r.name == "bud.access"]
    assert line.levelno == logging.INFO
    assert line.getMessage().startswith("GET /v1/pipelines/pipe_nope 404 ")
    assert (line.method, line.path, line.status) == ("GET", "/v1/pipelines/pipe_nope", 404)  # type: ignore[attr-defined]
    assert line.duration_ms >= 0  # type: ignore[attr-defined]
    assert line.request_id == "abc-1"  # type: ignore[attr-defined]


def test_every_line_logged_while_handling_a_request_carries_its_id(
    http: TestClient, records: pytest.LogCaptureFixture
) -> None:
    # The demo inbox logs what it receives, inside the request.
    http.post("/demo/slack", json={"text": "hello"}, headers={"X-Request-ID": "rid-9"})
    inbox = [r for r in records.records if r.name == "bud.demo" and "hello" in r.getMessage()]
    assert [r.request_id for r in inbox] == ["rid-9"]  # type: ignore[attr-defined]
    logging.getLogger("bud.test").warning("outside any request")
    assert records.records[-1].request_id is None  # type: ignore[attr-defined]


def test_json_and_text_formats() -> None:
    stream = io.StringIO()
    logs.configure("info", "json")
    root = logging.getLogger()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        token = logs.request_id.set("req_1")
        logging.getLogger("bud.access").info("GET / 200", extra={"method": "GET", "status": 200})
        logs.request_id.reset(token)
        logging.getLogger("bud.x").warning("plain %s", "words")
        first, second = (json.loads(line) for line in stream.getvalue().splitlines())
        assert first["message"] == "GET / 200"
        assert (first["level"], first["logger"], first["request_id"]) == (
            "info",
            "bud.access",
            "req_1",
        )
        assert (first["method"], first["status"]) == ("GET", 200)
        assert first["time"].endswith("Z")
        assert "request_id" not in second and second["message"] == "plain words"

        logs.configure("info", "text")
        handler = logging.getLogger().handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        text = io.StringIO()
        handler.setStream(text)
        token = logs.request_id.set("req_2")
        logging.getLogger("bud.y").info("hello")
        logs.request_id.reset(token)
        assert text.getvalue().rstrip().endswith("INFO bud.y: hello [request_id=req_2]")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        root.setLevel(logging.WARNING)
