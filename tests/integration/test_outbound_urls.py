"""URLs the server will call are checked when they are saved, by the outbound policy's rules."""

from __future__ import annotations

import pytest

from bud import BudClient, ValidationError
from tests.support import HttpReceiver


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://files.example.com/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("http://127.0.0.1:8010/v1/secrets/x", "this server itself"),
        ("http://localhost:8010/v1/pipelines", "this server itself"),
    ],
)
def test_channel_urls_are_checked_when_saved(app_client: BudClient, url: str, words: str) -> None:
    for channel in ("webhook", "slack"):
        with pytest.raises(ValidationError, match=words) as info:
            app_client.channels.set(channel, url=url)
        assert info.value.status_code == 422 and info.value.details["path"] == "url"
    assert list(app_client.channels.list()) == []


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "http:// or https://"),
        ("ftp://cluster.example.com/health", "http:// or https://"),
        ("http://[fd00::1]/health", "private"),
        ("http://127.0.0.1:8010/healthz", "this server itself"),
    ],
)
def test_health_urls_are_checked_when_saved(app_client: BudClient, url: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as info:
        app_client.clusters.create("Edge", id="cluster_edge", health_url=url)
    assert info.value.details["path"] == "health_url"
    app_client.clusters.create("Edge", id="cluster_edge")
    with pytest.raises(ValidationError, match=words):
        app_client.clusters.update("cluster_edge", health_url=url)
    assert app_client.clusters.get("cluster_edge").health_url is None


def test_allowed_receivers_and_public_names_are_saved(app_client: BudClient) -> None:
    with HttpReceiver() as receiver:  # loopback, allowed by the tests' outbound_allow
        app_client.channels.set("webhook", url=f"{receiver.url}/hook")
        app_client.clusters.create("Edge", id="cluster_edge", health_url=f"{receiver.url}/h")
    # A name that does not resolve (yet) is saved; it is checked again on every request.
    app_client.channels.set("slack", url="https://hooks.slack.com/services/T0/B0/XXXX")
    assert {c.name for c in app_client.channels.list()} == {"slack", "webhook"}
