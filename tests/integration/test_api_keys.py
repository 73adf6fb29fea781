"""API keys: hashed at rest, scoped (read < write < admin) on every route, revocable, via CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bud.cli import app as cli_app
from bud.client import BudClient
from bud.settings import Settings
from bud.store import open_repository

ADMIN = "settings-admin-key-1"
# POSTs that change nothing: a read key may use them
READ_POSTS = {
    "/v1/pipelines/validate",
    "/v1/pipelines/{pipeline_id}/dry-run",
    "/v1/event-triggers/backtest",
    "/v1/event-triggers/{trigger_id}/backtest",
    "/v1/event-triggers/{trigger_id}/test",
}
ADMIN_PREFIXES = ("/v1/api-keys", "/v1/secrets", "/v1/channels", "/v1/hooks")
# Routes that take no key: the request signs itself (a hook delivery's HMAC signature)
KEYLESS = {("POST", "/v1/hooks/{hook_id}")}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=dict(api_keys=(ADMIN,)))


def call(client: BudClient, method: str, path: str, key: str | None = None) -> httpx.Response:
    headers = {"X-API-Key": key} if key else {}
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return client._http.request(method, path, headers=headers, json=body)


def new_key(client: BudClient, scope: str, key: str = ADMIN) -> dict[str, Any]:
    answer = call_json(client, "POST", "/v1/api-keys", key, {"scope": scope, "name": scope})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def call_json(
    client: BudClient, method: str, path: str, key: str | None, body: Any
) -> httpx.Response:
    return client._http.request(method, path, headers={"X-API-Key": key or ""}, json=body)


def needed(method: str, path: str) -> str:
    if path.startswith(ADMIN_PREFIXES):
        return "admin"
    if method == "GET" or (method == "POST" and path in READ_POSTS):
        return "read"
    return "write"


def routes(client: BudClient) -> list[tuple[str, str, str]]:
    """Every operation of the OpenAPI document under /v1/: (method, template, a concrete path)."""
    found = []
    for path, operations in client._http.get("/openapi.json").json()["paths"].items():
        if path.startswith("/v1/"):
            concrete = re.sub(r"\{[^}]+\}", "nothere", path)
            for method in sorted(operations):
                found.append((method.upper(), path, concrete))
    assert len(found) > 50
    return found


def test_every_route_checks_its_scope(app_client: BudClient) -> None:
    keys = {scope: new_key(app_client, scope)["key"] for scope in ("read", "write", "admin")}
    rank = {"read": 1, "write": 2, "admin": 3}
    for method, template, path in routes(app_client):
        if (method, template) in KEYLESS:  # no key needed: the unknown hook is what is refused
            for key in (None, "bud_not-a-key", *keys.values()):
                assert call(app_client, method, path, key).status_code == 404, (method, path)
            continue
        want = needed(method, template)
        assert call(app_client, method, path).status_code == 401, (method, path)
        assert call(app_client, method, path, "bud_not-a-key").status_code == 401, (method, path)
        for scope, key in keys.items():
            status = call(app_client, method, path, key).status_code
            if rank[scope] >= rank[want]:
                assert status not in (401, 403), (scope, method, path, status)
            else:
                assert status == 403, (scope, method, path, status)
        assert call(app_client, method, path, ADMIN).status_code not in (401, 403)


def test_a_refusal_names_the_scope_needed(app_client: BudClient) -> None:
    read = new_key(app_client, "read")["key"]
    answer = call(app_client, "POST", "/v1/pipelines", read)
    assert answer.status_code == 403
    assert answer.json()["error"]["message"] == (
        "this API key has scope read; POST /v1/pipelines needs write"
    )
    bearer = app_client._http.get("/v1/pipelines", headers={"Authorization": f"Bearer {read}"})
    assert bearer.status_code == 200


def test_keys_are_listed_without_the_key_and_revoked(app_client: BudClient) -> None:
    created = new_key(app_client, "write")
    assert created["key"].startswith("bud_") and len(created["key"]) > 40
    listed = call(app_client, "GET", "/v1/api-keys", ADMIN).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert created["key"] not in json.dumps(listed)
    assert listed[0]["prefix"] == created["key"][:10] and listed[0]["scope"] == "write"
    assert call(app_client, "POST", "/v1/models", created["key"]).status_code == 422
    revoked = call(app_client, "DELETE", f"/v1/api-keys/{created['id']}", ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert call(app_client, "GET", "/v1/models", created["key"]).status_code == 401
    bad = call_json(app_client, "POST", "/v1/api-keys", ADMIN, {"scope": "root"})
    assert bad.status_code == 422 and "read, write, admin" in bad.json()["error"]["message"]


async def test_keys_are_stored_hashed(app_client: BudClient, store_url: str) -> None:
    created = new_key(app_client, "read")
    async with open_repository(store_url) as repo, repo.read() as session:
        rows = await session.list_api_keys()
    assert len(rows) == 1
    assert created["key"] not in json.dumps(rows, default=str)
    assert len(rows[0]["hash"]) == 64


def test_metrics_needs_a_key_once_keys_are_configured(app_client: BudClient) -> None:
    assert app_client._http.get("/metrics").status_code == 401
    read = new_key(app_client, "read")["key"]
    assert app_client._http.get("/metrics", headers={"X-API-Key": read}).status_code == 200
    assert app_client._http.get("/healthz").status_code == 200  # health stays open


def test_a_metrics_token_opens_metrics_only(tmp_path: Path, store_url: str) -> None:
    from starlette.testclient import TestClient

    from bud.server.app import create_app

    settings = Settings(data_dir=tmp_path / "d", database_url=store_url, metrics_token="scrape-1")
    with TestClient(create_app(settings), base_url="http://localhost") as http:
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": "Bearer scrape-1"}).status_code == 200
        assert http.get("/v1/pipelines").status_code == 200  # no keys: the API stays open
        assert http.get("/v1/pipelines", headers={"X-API-Key": "scrape-1"}).status_code == 200


def test_a_stored_key_turns_authentication_on(tmp_path: Path, store_url: str) -> None:
    from starlette.testclient import TestClient

    from bud.server.app import create_app

    settings = Settings(data_dir=tmp_path / "d", database_url=store_url)
    with TestClient(create_app(settings), base_url="http://localhost") as h:
        assert h.get("/v1/pipelines").status_code == 200
        key = h.post("/v1/api-keys", json={"scope": "admin"}).json()["key"]
        assert h.get("/v1/pipelines").status_code == 401
        assert h.get("/v1/pipelines", headers={"X-API-Key": key}).status_code == 200


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BUD_API_KEYS": " "}, "api_keys (BUD_API_KEYS): an empty key"),
        ({"BUD_API_KEYS": "good,,other"}, "an empty key"),
    ],
)
def test_blank_keys_are_refused_at_start(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli_app.app, ["serve", "--port", "18411"])
    assert result.exit_code == 1
    assert message in result.stderr


def test_blank_keys_in_a_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bud.yaml"
    config.write_text('api_keys: ["ok-key-1", ""]\n')
    with pytest.raises(ValueError, match=r"api_keys\[1\]: an API key must be a non-empty string"):
        Settings.load(config, env={})


# -- bud keys ---------------------------------------------------------------------------------


@pytest.fixture
def cli(app_client: BudClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    http = app_client._http
    monkeypatch.setattr(
        cli_app, "make_client", lambda url, api_key: BudClient(http_client=http, api_key=api_key)
    )
    yield CliRunner()


def test_bud_keys_through_the_api(cli: CliRunner, app_client: BudClient) -> None:
    made = cli.invoke(
        cli_app.app, ["--api-key", ADMIN, "keys", "create", "--scope", "read", "--name", "ci"]
    )
    assert made.exit_code == 0, made.output
    key = re.search(r"bud_\S+", made.stdout)
    assert key is not None and "cannot be shown again" in made.stdout
    assert call(app_client, "GET", "/v1/pipelines", key.group(0)).status_code == 200
    listed = cli.invoke(cli_app.app, ["--api-key", ADMIN, "keys", "list", "--json"])
    items = json.loads(listed.stdout)
    assert [(k["name"], k["scope"]) for k in items] == [("ci", "read")]
    gone = cli.invoke(cli_app.app, ["--api-key", ADMIN, "keys", "revoke", items[0]["id"]])
    assert gone.exit_code == 0 and "Revoked" in gone.stdout
    assert call(app_client, "GET", "/v1/pipelines", key.group(0)).status_code == 401
    refused = cli.invoke(cli_app.app, ["--api-key", key.group(0), "keys", "list"])
    assert refused.exit_code == 1 and "not valid" in refused.stderr


def test_bud_keys_directly_on_the_store_while_no_server_runs(
    tmp_path: Path, store_url: str
) -> None:
    from starlette.testclient import TestClient

    from bud.server.app import create_app

    runner = CliRunner()
    where = ["--database-url", store_url]
    made = runner.invoke(cli_app.app, ["keys", "create", "--scope", "admin", "--json", *where])
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    listed = json.loads(runner.invoke(cli_app.app, ["keys", "list", "--json", *where]).stdout)
    assert [k["id"] for k in listed] == [created["id"]]
    settings = Settings(data_dir=tmp_path / "d", database_url=store_url)
    with TestClient(create_app(settings), base_url="http://localhost") as http:
        assert http.get("/v1/pipelines").status_code == 401
        assert http.get("/v1/pipelines", headers={"X-API-Key": created["key"]}).status_code == 200
    missing = runner.invoke(cli_app.app, ["keys", "list", "--data-dir", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "no Bud Pipelines store there" in missing.stderr
