"""One JSON contract for both stores: what a store cannot keep is refused at the API with the
path of the value, and nothing the API accepted can break a read."""

from __future__ import annotations

from typing import Any

import pytest

from bud import BudClient
from bud.server.jsonbody import MAX_DEPTH, find_problem, parse

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "hi"}}]}


@pytest.fixture
def http(app_client: BudClient) -> Any:
    return app_client._http


def post(http: Any, path: str, body: bytes) -> Any:
    return http.post(path, content=body, headers={"content-type": "application/json"})


def nested(depth: int) -> bytes:
    return (
        b'{"event_type": "model.added", "data": {"model_id": "m", "x": '
        + (b"[" * depth + b"]" * depth)
        + b"}}"
    )


@pytest.mark.parametrize(
    ("body", "status", "path", "words"),
    [
        (
            b'{"event_type": "model.added", "data": {"model_id": "a\\u0000b"}}',
            422,
            "body.data.model_id",
            "NUL",
        ),
        (
            b'{"event_type": "model.added", "data": {"model_id": "m", "k\\u0000": 1}}',
            422,
            "body.data.k\x00",
            "NUL",
        ),
        (
            b'{"event_type": "model.added", "data": {"model_id": "m", "n": 9223372036854775808}}',
            422,
            "body.data.n",
            "64-bit",
        ),
        (
            b'{"event_type": "model.added", "data": {"model_id": "m", "n": -9223372036854775809}}',
            422,
            "body.data.n",
            "64-bit",
        ),
        (
            b'{"event_type": "model.added", "data": {"model_id": "m", "n": NaN}}',
            422,
            "body.data.n",
            "finite",
        ),
        (
            b'{"event_type": "model.added", "data": {"model_id": "m", "n": [1, -Infinity]}}',
            422,
            "body.data.n[1]",
            "finite",
        ),
        (
            b'{"event_type": "model.added", "data": {"model_id": "m", "n": 1e400}}',
            422,
            "body.data.n",
            "64-bit float",
        ),
        (
            b'{"event_type": "model.added", "data": {"model_id": "\\ud800"}}',
            422,
            "body.data.model_id",
            "surrogate",
        ),
        (nested(MAX_DEPTH), 422, "body.data.x", "nested deeper than 64"),
        (nested(300), 422, "body.data.x", "nested deeper than 64"),
        (nested(100_000), 422, "body", "nested deeper than 64"),
        (b'{"event_type": "model.added", "data": {"model_id": "m"}}\xff', 400, "body", "UTF-8"),
    ],
)
def test_values_no_store_can_keep_are_refused_with_their_path(
    app_client: BudClient, http: Any, body: bytes, status: int, path: str, words: str
) -> None:
    r = post(http, "/v1/events", body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    found = error["details"]["path"]
    # Too deep: the path leads to the first container past the limit.
    assert found == path or (words.startswith("nested") and found.startswith(f"{path}[0]"))
    assert words in error["message"]
    assert list(app_client.events.list()) == []


def test_the_contract_covers_every_json_route(app_client: BudClient, http: Any) -> None:
    nul = b'"a\\u0000b"'
    cases = [
        ("post", "/v1/pipelines", b'{"name": ' + nul + b', "definition": {}}', "body.name"),
        (
            "post",
            "/v1/models",
            b'{"name": "m", "source": "s", "metadata": {"n": 1e999}}',
            "body.metadata.n",
        ),
        ("put", "/v1/secrets/x", b'{"value": ' + nul + b"}", "body.value"),
        ("put", "/v1/channels/webhook", b'{"url": "http://a\\ud800"}', "body.url"),
        (
            "post",
            "/v1/events/batch",
            b'{"events": [{"event_type": "model.added", "data": {"model_id": ' + nul + b"}}]}",
            "body.events[0].data.model_id",
        ),
    ]
    for method, path, body, where in cases:
        r = http.request(method, path, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["details"]["path"] == where
    assert list(app_client.pipelines.list()) == []
    assert list(app_client.events.list()) == []


def test_nul_in_the_path_or_query_is_a_400(http: Any) -> None:
    for url in ("/v1/pipelines/pipe%00x", "/v1/events?event_type=a%00b", "/v1/models?x%00=1"):
        r = http.get(url)
        assert r.status_code == 400, (url, r.text)
        assert "NUL" in r.json()["error"]["message"]


def test_nesting_up_to_the_limit_is_stored(app_client: BudClient, http: Any) -> None:
    # The envelope and its data are two levels: 62 arrays inside make 64.
    r = post(http, "/v1/events", nested(MAX_DEPTH - 1))
    assert r.status_code == 422 and "nested deeper than 64" in r.json()["error"]["message"]
    r = post(http, "/v1/events", nested(MAX_DEPTH - 2))
    assert r.status_code == 202, r.text
    expected: list[Any] = []
    for _ in range(MAX_DEPTH - 3):
        expected = [expected]
    (event,) = app_client.events.list()
    assert event.data["x"] == expected


def test_big_floats_round_trip_and_reads_keep_working(app_client: BudClient) -> None:
    values = {"model_id": "m", "big": 1e20, "huge": 1.5e300, "neg": -3.25e25, "tiny": 5e-324}
    app_client.events.publish("model.added", values)
    (event,) = app_client.events.list()  # a stored 1e20 once made every list answer 500
    assert {k: event.data[k] for k in values} == values
    assert app_client.events.get(event.event_id).data["big"] == 1e20
    app_client.models.add("llama", "hugging_face", score=1e21)
    (model,) = app_client.models.list()
    assert model.metadata["score"] == 1e21


def test_signed_64_bit_limits_are_kept_exactly(app_client: BudClient) -> None:
    app_client.events.publish("model.added", {"model_id": "m", "lo": -(2**63), "hi": 2**63 - 1})
    (event,) = app_client.events.list()
    assert (event.data["lo"], event.data["hi"]) == (-(2**63), 2**63 - 1)


def test_test_must_be_a_boolean(app_client: BudClient, http: Any) -> None:
    for value in ('"false"', "0", '"true"', "[]"):
        body = b'{"event_type": "model.added", "data": {"model_id": "m"}, "test": %s}' % (
            value.encode()
        )
        r = post(http, "/v1/events", body)
        assert r.status_code == 422, (value, r.text)
        assert r.json()["error"]["details"]["path"] == "event.test"
    assert list(app_client.events.list()) == []
    r = post(
        http,
        "/v1/events",
        b'{"event_type": "model.added", "data": {"model_id": "m"}, "test": true}',
    )
    assert r.status_code == 202 and r.json()["test"] is True


def test_parse_and_find_problem_alone() -> None:
    assert parse(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}
    assert find_problem({"a": [{"b": "ok"}, {"c": "\x00"}]}) == (
        "body.a[1].c",
        "contains a NUL character (\\u0000), which cannot be stored",
    )
    assert find_problem({"n": float("nan")}, "outputs") == (
        "outputs.n",
        "nan is not a finite number",
    )
    assert find_problem({"n": 2**64}) is not None


@pytest.mark.parametrize(
    ("ctype", "payload", "where"),
    [
        ("text/plain", b"before\x00after", "outputs.body"),
        ("application/json", b'{"n": 123456789012345678901234567890}', "outputs.json.n"),
        ("application/json", b'{"n": 1e999}', "outputs.json.n"),
    ],
)
def test_step_outputs_no_store_can_keep_fail_the_step_once(
    app_client: BudClient, ctype: str, payload: bytes, where: str
) -> None:
    from tests.support import HttpReceiver

    with HttpReceiver() as receiver:
        receiver.answers["/odd"] = (ctype, payload)
        step = {
            "id": "call",
            "action": "http_request",
            "params": {"url": f"{receiver.url}/odd"},
            "retry": {"max_attempts": 3, "backoff_seconds": 0.1},
        }
        pipeline = app_client.pipelines.create(name="odd", definition={"steps": [step]})
        execution = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id, 30)
    (recorded,) = execution.steps
    assert execution.status == "failed" and recorded.status == "failed"
    assert recorded.attempts == 1 and len(receiver.requests) == 1
    assert recorded.error and recorded.error.startswith(f"steps.call.{where}:")
    assert recorded.outputs == {}
    assert app_client.executions.get(execution.id).steps[0].error == recorded.error
