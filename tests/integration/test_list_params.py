"""Every list endpoint answers 400 to a cursor it did not hand out and to an unknown status."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bud import BudClient

LISTS = [
    "/v1/pipelines",
    "/v1/event-triggers",
    "/v1/events",
    "/v1/executions",
    "/v1/deliveries",
    "/v1/models",
    "/v1/clusters",
    "/v1/deployments",
    "/v1/monitors",
]
LOG = {"steps": [{"id": "a", "action": "log", "params": {"message": "hi"}}]}


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.fixture
def http(app_client: BudClient) -> Any:
    return app_client._http


@pytest.mark.parametrize(
    "cursor", ["!!!", "not-a-cursor", "%%", b64("x' OR 1=1"), b64("a" * 65), "AAAA", "="]
)
def test_a_bad_cursor_is_a_400_on_every_list(http: Any, cursor: str) -> None:
    for path in LISTS:
        r = http.get(path, params={"cursor": cursor})
        assert r.status_code == 400, (path, cursor, r.text)
        assert r.json()["error"]["details"]["path"] == "cursor"


def test_handed_out_cursors_still_page(app_client: BudClient, http: Any) -> None:
    for i in range(3):
        app_client.pipelines.create(name=f"p{i}", definition=LOG)
        app_client.events.publish("model.added", {"model_id": f"m{i}"})
    for path in ("/v1/pipelines", "/v1/events"):
        first = http.get(path, params={"limit": 2}).json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        rest = http.get(path, params={"limit": 2, "cursor": first["next_cursor"]})
        assert rest.status_code == 200 and len(rest.json()["items"]) == 1
    assert len(list(app_client.pipelines.list())) == 3  # the SDK pages through cursors


@pytest.mark.parametrize("path", ["/v1/deployments", "/v1/executions"])
def test_an_unknown_status_filter_is_a_400(http: Any, path: str) -> None:
    r = http.get(path, params={"status": "exploded"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["details"]["path"] == "status" and "must be one of" in error["message"]
    assert http.get(path, params={"status": "failed"}).status_code == 200
