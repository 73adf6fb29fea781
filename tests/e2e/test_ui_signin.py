"""The web UI signs in with an API key, keeps it for the tab only, and sends it as X-API-Key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bud import BudClient
from tests.support import BudProcess, need

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = "ui-admin-key-12345"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BudProcess]:
    env = {"BUD_API_KEYS": ADMIN}
    with BudProcess(tmp_path_factory.mktemp("signin") / "bud", env=env) as proc:
        yield proc


@pytest.fixture
def page(server: BudProcess) -> Iterator[Any]:
    need(CHROMIUM.exists(), "Chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(base_url=server.url)
        pg = context.new_page()
        pg.set_default_timeout(10_000)
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def test_sign_in_with_a_scoped_key(page: Any, server: BudProcess) -> None:
    from playwright.sync_api import expect

    with BudClient(base_url=server.url, api_key=ADMIN) as admin:
        admin.pipelines.create(
            name="Seen after sign-in",
            definition={"steps": [{"id": "a", "action": "log", "params": {"message": "m"}}]},
        )
        read_key = admin.request("POST", "/v1/api-keys", json={"scope": "read"})["key"]
    sent: list[str | None] = []
    page.on("request", lambda r: sent.append(r.headers.get("x-api-key")) if "/v1/" in r.url else 0)
    page.goto("/#/pipelines")
    form = page.locator("#sign-in")
    expect(form).to_be_visible()
    page.get_by_label("API key").fill("bud_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in")).to_be_visible()  # refused: asked again
    page.get_by_label("API key").fill(read_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Seen after sign-in", exact=True)).to_be_visible()
    assert read_key in sent
    stored = page.evaluate(
        "() => [sessionStorage.getItem('bud.apiKey'), localStorage.getItem('bud.apiKey')]"
    )
    assert stored == [read_key, None]  # for this tab only, never in localStorage
