"""The outbound policy alone, and through the http_request and notification actions with real
local receivers: schemes, private ranges, the allow list, redirects, the server's own address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bud.actions.base import ActionContext, ActionError
from bud.actions.http import http_request_action
from bud.actions.notify import notification_action
from bud.outbound import OutboundPolicy, OutboundRefused
from bud.settings import Settings
from tests.support import RECEIVERS_ALLOW, AsyncHttpServer


@pytest.fixture
async def receiver() -> AsyncIterator[AsyncHttpServer]:
    s = AsyncHttpServer()
    await s.start()
    yield s
    await s.close()


@pytest.fixture
async def own_api() -> AsyncIterator[AsyncHttpServer]:
    """Stands for the Bud server itself: the settings below say it listens on this port."""
    s = AsyncHttpServer()
    await s.start()
    yield s
    await s.close()


def port_of(server: AsyncHttpServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def strict(**kwargs: Any) -> OutboundPolicy:
    return OutboundPolicy.build(kwargs.pop("allow", ()), host="127.0.0.1", port=8010, **kwargs)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://files.example.com/x",
        "gopher://example.com/",
        "http:///no-host",
        "not a url",
    ],
)
def test_only_http_and_https_urls_with_a_host(url: str) -> None:
    with pytest.raises(OutboundRefused):
        strict().check_static(url)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:9999/", "loopback"),
        ("http://[::1]:9999/", "loopback"),
        ("http://[::ffff:127.0.0.1]:9999/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://192.168.0.10/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://0.0.0.0:9999/", "unspecified"),
        ("http://100.64.0.1/", "non-public"),
    ],
)
def test_non_public_addresses_are_refused_by_default(url: str, kind: str) -> None:
    with pytest.raises(OutboundRefused, match=f"a {kind} address"):
        strict().check_static(url)


def test_the_allow_list_takes_cidrs_addresses_and_names() -> None:
    policy = strict(allow=("10.0.0.0/8", "192.168.1.7", "intranet.example", " "))
    policy.check_static("http://10.200.0.1/x")
    policy.check_static("https://192.168.1.7/")
    with pytest.raises(OutboundRefused):
        policy.check_static("https://192.168.1.8/")
    assert "intranet.example" in policy.allow_hosts
    strict().check_static("https://93.184.215.14/")  # a public address needs no allowance


async def test_names_are_checked_on_the_addresses_they_resolve_to() -> None:
    with pytest.raises(OutboundRefused, match="loopback"):
        await strict().resolve(httpx.URL("http://localhost:9999/"))
    assert await strict(allow=("127.0.0.0/8", "::1")).resolve(httpx.URL("http://localhost:1/"))


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8010/v1/secrets/x", "http://localhost:8010/", "http://[::1]:8010/"]
)
async def test_the_servers_own_address_is_refused_even_when_allowed(url: str) -> None:
    policy = strict(allow=("127.0.0.0/8", "::1", "localhost"))
    with pytest.raises(OutboundRefused, match="this server itself"):
        await policy.resolve(httpx.URL(url))
    await policy.resolve(httpx.URL("http://127.0.0.1:8011/"))  # another port is someone else


def test_a_server_on_every_interface_refuses_its_port_on_any_local_address() -> None:
    policy = OutboundPolicy.build(("10.0.0.0/8",), host="0.0.0.0", port=8010)
    with pytest.raises(OutboundRefused, match="this server itself"):
        policy.check_static("http://10.1.2.3:8010/v1/pipelines")
    policy.check_static("http://10.1.2.3:8011/")


def test_only_the_demo_inbox_is_exempt_and_only_in_demo_mode() -> None:
    demo = OutboundPolicy.build((), host="127.0.0.1", port=8010, demo=True)
    demo.check_static("http://127.0.0.1:8010/demo/slack")
    with pytest.raises(OutboundRefused):
        demo.check_static("http://127.0.0.1:8010/v1/secrets/x")
    with pytest.raises(OutboundRefused):
        strict().check_static("http://127.0.0.1:8010/demo/slack")


def test_settings_build_the_policy() -> None:
    policy = OutboundPolicy.from_settings(
        Settings(port=8123, outbound_allow=("10.0.0.0/8", "db.internal"))
    )
    assert policy.self_port == 8123 and policy.allow_hosts == {"db.internal"}
    with pytest.raises(OutboundRefused):
        OutboundPolicy.from_settings(None).check_static("http://127.0.0.1:1/")


# -- through the actions, with real receivers ---------------------------------------------


def ctx(settings: Settings, params: dict[str, Any], **kwargs: Any) -> ActionContext:
    return ActionContext(
        execution_id="exe_1", step_id="s", attempt=1, params=params, settings=settings, **kwargs
    )


async def test_http_request_to_a_loopback_receiver_needs_the_allow_list(
    receiver: AsyncHttpServer,
) -> None:
    params = {"url": f"{receiver.url}/ping"}
    with pytest.raises(ActionError, match="loopback address") as info:
        await http_request_action(ctx(Settings(), params), params)
    assert info.value.retryable is False and receiver.requests == []
    allowed = Settings(outbound_allow=RECEIVERS_ALLOW)
    assert (await http_request_action(ctx(allowed, params), params))["status_code"] == 200


async def test_a_redirect_into_the_servers_own_api_is_refused(
    receiver: AsyncHttpServer, own_api: AsyncHttpServer
) -> None:
    settings = Settings(port=port_of(own_api), outbound_allow=RECEIVERS_ALLOW)
    receiver.routes["/go"] = (307, "text/plain", b"")
    receiver.route_headers["/go"] = {"Location": f"{own_api.url}/v1/secrets/pwned"}
    params = {"url": f"{receiver.url}/go", "method": "PUT", "json": {"value": "x"}}
    with pytest.raises(ActionError, match="this server itself") as info:
        await http_request_action(ctx(settings, params), params)
    assert info.value.retryable is False
    assert [r["path"] for r in receiver.requests] == ["/go"]
    assert own_api.requests == []
    # Straight at it: refused too, before any connection.
    direct = {"url": f"{own_api.url}/v1/secrets/pwned", "method": "PUT", "json": {}}
    with pytest.raises(ActionError, match="this server itself"):
        await http_request_action(ctx(settings, direct), direct)
    assert own_api.requests == []


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1/admin", "private"),
        ("ftp://files.example.com/x", "scheme"),
        ("file:///etc/passwd", "scheme"),
    ],
)
async def test_every_redirect_is_checked_again(
    receiver: AsyncHttpServer, location: str, words: str
) -> None:
    settings = Settings(outbound_allow=RECEIVERS_ALLOW)
    receiver.routes["/go"] = (302, "text/plain", b"")
    receiver.route_headers["/go"] = {"Location": location}
    params = {"url": f"{receiver.url}/go"}
    with pytest.raises(ActionError) as info:
        await http_request_action(ctx(settings, params), params)
    assert words in info.value.message and info.value.retryable is False


async def test_http_request_refuses_file_and_ftp_urls() -> None:
    for url in ("file:///etc/passwd", "ftp://files.example.com/x"):
        with pytest.raises(ActionError, match="http:// or https://"):
            await http_request_action(ctx(Settings(), {"url": url}), {"url": url})


async def test_webhook_and_slack_channels_follow_the_policy(
    receiver: AsyncHttpServer, own_api: AsyncHttpServer
) -> None:
    settings = Settings(port=port_of(own_api), outbound_allow=RECEIVERS_ALLOW)
    params = {"message": "hi", "channel": "webhook"}
    cases = [
        ("ftp://files.example.com/hook", "http:// or https://"),
        ("http://10.0.0.1/hook", "private address"),
        (f"{own_api.url}/v1/secrets/x", "this server itself"),
    ]
    for url, words in cases:
        channels = {"webhook": {"url": url}, "slack": {"url": url}}
        for channel in ("webhook", "slack"):
            p = {**params, "channel": channel}
            with pytest.raises(ActionError, match=words) as info:
                await notification_action(ctx(settings, p, channels=channels), p)
            assert info.value.retryable is False
    assert own_api.requests == []
    channels = {"webhook": {"url": f"{receiver.url}/hook"}}
    out = await notification_action(ctx(settings, params, channels=channels), params)
    assert out["delivered"] is True and receiver.requests[0]["path"] == "/hook"
