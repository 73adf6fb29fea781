"""Secrets never leak: not in the database files, the log, or any API answer, in any form.

Each secret is used the ways pipelines use them (in a log message, a URL query, a JSON body,
a header, transformed by filters, echoed back by the receiver, in a failure message, in a
notification, in a dry run), then everything recorded is scanned for every form of each raw
value: raw, URL-encoded, base64 and JSON-escaped, and upper-cased, lower-cased, reversed.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select

from bud.client import BudClient
from bud.crypto import KEY_FILE
from bud.settings import Settings
from bud.store import schema as t

API_SECRET = "Api Token/+=9xyz-Q7"  # characters that every encoding changes
ENV_SECRET = 'env-S3cret "quoted" é'
CHANNEL_TOKEN = "T0K3N-abcdef123456"


def spellings(raw: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, variant in (
        ("raw", raw),
        ("upper", raw.upper()),
        ("lower", raw.lower()),
        ("reversed", raw[::-1]),
    ):
        b = variant.encode()
        found.update(
            {
                f"{name}": variant,
                f"{name} quote": quote(variant, safe=""),
                f"{name} quote keeping /": quote(variant),
                f"{name} quote_plus": quote_plus(variant),
                f"{name} base64": base64.b64encode(b).decode(),
                f"{name} base64 unpadded": base64.b64encode(b).decode().rstrip("="),
                f"{name} urlsafe base64": base64.urlsafe_b64encode(b).decode(),
                f"{name} urlsafe base64 unpadded": base64.urlsafe_b64encode(b).decode().rstrip("="),
                f"{name} json": json.dumps(variant)[1:-1],
                f"{name} json utf-8": json.dumps(variant, ensure_ascii=False)[1:-1],
                f"{name} json twice": json.dumps(json.dumps(variant)[1:-1])[1:-1],
            }
        )
    return found


FORMS = {
    f"{label} {how}": text
    for label, raw in (("api secret", API_SECRET), ("env secret", ENV_SECRET))
    for how, text in spellings(raw).items()
} | {"channel token": CHANNEL_TOKEN}


def leaks(text: str) -> list[str]:
    return [name for name, form in FORMS.items() if form in text]


class Echo:
    """A receiver that answers with what it got: the path, the body, and the query base64'd."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                query = parse_qs(urlsplit(self.path).query).get("q", [""])[0]
                answer = json.dumps(
                    {
                        "path": self.path,
                        "body": body.decode(),
                        "auth": self.headers.get("authorization", ""),
                        "b64": base64.b64encode(query.encode()).decode(),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=dict(secrets={"envsecret": ENV_SECRET}))


def definition(echo: Echo) -> dict[str, Any]:
    s = "secrets.apitoken"
    return {
        "steps": [
            {
                "id": "say",
                "action": "log",
                "params": {"message": f"raw {{{{ {s} }}}} env {{{{ secrets.envsecret }}}}"},
            },
            {
                "id": "debug",
                "action": "log",
                "params": {
                    "level": "debug",
                    "message": (
                        f"{{{{ {s} | reverse }}}} {{{{ {s} | upper }}}} {{{{ {s} | lower }}}} "
                        f"{{{{ {s} | urlencode }}}} {{{{ secrets.envsecret | tojson }}}}"
                    ),
                },
            },
            {
                "id": "call",
                "action": "http_request",
                "params": {
                    "url": f"{echo.url}/echo?q={{{{ {s} | urlencode }}}}",
                    "method": "POST",
                    "headers": {"Authorization": f"Bearer {{{{ {s} }}}}"},
                    "json": {"t": "{{ secrets.envsecret }}", "u": f"{{{{ {s} }}}}"},
                },
            },
            {
                "id": "tell",
                "action": "notification",
                "params": {"channel": "webhook", "message": f"token {{{{ {s} }}}}"},
            },
            {
                "id": "boom",
                "action": "fail",
                "depends_on": ["say", "debug", "call", "tell"],
                "params": {"message": f"failed with {{{{ {s} }}}} / {{{{ secrets.envsecret }}}}"},
            },
        ]
    }


def database_text(app_client: BudClient, store_url: str, data_dir: Path) -> str:
    if store_url.startswith("sqlite"):
        db = Path(store_url.removeprefix("sqlite:///"))
        files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
        assert files
        return "\n".join(p.read_bytes().decode("utf-8", errors="replace") for p in files)
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return "\n".join(
                json.dumps([list(map(str, r)) for r in conn.execute(select(table)).all()])
                for table in t.metadata.sorted_tables
            )
    finally:
        engine.dispose()


def test_no_form_of_a_secret_is_stored_logged_or_answered(
    app_client: BudClient,
    echo: Echo,
    store_url: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    http = app_client._http
    app_client.secrets.set("apitoken", API_SECRET)
    app_client.channels.set("webhook", url=f"{echo.url}/hook/{CHANNEL_TOKEN}")
    pipeline = app_client.pipelines.create(name="leaky", definition=definition(echo))
    answers: list[str] = []
    dry = http.post(f"/v1/pipelines/{pipeline.id}/dry-run", json={})
    assert dry.status_code == 200
    answers.append(dry.text)
    execution = app_client.executions.wait(app_client.pipelines.run(pipeline.id).id, timeout=30)
    assert execution.status == "failed"
    steps = {s.step_id: s for s in execution.steps}
    assert {k: s.status for k, s in steps.items()} == {
        "say": "succeeded",
        "debug": "succeeded",
        "call": "succeeded",
        "tell": "succeeded",
        "boom": "failed",
    }
    # the receiver got the real values and echoed them in every encoding: recorded masked
    echoed = steps["call"].outputs["json"]
    assert echoed == {
        "path": "/echo?q=******",
        "body": '{"t":"******","u":"******"}',
        "auth": "Bearer ******",
        "b64": "******",
    }
    for path in (
        f"/v1/executions/{execution.id}",
        f"/v1/executions/{execution.id}/attempts",
        "/v1/executions",
        "/v1/deliveries",
        "/v1/secrets",
        "/v1/channels",
        f"/v1/pipelines/{pipeline.id}",
        "/v1/events",
        "/metrics",
    ):
        answer = http.get(path)
        assert answer.status_code == 200, (path, answer.text)
        answers.append(answer.text)
    assert "******" in answers[1]
    for text in answers:
        assert leaks(text) == [], text
    assert leaks(caplog.text) == [], caplog.text
    assert "HTTP Request" in caplog.text  # httpx's request lines are there, masked
    assert leaks(database_text(app_client, store_url, settings.data_dir)) == []
    key_file = settings.data_dir / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600


async def test_rows_stored_before_encryption_are_sealed_at_start(
    store_url: str, settings: Settings
) -> None:
    from starlette.testclient import TestClient

    from bud.crypto import SecretBox
    from bud.server.app import create_app
    from bud.store import open_repository

    async with open_repository(store_url) as repo, repo.transaction() as session:
        await session.put_secret("old", "legacy-plain-1", 1.0)
        await session.put_channel("webhook", {"url": "http://x/legacy"}, 1.0)
    key = Fernet.generate_key().decode()
    app = create_app(settings.model_copy(update=dict(database_url=store_url, secret_key=key)))
    with TestClient(app, base_url="http://localhost") as http:
        pipeline = http.post(
            "/v1/pipelines",
            json={
                "name": "p",
                "definition": {
                    "steps": [
                        {"id": "a", "action": "log", "params": {"message": "{{ secrets.old }}"}}
                    ]
                },
            },
        ).json()
        dry = http.post(f"/v1/pipelines/{pipeline['id']}/dry-run", json={}).json()
        assert dry["steps"][0]["params"] == {"message": "******"}  # readable, and masked
    async with open_repository(store_url) as repo, repo.read() as session:
        secret = next((r for r in await session.list_secrets() if r["name"] == "old"), None)
        channel = next((r for r in await session.list_channels() if r["name"] == "webhook"), None)
    assert secret is not None and channel is not None
    box = SecretBox(key)  # the key from the settings, not a generated one
    assert box.decrypt(secret["value"]) == "legacy-plain-1" and secret["value"] != "legacy-plain-1"
    assert box.open_config(channel["config"]) == {"url": "http://x/legacy"}
    assert not (settings.data_dir / KEY_FILE).exists()
