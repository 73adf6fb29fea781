"""A real ``bud serve``: JSON logs with request ids and access lines; bad settings refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import BudProcess

pytestmark = pytest.mark.e2e


def test_json_logs_carry_the_request_id_of_each_request(data_dir: Path) -> None:
    with BudProcess(data_dir, args=["--log-format", "json", "--log-level", "info"]) as server:
        answer = httpx.get(f"{server.url}/v1/pipelines", headers={"X-Request-ID": "trace-1234"})
        assert answer.headers["x-request-id"] == "trace-1234"
        missing = httpx.get(f"{server.url}/v1/executions/exe_nope")
        made = missing.headers["x-request-id"]
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = [r for r in records if r["logger"] == "bud.access"]
    mine = [r for r in access if r.get("request_id") == "trace-1234"]
    assert [(r["method"], r["path"], r["status"]) for r in mine] == [("GET", "/v1/pipelines", 200)]
    assert mine[0]["level"] == "info" and mine[0]["duration_ms"] >= 0
    assert [r["status"] for r in access if r.get("request_id") == made] == [404]
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's lines too


def _serve(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bud",
            "serve",
            "--data-dir",
            str(data_dir),
            "--port",
            "18233",
            *args,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    done.stderr = " ".join(done.stderr.split())  # the terminal's line wrapping aside
    return done


def test_bad_settings_are_refused_at_start_with_their_name(tmp_path: Path) -> None:
    refused = _serve(tmp_path / "d", {"BUD_WORKERS": "abc"})
    assert refused.returncode == 1
    assert "BUD_WORKERS: 'abc' is not an integer" in refused.stderr
    config = tmp_path / "bud.yaml"
    config.write_text("api_key: k-1\n")
    refused = _serve(tmp_path / "d", {}, "--config", str(config))
    assert refused.returncode == 1
    assert "unknown setting 'api_key' (did you mean 'api_keys'?)" in refused.stderr
    assert "Traceback" not in refused.stderr
    refused = _serve(tmp_path / "d", {}, "--log-format", "xml")
    assert refused.returncode == 2
    assert "--log-format" in refused.stderr
