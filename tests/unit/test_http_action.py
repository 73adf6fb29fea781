"""The http_request action against a real local HTTP server."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bud.actions.base import ActionContext, ActionError
from bud.actions.http import HTTP_ACTIONS, http_request_action, redact_url
from bud.errors import ValidationError
from bud.settings import Settings
from tests.support import RECEIVERS_ALLOW, AsyncHttpServer

ALLOW_LOCAL = Settings(outbound_allow=RECEIVERS_ALLOW)


@pytest.fixture
async def server() -> AsyncIterator[AsyncHttpServer]:
    s = AsyncHttpServer()
    await s.start()
    yield s
    await s.close()


async def call(params: dict[str, Any]) -> dict[str, Any]:
    http_request_action.check_params(params, where="params", rendered=True)
    ctx = ActionContext(
        execution_id="exe_1", step_id="call", attempt=1, params=params, settings=ALLOW_LOCAL
    )
    return await http_request_action(ctx, params)


async def test_get_returns_status_headers_and_text(server: AsyncHttpServer) -> None:
    out = await call({"url": f"{server.url}/ping", "query": {"a": "1", "b": ["x", "y"]}})
    assert out["status_code"] == 200
    assert out["body"] == "ok"
    assert out["json"] is None
    assert out["headers"]["x-served-by"] == "test"
    assert isinstance(out["elapsed_ms"], int)
    req = server.requests[0]
    assert req["method"] == "GET"
    assert req["query"] == "a=1&b=x&b=y"
    assert req["headers"]["idempotency-key"] == "exe_1:call"


async def test_post_json_and_parse_json_reply(server: AsyncHttpServer) -> None:
    server.routes["/items"] = (201, "application/json", b'{"id": "it_1", "ok": true}')
    out = await call(
        {
            "url": f"{server.url}/items",
            "method": "POST",
            "json": {"name": "llama", "replicas": 2},
            "headers": {"Idempotency-Key": "mine", "X-Trace": "t1"},
        }
    )
    assert out["status_code"] == 201
    assert out["json"] == {"id": "it_1", "ok": True}
    req = server.requests[0]
    assert json.loads(req["body"]) == {"name": "llama", "replicas": 2}
    assert req["headers"]["content-type"] == "application/json"
    # The user's own key wins over ours.
    assert req["headers"]["idempotency-key"] == "mine"
    assert req["headers"]["x-trace"] == "t1"


async def test_put_raw_body_and_head(server: AsyncHttpServer) -> None:
    await call(
        {
            "url": server.url,
            "method": "PUT",
            "body": "plain text",
            "headers": {"Content-Type": "text/plain"},
        }
    )
    assert server.requests[0]["body"] == b"plain text"
    out = await call({"url": server.url, "method": "HEAD"})
    assert out["status_code"] == 200 and out["body"] == ""


async def test_expected_status(server: AsyncHttpServer) -> None:
    server.routes["/gone"] = (404, "text/plain", b"nothing here")
    out = await call({"url": f"{server.url}/gone", "expected_status": [404]})
    assert out["status_code"] == 404

    with pytest.raises(ActionError) as info:
        await call({"url": server.url, "expected_status": [201, 202]})
    assert "HTTP 200 (expected 201, 202)" in info.value.message


async def test_4xx_is_not_retryable_and_carries_the_body(server: AsyncHttpServer) -> None:
    server.routes["/bad"] = (422, "application/json", b'{"error": "' + b"x" * 500 + b'"}')
    with pytest.raises(ActionError) as info:
        await call({"url": f"{server.url}/bad", "method": "POST", "json": {}})
    err = info.value
    assert err.retryable is False
    assert "HTTP 422" in err.message
    assert '{"error": "xxx' in err.message
    assert len(err.message) < 320  # only the first 200 chars of the body
    assert err.outputs["status_code"] == 422


@pytest.mark.parametrize("status", [500, 503, 408, 429])
async def test_5xx_408_429_are_retryable(server: AsyncHttpServer, status: int) -> None:
    server.routes["/flaky"] = (status, "text/plain", b"try later")
    with pytest.raises(ActionError) as info:
        await call({"url": f"{server.url}/flaky"})
    assert info.value.retryable is True
    assert f"HTTP {status}" in info.value.message and "try later" in info.value.message


async def test_fail_on_status_false_returns_the_response(server: AsyncHttpServer) -> None:
    server.routes["/err"] = (500, "text/plain", b"boom")
    out = await call({"url": f"{server.url}/err", "fail_on_status": False})
    assert out["status_code"] == 500 and out["body"] == "boom"


async def test_body_is_truncated_to_64_kib(server: AsyncHttpServer) -> None:
    server.routes["/big"] = (200, "text/plain", b"a" * 100_000)
    out = await call({"url": f"{server.url}/big"})
    assert len(out["body"]) == 64 * 1024


async def test_connection_refused_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ActionError) as info:
        await call({"url": f"http://127.0.0.1:{port}/x"})
    assert info.value.retryable is True
    assert "ConnectError" in info.value.message


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com"])
async def test_bad_scheme_is_not_retryable(url: str) -> None:
    ctx = ActionContext(
        execution_id="exe_1", step_id="call", attempt=1, params={"url": url}, settings=ALLOW_LOCAL
    )
    with pytest.raises(ActionError) as info:
        await http_request_action(ctx, {"url": url})
    assert info.value.retryable is False
    assert "http:// or https://" in info.value.message
    with pytest.raises(ValidationError):
        http_request_action.check_params({"url": url}, where="params", rendered=True)


async def test_json_and_body_together_are_rejected(server: AsyncHttpServer) -> None:
    with pytest.raises(ActionError) as info:
        await call({"url": server.url, "method": "POST", "json": {}, "body": "x"})
    assert info.value.retryable is False
    assert server.requests == []


def test_params_schema() -> None:
    for bad in (
        {},
        {"url": "http://x", "method": "TRACE"},
        {"url": "http://x", "headers": {"a": 1}},
        {"url": "http://x", "expected_status": [99]},
        {"url": "http://x", "nope": 1},
    ):
        with pytest.raises(ValidationError):
            http_request_action.check_params(bad, where="params", rendered=True)
    http_request_action.check_params(
        {"url": "{{ steps.a.outputs.url }}"}, where="params", rendered=False
    )


def test_redact_url() -> None:
    assert (
        redact_url("https://u:p@h.example/x?api_key=1&page=2")
        == "https://u:***@h.example/x?api_key=***&page=2"
    )
    assert (
        redact_url("https://hooks.slack.com/services/T0/B0/XYZ")
        == "https://hooks.slack.com/services/T0/B0/***"
    )
    assert redact_url("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"


def test_declaration() -> None:
    assert HTTP_ACTIONS[0] is http_request_action and len(HTTP_ACTIONS) == 1
    assert http_request_action.idempotent is False
    assert http_request_action.timeout_seconds == 60
    assert http_request_action.retry.max_attempts == 3
