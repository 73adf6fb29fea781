"""Inbound webhooks over HTTP, in process: signatures, replays, timestamps, API keys.

The app runs on the in-memory fake and on SQLite with a manual clock (the timestamp window
moves with it, no sleeps).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bud.clock import ManualClock
from bud.server.app import create_app
from bud.services import Bud
from bud.settings import Settings
from bud.signing import sign
from bud.store import open_repository
from bud.store.memory import MemoryRepository

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

KEY = {"X-API-Key": "admin-key"}
PUSH = {"ref": "refs/heads/main", "repository": {"full_name": "acme/models"}}


class Hooked:
    def __init__(self, http: TestClient, clock: ManualClock) -> None:
        self.http = http
        self.clock = clock
        self.hook = http.post(
            "/v1/hooks", json={"event_type": "github.push", "name": "github"}, headers=KEY
        ).json()
        self.secret = self.hook["secret"]

    def deliver(
        self,
        data: Any = PUSH,
        *,
        delivery: str | None = "d-1",
        signature: str | None = None,
        timestamp: str | None = None,
        raw: bytes | None = None,
    ) -> Any:
        body = raw if raw is not None else json.dumps(data).encode()
        headers = {"content-type": "application/json"}
        headers["x-hub-signature-256"] = signature or sign(self.secret, body, timestamp)
        if signature == "":
            del headers["x-hub-signature-256"]
        if delivery is not None:
            headers["x-github-delivery"] = delivery
        if timestamp is not None:
            headers["x-bud-timestamp"] = timestamp
        return self.http.post(self.hook["url"], content=body, headers=headers)

    def events(self) -> list[dict[str, Any]]:
        page = self.http.get("/v1/events", params={"event_type": "github.push"}, headers=KEY)
        return list(page.json()["items"])


@pytest.fixture(params=["memory", "sqlite"])
def hooked(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hooked]:
    clock = ManualClock(1_767_600_000.0)
    repo = (
        MemoryRepository()
        if request.param == "memory"
        else open_repository(f"sqlite:///{tmp_path / 'bud.db'}")
    )
    settings = Settings(data_dir=tmp_path / "data", api_keys=("admin-key",), poll_seconds=0.2)
    core = Bud(settings, repo=repo, clock=clock)
    app = create_app(settings, bud=core, check_responses=True)
    with TestClient(app, base_url="http://localhost") as http:
        yield Hooked(http, clock)


def test_a_signed_delivery_becomes_an_event_without_an_api_key(hooked: Hooked) -> None:
    pipeline = hooked.http.post(
        "/v1/pipelines",
        json={"name": "on-push", "definition": {"steps": [{"id": "a", "action": "log",
              "params": {"message": "{{ event.data.repository.full_name }}"}}]}},
        headers=KEY,
    ).json()  # fmt: skip
    hooked.http.post(
        "/v1/event-triggers",
        json={"pipeline_id": pipeline["id"], "event_type": "github.push"},
        headers=KEY,
    )
    answer = hooked.deliver()
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["event_type"] == "github.push" and len(body["executions"]) == 1
    [event] = hooked.events()
    assert event["event_id"] == body["event_id"] and event["data"] == PUSH
    assert event["source"] == f"hook:{hooked.hook['id']}"


def test_a_bad_or_missing_signature_is_401_and_stores_nothing(hooked: Hooked) -> None:
    wrong = sign("whsec_not-the-secret", json.dumps(PUSH).encode())
    for signature in (wrong, "", "sha1=abc", "sha256=" + "0" * 64):
        answer = hooked.deliver(signature=signature, delivery=f"d-{signature[:8]}")
        assert answer.status_code == 401, (signature, answer.text)
        assert answer.json()["error"]["details"]["path"] == "headers.x-hub-signature-256"
    # Signed, then changed in transit.
    tampered = hooked.deliver(raw=b'{"ref": "evil"}', signature=sign(hooked.secret, b"{}"))
    assert tampered.status_code == 401
    assert hooked.events() == []


def test_a_replayed_delivery_stores_nothing_and_says_so(hooked: Hooked) -> None:
    assert hooked.deliver(delivery="abc").status_code == 202
    replay = hooked.deliver(delivery="abc")
    assert replay.status_code == 409
    error = replay.json()["error"]
    assert error["code"] == "duplicate_delivery" and error["details"]["delivery"] == "abc"
    assert hooked.deliver(delivery="def").status_code == 202  # a new delivery id is new
    assert len(hooked.events()) == 2
    missing = hooked.deliver(delivery=None)
    assert missing.status_code == 400 and "delivery id" in missing.json()["error"]["message"]


def test_a_timestamp_is_signed_and_must_be_recent(hooked: Hooked) -> None:
    now = int(hooked.clock.now())
    assert hooked.deliver(timestamp=str(now), delivery="t-1").status_code == 202
    # The same signature with another timestamp does not verify: the timestamp is signed.
    body = json.dumps(PUSH).encode()
    moved = hooked.deliver(
        timestamp=str(now + 1), signature=sign(hooked.secret, body, str(now)), delivery="t-2"
    )
    assert moved.status_code == 401
    stale = hooked.deliver(timestamp=str(now - 301), delivery="t-3")
    assert stale.status_code == 401
    assert stale.json()["error"]["details"]["path"] == "headers.x-bud-timestamp"
    hooked.clock.advance(299)
    assert hooked.deliver(timestamp=str(now), delivery="t-4").status_code == 202
    assert hooked.deliver(timestamp="yesterday", delivery="t-5").status_code == 401
    assert len(hooked.events()) == 2


def test_bodies_and_hooks_that_cannot_be_accepted(hooked: Hooked) -> None:
    not_object = hooked.deliver(data=[1, 2], delivery="b-1")
    assert not_object.status_code == 422 and not_object.json()["error"]["details"]["path"] == "body"
    unreadable = hooked.deliver(raw=b'{"ref": ', delivery="b-2")
    assert unreadable.status_code == 400
    unknown = hooked.http.post(
        "/v1/hooks/hook_missing", content=b"{}", headers={"content-type": "application/json"}
    )
    assert unknown.status_code == 404
    assert hooked.events() == []


def test_hook_management_needs_an_admin_key_and_valid_input(hooked: Hooked) -> None:
    assert hooked.http.get("/v1/hooks").status_code == 401
    assert hooked.http.post("/v1/hooks", json={"event_type": "x.y"}).status_code == 401
    listed = hooked.http.get("/v1/hooks", headers=KEY).json()["items"]
    assert [h["id"] for h in listed] == [hooked.hook["id"]] and "secret" not in listed[0]
    for body, path in (
        ({"event_type": "model.added"}, "event_type"),
        ({"event_type": "Not A Type"}, "event_type"),
        ({}, "event_type"),
        ({"event_type": "team.x", "schema": {"type": "nonsense"}}, "schema"),
    ):
        answer = hooked.http.post("/v1/hooks", json=body, headers=KEY)
        assert answer.status_code == 422, body
        assert answer.json()["error"]["details"]["path"] == path, answer.text
    typed = hooked.http.post(
        "/v1/hooks",
        json={"event_type": "team.deploy_requested", "schema": {"type": "object",
              "required": ["model"]}},
        headers=KEY,
    ).json()  # fmt: skip
    registered = hooked.http.get("/v1/event-types/team.deploy_requested", headers=KEY).json()
    assert registered["schema"]["required"] == ["model"]
    body = b'{"other": 1}'
    refused = hooked.http.post(
        typed["url"],
        content=body,
        headers={
            "content-type": "application/json",
            "x-hub-signature-256": sign(typed["secret"], body),
            "x-bud-delivery": "s-1",
        },
    )
    assert refused.status_code == 422  # the type's schema applies
    assert hooked.http.delete(f"/v1/hooks/{typed['id']}", headers=KEY).status_code == 204
    assert hooked.http.get(f"/v1/hooks/{typed['id']}", headers=KEY).status_code == 404


def test_the_secret_is_stored_encrypted(tmp_path: Path) -> None:
    import asyncio

    async def scenario() -> None:
        repo = MemoryRepository()
        core = Bud(Settings(data_dir=tmp_path / "data"), repo=repo, run_workers=False)
        await core.start()
        try:
            hook = await core.hooks.create("team.pinged")
            async with repo.read() as session:
                stored = await session.get_hook(hook["id"])
            assert stored is not None and hook["secret"] not in stored["secret"]
            assert stored["secret"].startswith("enc:v1:")
        finally:
            await core.stop()

    asyncio.run(scenario())
