"""A real ``bud serve`` at debug level: its log and its data directory hold no form of a secret."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from bud import BudClient
from tests.support import HttpReceiver, bud_server

pytestmark = pytest.mark.e2e

SECRET = "Srv Secret/+=77-zz"
API_KEY = "e2e-admin-key-4242"


def forms(raw: str) -> list[str]:
    found = []
    for v in (raw, raw.upper(), raw.lower(), raw[::-1]):
        found += [v, quote(v, safe=""), quote(v), quote_plus(v)]
        found += [base64.b64encode(v.encode()).decode().rstrip("=")]
        found += [base64.urlsafe_b64encode(v.encode()).decode().rstrip("=")]
    return found


def test_server_log_and_data_dir_hold_no_secret(tmp_path: Path) -> None:
    env = {"BUD_SECRET_FROMENV": SECRET, "BUD_API_KEYS": API_KEY}
    with (
        HttpReceiver() as receiver,
        bud_server(tmp_path, env=env, args=["--log-level", "debug"]) as server,
        BudClient(base_url=server.url, api_key=API_KEY) as client,
    ):
        client.secrets.set("stored", SECRET[::-1] + "-2")
        client.channels.set("webhook", url=f"{receiver.url}/hook/{SECRET}")
        pipeline = client.pipelines.create(
            name="leak",
            definition={
                "steps": [
                    {
                        "id": "say",
                        "action": "log",
                        "params": {
                            "level": "debug",
                            "message": "{{ secrets.fromenv }} {{ secrets.stored | upper }}",
                        },
                    },
                    {
                        "id": "call",
                        "action": "http_request",
                        "params": {
                            "url": f"{receiver.url}/x?t={{{{ secrets.fromenv | urlencode }}}}",
                            "method": "POST",
                        },
                    },
                    {
                        "id": "tell",
                        "action": "notification",
                        "params": {"channel": "webhook", "message": "{{ secrets.fromenv }}"},
                    },
                    {
                        "id": "boom",
                        "action": "fail",
                        "depends_on": ["say", "call", "tell"],
                        "params": {"message": "{{ secrets.stored }}"},
                    },
                ]
            },
        )
        done = client.executions.wait(client.pipelines.run(pipeline.id).id, timeout=30)
        assert done.status == "failed"
        assert len(receiver.requests) == 2  # the values were sent for real
    log = server.log.read_text()
    assert "HTTP Request: POST" in log  # httpx's request lines are in the log, masked
    assert API_KEY not in log
    for raw in (SECRET, SECRET[::-1] + "-2"):
        for form in forms(raw):
            assert form not in log, form
    data = b"".join(
        p.read_bytes() for p in server.data_dir.iterdir() if p.name.startswith("bud.db")
    )
    for raw in (SECRET, SECRET[::-1] + "-2"):
        for form in forms(raw):
            assert form.encode() not in data, form
    assert (server.data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
