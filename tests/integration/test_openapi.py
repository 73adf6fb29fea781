"""The OpenAPI document is a contract: every operation is called, every answer is checked.

Success answers are validated (jsonschema) against the schema the document gives for their
status; every error status the document lists is provoked and its body validated against
the error envelope; operation ids are SDK calls. Inputs come from the product's own examples
(the demo's pipelines, the event types' example data).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.testclient import TestClient

from bud.client import BudClient
from bud.demo import DEMO_CLUSTER, DEMO_PIPELINES
from bud.server.app import create_app
from bud.settings import Settings
from bud.signing import sign
from tests.support import RECEIVERS_ALLOW

AUTO_DEPLOY, FAILURE_ALERTS = (
    next(p for p in DEMO_PIPELINES if p["name"] == name)
    for name in ("Auto-Deploy New Models", "Deployment Failure Alerts")
)
METHODS = ("get", "post", "put", "patch", "delete")
# Operation ids whose SDK call is not spelled <resource>_<method>.
SDK_SPELLING = {
    "health": "health",
    "event_triggers_backtest_filter": "event_triggers.backtest",  # (event_type=, filter=)
}
# Prometheus scrapes /metrics; the UI reads the live stream, the console's draft check and
# the ingest error log; `bud keys` calls the API-key routes directly.
NO_SDK_CALL = {
    "metrics",
    "stream",
    "event_triggers_check",
    "ingest_errors_list",
    "api_keys_create",
    "api_keys_list",
    "api_keys_revoke",
}


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        poll_seconds=0.2,
        health_probe_seconds=0.5,
        outbound_allow=RECEIVERS_ALLOW,
        **changes,
    )


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(
        create_app(_settings(tmp_path), check_responses=True), base_url="http://localhost"
    ) as client:
        yield client


@pytest.fixture
def doc(http: TestClient) -> dict[str, Any]:
    answer = http.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def check(document: dict[str, Any], op: dict[str, Any], answer: httpx.Response) -> None:
    """The answer's status is documented for the operation, and its body fits the schema."""
    where = f"{op['operationId']} answered {answer.status_code}: {answer.text[:300]}"
    documented = op["responses"].get(str(answer.status_code))
    assert documented is not None, f"{where}; documented: {sorted(op['responses'])}"
    content = documented.get("content")
    if answer.status_code == 204 or not content:
        assert answer.content == b"", where
        return
    if "application/json" not in content:
        assert "text/plain" in content and answer.headers["content-type"].startswith("text/"), where
        return
    schema = {**content["application/json"]["schema"], "components": document["components"]}
    try:
        jsonschema.Draft202012Validator(schema).validate(answer.json())
    except jsonschema.ValidationError as exc:
        raise AssertionError(f"{where}\ndoes not match its schema: {exc.message}") from exc


# ---------------------------------------------------------------------------------------------
# The document itself


def test_operation_ids_are_the_sdk_calls(doc: dict[str, Any]) -> None:
    client = BudClient(base_url="http://unused")
    for _method, _path, op in operations(doc):
        op_id = op["operationId"]
        if op_id in NO_SDK_CALL:
            continue
        call = SDK_SPELLING.get(op_id)
        if call is None:
            resource = next(
                r for r in sorted(vars(client), key=len, reverse=True) if op_id.startswith(r + "_")
            )
            call = f"{resource}.{op_id[len(resource) + 1 :]}"
        target: Any = client
        for part in call.split("."):
            assert hasattr(target, part), f"{op_id}: the SDK has no client.{call}"
            target = getattr(target, part)
        assert callable(target), call


def test_every_operation_is_described_with_its_answers_and_errors(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's {"detail": [...]} is not ours
    assert set(schemas["ErrorResponse"]["properties"]) == {"error"}
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message"}
    assert doc["components"]["securitySchemes"]["ApiKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": doc["components"]["securitySchemes"]["ApiKeyHeader"]["description"],
    }
    ids = [op["operationId"] for _m, _p, op in operations(doc)]
    assert len(ids) == len(set(ids))
    for method, path, op in operations(doc):
        name = op["operationId"]
        assert op.get("description", "").strip(), f"{name} has no description"
        success = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert success, name
        for status, response in success.items():
            if status != "204":
                assert response.get("content"), f"{name} {status} has no schema"
                (media,) = response["content"].values()
                assert media.get("schema"), f"{name} {status} has no schema"
        errors = {int(s): r for s, r in op["responses"].items() if not s.startswith("2")}
        for status, response in errors.items():
            assert response["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorResponse"
            }, f"{name} {status}"
        if name == "hooks_deliver":  # the HMAC signature is the credential, not a key
            assert 401 in errors and op["security"] == [], name
        elif path.startswith("/v1/"):
            assert 401 in errors, name
            assert {"ApiKeyHeader": []} in op["security"], name
        else:
            assert op["security"] == [], name
        if "requestBody" in op:
            assert {400, 413, 422} <= set(errors), name
        if "{" in path and method != "put":
            assert 404 in errors, name


def test_demo_routes_are_only_on_a_demo_server(tmp_path: Path, doc: dict[str, Any]) -> None:
    assert not [p for p in doc["paths"] if p.startswith("/demo")]
    with TestClient(
        create_app(_settings(tmp_path / "d", demo=True, port=18231)), base_url="http://localhost"
    ) as demo_http:
        demo_doc = demo_http.get("/openapi.json").json()
        assert {"/demo/slack"} <= set(demo_doc["paths"])
        op = demo_doc["paths"]["/demo/slack"]["post"]
        check(demo_doc, op, demo_http.post("/demo/slack", json={"text": "hello"}))
        op = demo_doc["paths"]["/demo/slack"]["get"]
        answer = demo_http.get("/demo/slack")
        check(demo_doc, op, answer)
        assert answer.json()["items"] == [{"text": "hello"}]


def test_a_production_server_has_no_demo_routes(http: TestClient) -> None:
    answer = http.get("/demo/slack")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


# ---------------------------------------------------------------------------------------------
# Every operation, called with valid input: the answer matches the document


def _example(http: TestClient, event_type: str) -> dict[str, Any]:
    example: dict[str, Any] = http.get(f"/v1/event-types/{event_type}").json()["example"]
    return example


def test_every_operation_answers_as_documented(http: TestClient, doc: dict[str, Any]) -> None:
    by_id = {op["operationId"]: (m, p, op) for m, p, op in operations(doc)}
    called: set[str] = set()
    state: dict[str, Any] = {}

    def call(op_id: str, path: dict[str, str] | None = None, **kwargs: Any) -> Any:
        method, template, op = by_id[op_id]
        answer = http.request(method.upper(), template.format(**(path or {})), **kwargs)
        assert answer.is_success, f"{op_id}: {answer.status_code} {answer.text[:300]}"
        check(doc, op, answer)
        called.add(op_id)
        return (
            answer.json() if answer.content and "json" in answer.headers["content-type"] else None
        )

    model_added = _example(http, "model.added")
    call("health")
    call("metrics")
    call("actions_list")
    call("actions_get", {"name": "deployment_create"})
    call("event_types_list")
    call("event_types_get", {"name": "model.added"})
    call(
        "event_types_register",
        json={
            "name": "team.thing_happened",
            "description": "a custom type",
            "schema": {"type": "object", "required": ["thing"]},
            "example": {"thing": "x"},
        },
    )
    cluster = DEMO_CLUSTER
    call("clusters_create", json=cluster)
    call("clusters_list")
    call("clusters_get", {"cluster_id": cluster["id"]})
    call("clusters_update", {"cluster_id": cluster["id"]}, json={"status": "ready"})
    call("pipelines_validate", json={"definition": AUTO_DEPLOY["definition"]})
    pipe = call(
        "pipelines_create",
        json={"name": AUTO_DEPLOY["name"], "definition": AUTO_DEPLOY["definition"]},
    )
    ids = {"pipeline_id": pipe["id"]}
    call("pipelines_list")
    call("pipelines_get", ids)
    call("pipelines_update", ids, json={"description": AUTO_DEPLOY["description"]})
    call("pipelines_versions", ids)
    call("pipelines_dry_run", ids, json={"event": {"event_type": "model.added", "data": {}}})
    call("channels_set", {"name": "webhook"}, json={"url": "http://127.0.0.1:9/hook"})
    call("channels_list")
    call("secrets_set", {"name": "api_token"}, json={"value": "tok-123"})
    call("secrets_list")
    trig = call(
        "event_triggers_create",
        json={
            "pipeline_id": pipe["id"],
            "event_type": AUTO_DEPLOY["trigger"]["event_type"],
            "filter": AUTO_DEPLOY["trigger"]["filter"],
            "enabled": True,
        },
    )
    tids = {"trigger_id": trig["id"]}
    call("event_triggers_list", params={"pipeline_id": pipe["id"]})
    call(
        "event_triggers_check",
        json={"pipeline_id": pipe["id"], "event_type": "model.added", "filter": {}},
    )
    call("ingest_errors_list")
    call("event_triggers_get", tids)
    call("event_triggers_update", tids, json={"name": "auto-deploy"})
    call("event_triggers_disable", tids)
    call("event_triggers_enable", tids)
    test = call("event_triggers_test", tids, json={"event": {"data": {"model_source": "x"}}})
    assert test["warnings"]  # a partial event: answered, with what the schema misses
    model = call(
        "models_add",
        json={"name": "Llama-3.2-1B", "source": "hugging_face", "metadata": {"auto_deploy": True}},
    )
    mids = {"model_id": model["id"]}
    call("models_list")
    call("models_get", mids)
    call("models_update", mids, json={"changes": {"description": "small"}})
    event = call("events_publish", json={"event_type": "model.added", "data": model_added})
    call("events_publish_many", json={"events": [{"event_type": "model.added", "data": {
        **model_added, "model_source": "local"}}]})  # fmt: skip
    call("events_list", params={"event_type": "model.added"})
    call("events_get", {"event_id": event["event_id"]})
    call("events_replay", json={"event_ids": [event["event_id"]]})
    call("event_triggers_stats", tids)
    call("event_triggers_backtest", tids, json={"limit": 10})
    call("event_triggers_backtest_filter", json={"event_type": "model.added", "filter": {}})

    slow = call(
        "pipelines_create",
        json={"name": "slow", "definition": {"steps": [
            {"id": "wait", "action": "delay", "params": {"seconds": 30}}]}},
    )  # fmt: skip
    run = call("pipelines_run", {"pipeline_id": slow["id"]}, json={"params": {}})
    eids = {"execution_id": run["id"]}
    call("executions_list", params={"pipeline_id": slow["id"]})
    call("executions_get", eids)
    call("executions_attempts", eids)
    call("executions_cancel", eids)
    call("executions_retry", eids)
    call("executions_cancel", eids)
    dep = call(
        "deployments_create",
        json={"model_id": model["id"], "cluster_id": cluster["id"], "deployment_name": "d1"},
    )
    dids = {"deployment_id": dep["id"]}
    call("deployments_list", params={"model_id": model["id"]})
    call("deployments_get", dids)
    call("deployments_revisions", dids)
    monitor = call(
        "pipelines_create",
        json={"name": "monitor", "definition": {"steps": [{"id": "m", "action":
            "monitoring_configure", "params": {"deployment_id": dep["id"]}}]}},
    )  # fmt: skip
    run = call("pipelines_run", {"pipeline_id": monitor["id"]}, json={"params": {}})
    deadline = time.monotonic() + 30
    while http.get(f"/v1/executions/{run['id']}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "monitoring_configure did not finish"
        time.sleep(0.05)
    (found,) = call("monitors_list", params={"deployment_id": dep["id"]})["items"]
    call("monitors_get", {"monitor_id": found["id"]})
    call("deployments_update", dids, json={"status": "failed", "error_message": "OOM"})
    call("deliveries_list")
    sched = call(
        "event_triggers_create",
        json={"pipeline_id": pipe["id"], "schedule": {"cron": "0 9 * * 1-5", "timezone": "UTC"}},
    )
    assert sched["kind"] == "schedule" and sched["next_run_at"]
    hook = call("hooks_create", json={"event_type": "github.push", "name": "gh"})
    hids = {"hook_id": hook["id"]}
    call("hooks_list")
    call("hooks_get", hids)
    body = b'{"ref": "refs/heads/main"}'
    call(
        "hooks_deliver",
        hids,
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(hook["secret"], body),
            "X-GitHub-Delivery": "d-1",
        },
    )
    call("hooks_delete", hids)

    call("deployments_delete", dids)
    call("models_delete", mids)
    call("event_triggers_delete", tids)
    call("pipelines_delete", ids)
    call("clusters_delete", {"cluster_id": cluster["id"]})
    call("channels_delete", {"name": "webhook"})
    call("secrets_delete", {"name": "api_token"})
    # Last: a stored key turns authentication on until it is revoked.
    key = call("api_keys_create", json={"scope": "admin"})
    call("api_keys_list", headers={"X-API-Key": key["key"]})
    call("api_keys_revoke", {"key_id": key["id"]}, headers={"X-API-Key": key["key"]})
    state["done"] = True
    # The live stream never ends by itself: tests/e2e/test_stream.py holds it to its document.
    assert called | {"stream"} == set(by_id), f"not called: {sorted(set(by_id) - called)}"


# ---------------------------------------------------------------------------------------------
# Every documented error status, provoked on every operation that lists it


def _fill(path: str, value: str = "nope_missing") -> str:
    out, depth = "", 0
    for ch in path:
        if ch == "{":
            depth += 1
            out += value
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out += ch
    return out


def _each(document: dict[str, Any], status: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for method, path, op in operations(document):
        if str(status) in op["responses"]:
            yield method, path, op


def _error_of(
    document: dict[str, Any], op: dict[str, Any], answer: httpx.Response, status: int
) -> None:
    assert answer.status_code == status, f"{op['operationId']}: {answer.status_code} {answer.text}"
    check(document, op, answer)
    assert answer.json()["error"]["message"]


# Bodies that pass the request model, so that the unknown id is what is refused.
VALID_BODY: dict[str, Any] = {
    "models_update": {"changes": {"description": "x"}},
    "event_triggers_test": {"event": {"data": {}}},
}


def _delivery(
    http: TestClient, body: bytes, key: str | None = None, **headers: str
) -> httpx.Response:
    """A signed delivery to a new hook (hooks_deliver checks its hook and signature first)."""
    auth = {"x-api-key": key} if key else {}
    hook = http.post("/v1/hooks", json={"event_type": "team.delivered"}, headers=auth).json()
    signed = {
        "content-type": "application/json",
        "x-hub-signature-256": sign(hook["secret"], body),
        "x-bud-delivery": "d-1",
        **headers,
    }
    return http.post(hook["url"], content=body, headers=signed)


def test_unknown_ids_answer_404(http: TestClient, doc: dict[str, Any]) -> None:
    seen = 0
    for method, path, op in _each(doc, 404):
        body = {"json": VALID_BODY.get(op["operationId"], {})} if "requestBody" in op else {}
        _error_of(doc, op, http.request(method.upper(), _fill(path), **body), 404)
        seen += 1
    assert seen > 30


def test_unreadable_bodies_answer_400(http: TestClient, doc: dict[str, Any]) -> None:
    for method, path, op in _each(doc, 400):
        if op["operationId"] == "hooks_deliver":
            _error_of(doc, op, _delivery(http, b'{"unfinished": '), 400)
            continue
        answer = http.request(
            method.upper(),
            _fill(path),
            content=b'{"unfinished": ',
            headers={"content-type": "application/json"},
        )
        _error_of(doc, op, answer, 400)


def test_bad_input_answers_422(http: TestClient, doc: dict[str, Any]) -> None:
    for method, path, op in _each(doc, 422):
        if op["operationId"] == "hooks_deliver":
            _error_of(doc, op, _delivery(http, b"[1, 2]"), 422)
            continue
        if "requestBody" in op:
            answer = http.request(method.upper(), _fill(path, "x"), json=[1, 2])
        else:  # query parameters only
            names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
            bad = {"limit": "-3"} if "limit" in names else {n: "not a valid value" for n in names}
            answer = http.request(method.upper(), _fill(path, "x"), params=bad)
        _error_of(doc, op, answer, 422)


def test_keys_and_size_limits_answer_401_and_413(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, api_keys=("k-1",), max_request_bytes=64))
    with TestClient(app, base_url="http://localhost") as http:
        document = http.get("/openapi.json").json()
        for method, path, op in _each(document, 401):
            if op["operationId"] == "hooks_deliver":  # no key needed; a wrong signature is 401
                wrong = {"x-hub-signature-256": "sha256=" + "0" * 64}
                _error_of(document, op, _delivery(http, b"{}", "k-1", **wrong), 401)
                continue
            _error_of(document, op, http.request(method.upper(), _fill(path)), 401)
        assert http.get("/healthz").status_code == 200
        big: Callable[[], bytes] = lambda: b'{"pad": "' + b"x" * 100 + b'"}'  # noqa: E731
        for method, path, op in _each(document, 413):
            answer = http.request(
                method.upper(),
                _fill(path),
                content=big(),
                headers={"content-type": "application/json", "x-api-key": "k-1"},
            )
            _error_of(document, op, answer, 413)


def test_conflicts_answer_409(http: TestClient, doc: dict[str, Any]) -> None:
    """Every operation that documents 409 gives it, with the envelope."""
    by_id = {op["operationId"]: (m, p, op) for m, p, op in _each(doc, 409)}

    def twice(op_id: str, body: dict[str, Any], path: dict[str, str] | None = None) -> None:
        method, template, op = by_id.pop(op_id)
        url = template.format(**(path or {}))
        first = http.request(method.upper(), url, json=body)
        assert first.is_success, first.text
        _error_of(doc, op, http.request(method.upper(), url, json=body), 409)

    definition = copy.deepcopy(FAILURE_ALERTS["definition"])
    twice("pipelines_create", {"id": "pipe_abc123", "name": "p", "definition": definition})
    trigger = {"id": "trig_xyz789", "pipeline_id": "pipe_abc123", "event_type": "model.added"}
    twice("event_triggers_create", trigger)
    method, template, op = by_id.pop("event_types_register")  # registering again updates;
    answer = http.request(method.upper(), template, json={"name": "model.added"})  # not these
    _error_of(doc, op, answer, 409)
    twice("clusters_create", DEMO_CLUSTER)
    manual = http.post(
        "/v1/pipelines",
        json={"name": "quick", "definition": {"steps": [{"id": "a", "action": "log",
              "params": {"message": "hi"}}]}},
    ).json()  # fmt: skip
    run = http.post(f"/v1/pipelines/{manual['id']}/run", json={}).json()
    done = BudClient(http_client=http).executions.wait(run["id"], timeout=20)
    assert done.status == "succeeded"
    for op_id in ("executions_cancel", "executions_retry"):
        method, template, op = by_id.pop(op_id)
        url = template.format(execution_id=run["id"])
        _error_of(doc, op, http.request(method.upper(), url), 409)
    method, template, op = by_id.pop("hooks_deliver")
    hook = http.post("/v1/hooks", json={"event_type": "team.delivered"}).json()
    signed = {
        "content-type": "application/json",
        "x-hub-signature-256": sign(hook["secret"], b"{}"),
        "x-github-delivery": "same-delivery",
    }
    assert http.post(hook["url"], content=b"{}", headers=signed).status_code == 202
    _error_of(doc, op, http.post(hook["url"], content=b"{}", headers=signed), 409)
    assert not by_id, f"409 documented but not provoked: {sorted(by_id)}"
