"""The loopback default is safe against a browser: no DNS rebinding, no cross-site form posts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bud.settings import Settings

LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "hi"}}]}


def _client(settings: Settings, tmp_path: Path, **changes: Any) -> TestClient:
    from bud.server.app import create_app

    url = f"sqlite:///{tmp_path / 'bud.db'}"
    return TestClient(
        create_app(settings.model_copy(update={"database_url": url, **changes})),
        base_url="http://127.0.0.1",
    )


@pytest.fixture
def http(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with _client(settings, tmp_path) as client:
        yield client


@pytest.fixture
def trigger_id(http: TestClient) -> str:
    pipeline = http.post("/v1/pipelines", json={"name": "p", "definition": LOG}).json()
    trigger = http.post(
        "/v1/event-triggers", json={"pipeline_id": pipeline["id"], "event_type": "model.added"}
    ).json()
    return str(trigger["id"])


def test_a_cross_site_form_post_cannot_disable_a_trigger(http: TestClient, trigger_id: str) -> None:
    # What <form method=post action=http://127.0.0.1:8010/v1/...> on another site sends.
    form = {"content-type": "application/x-www-form-urlencoded", "origin": "https://evil.example"}
    r = http.post(f"/v1/event-triggers/{trigger_id}/disable", content=b"a=1", headers=form)
    assert r.status_code == 403 and r.json()["error"]["details"]["path"] == "headers.origin"
    # Without an Origin header (an old browser, a privacy setting) the content type still stops it.
    plain = {"content-type": "text/plain"}
    r = http.post(f"/v1/event-triggers/{trigger_id}/disable", content=b"x", headers=plain)
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = http.post(
        f"/v1/event-triggers/{trigger_id}/disable",
        content=b"a=1",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert r.status_code == 415
    # A body-less cross-origin fetch (no-cors) carries Origin.
    r = http.post(f"/v1/event-triggers/{trigger_id}/disable", headers={"origin": "null"})
    assert r.status_code == 403
    r = http.delete(f"/v1/event-triggers/{trigger_id}", headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert http.get(f"/v1/event-triggers/{trigger_id}").json()["enabled"] is True


def test_same_origin_json_and_plain_api_clients_pass(http: TestClient, trigger_id: str) -> None:
    # The web UI: same origin, JSON body (or none), Origin sent by the browser.
    origin = {"origin": "http://127.0.0.1:8010"}
    r = http.post(f"/v1/event-triggers/{trigger_id}/disable", headers=origin)
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = http.patch(f"/v1/event-triggers/{trigger_id}", json={"enabled": True}, headers=origin)
    assert r.status_code == 200 and r.json()["enabled"] is True
    # The SDK and curl: no Origin; JSON with a charset is JSON.
    r = http.post(
        "/v1/pipelines",
        content=b'{"name": "q", "definition": {"steps": [{"id": "a", "action": "log", '
        b'"params": {"message": "x"}}]}}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8010", "10.0.0.5:8010"])
def test_dns_rebinding_is_refused_by_the_host_check(http: TestClient, host: str) -> None:
    for method, path in (("GET", "/v1/pipelines"), ("GET", "/healthz"), ("GET", "/")):
        r = http.request(method, path, headers={"host": host})
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["details"]["path"] == "headers.host"


@pytest.mark.parametrize("host", ["127.0.0.1:8010", "localhost", "LOCALHOST:1", "[::1]:8010"])
def test_the_names_of_the_loopback_server_pass(http: TestClient, host: str) -> None:
    assert http.get("/healthz", headers={"host": host}).status_code == 200


def test_allowed_hosts_extends_the_names(settings: Settings, tmp_path: Path) -> None:
    with _client(settings, tmp_path, allowed_hosts=("bud.internal",)) as http:
        assert http.get("/healthz", headers={"host": "bud.internal:8010"}).status_code == 200
        assert http.get("/healthz", headers={"host": "other.internal"}).status_code == 400
        r = http.post(
            "/v1/pipelines",
            json={"name": "p", "definition": LOG},
            headers={"host": "127.0.0.1:8010", "origin": "http://bud.internal:8010"},
        )
        assert r.status_code == 201


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.attacker.example", False),
        ("127.0.0.1.nip.io", False),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.1", False),
        ("localhost.attacker.example", False),
    ],
)
def test_is_loopback_parses_the_address(host: str, loopback: bool) -> None:
    assert Settings(host=host).is_loopback is loopback
