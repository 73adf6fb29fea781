"""The notification action against a real local HTTP receiver and a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from bud.actions.base import ActionContext, ActionError
from bud.actions.notify import NOTIFY_ACTIONS, notification_action
from bud.errors import ValidationError
from bud.settings import Settings
from tests.support import RECEIVERS_ALLOW, AsyncHttpServer

# --- a real HTTP receiver -------------------------------------------------------------------


@pytest.fixture
async def receiver() -> AsyncIterator[AsyncHttpServer]:
    r = AsyncHttpServer()
    await r.start()
    yield r
    await r.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- a real SMTP server ---------------------------------------------------------------------


class MailStore:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "message": email.message_from_bytes(
                    envelope.original_content or b"", policy=email.policy.default
                ),
            }
        )
        return "250 OK"


def _check_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == b"bud"
        and auth_data.password == b"s3cret"
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[MailStore, int]]:
    store = MailStore()
    port = free_port()
    # No TLS in tests, so allow AUTH in the clear; AUTH is offered but not required.
    controller = Controller(
        store, hostname="127.0.0.1", port=port, authenticator=_check_login, auth_require_tls=False
    )
    controller.start()
    try:
        yield store, port
    finally:
        controller.stop()


@pytest.fixture
def mail(smtp: tuple[MailStore, int]) -> tuple[MailStore, int]:
    smtp[0].messages.clear()
    return smtp


# --- helpers --------------------------------------------------------------------------------


def make_ctx(
    params: dict[str, Any],
    channels: dict[str, dict[str, Any]],
    records: list[dict[str, Any]],
    event: dict[str, Any] | None = None,
) -> ActionContext:
    async def deliveries(record: dict[str, Any]) -> None:
        records.append(record)

    return ActionContext(
        execution_id="exe_1",
        step_id="notify",
        attempt=1,
        params=params,
        event=event,
        channels=channels,
        deliveries=deliveries,
        settings=Settings(outbound_allow=RECEIVERS_ALLOW),
    )


async def run(
    params: dict[str, Any],
    channels: dict[str, dict[str, Any]],
    records: list[dict[str, Any]] | None = None,
    event: dict[str, Any] | None = None,
) -> dict[str, Any]:
    notification_action.check_params(params, where="params", rendered=True)
    ctx = make_ctx(params, channels, records if records is not None else [], event)
    return await notification_action(ctx, params)


# --- slack ----------------------------------------------------------------------------------


async def test_slack_receives_the_spec_message(receiver: AsyncHttpServer) -> None:
    records: list[dict[str, Any]] = []
    url = f"{receiver.url}/hook"
    out = await run(
        {"message": "Deployed Llama-3.2-1B successfully", "channel": "slack"},
        {"slack": {"url": url}},
        records,
    )

    assert out == {"channel": "slack", "delivered": True, "target": url, "status_code": 200}
    assert receiver.requests[0]["method"] == "POST"
    assert receiver.requests[0]["path"] == "/hook"
    assert "Deployed Llama-3.2-1B successfully" in receiver.json()["text"]
    assert records == [
        {
            "channel": "slack",
            "target": url,
            "status": "delivered",
            "status_code": 200,
            "error": None,
            "message": "Deployed Llama-3.2-1B successfully",
            "priority": "normal",
            "title": None,
        }
    ]


async def test_slack_failure_alert_with_high_priority_and_title(receiver: AsyncHttpServer) -> None:
    message = "🚨 Deployment llama-prod failed: CUDA out of memory"
    await run(
        {"message": message, "channel": "slack", "priority": "high"},
        {"slack": {"url": receiver.url}},
    )
    text = receiver.json()["text"]
    assert message in text
    assert text.startswith(":warning:")

    await run(
        {"message": "disk full", "channel": "slack", "priority": "urgent", "title": "Cluster down"},
        {"slack": {"url": receiver.url}},
    )
    assert receiver.json()["text"] == ":rotating_light: *Cluster down*\ndisk full"


async def test_first_configured_channel_is_used_when_none_is_named(
    receiver: AsyncHttpServer,
) -> None:
    out = await run(
        {"message": "hi"},
        {"webhook": {"url": receiver.url}, "email": {"smtp_url": "smtp://127.0.0.1:1"}},
    )
    assert out["channel"] == "webhook"


# --- webhook --------------------------------------------------------------------------------


async def test_webhook_body_and_idempotency_key(receiver: AsyncHttpServer) -> None:
    event = {"id": "evt_1", "type": "model.added", "data": {"model_name": "Llama-3.2-1B"}}
    out = await run(
        {
            "message": "Model Llama-3.2-1B was added",
            "channel": "webhook",
            "title": "New model",
            "priority": "low",
        },
        {"webhook": {"url": f"{receiver.url}/in"}},
        event=event,
    )

    assert out["status_code"] == 200
    assert receiver.requests[0]["headers"]["idempotency-key"] == "exe_1:notify"
    assert receiver.requests[0]["headers"]["content-type"] == "application/json"
    assert receiver.json() == {
        "message": "Model Llama-3.2-1B was added",
        "title": "New model",
        "priority": "low",
        "channel": "webhook",
        "execution_id": "exe_1",
        "step_id": "notify",
        "event": event,
        "idempotency_key": "exe_1:notify",
    }


async def test_receiver_500_is_retryable_and_recorded_as_failed(receiver: AsyncHttpServer) -> None:
    receiver.fail_first = 1
    records: list[dict[str, Any]] = []
    url = f"{receiver.url}/hook"
    with pytest.raises(ActionError) as info:
        await run({"message": "hello", "channel": "webhook"}, {"webhook": {"url": url}}, records)

    assert info.value.retryable is True
    assert f"webhook delivery to {url} failed: HTTP 500" in info.value.message
    assert records[0]["status"] == "failed"
    assert records[0]["status_code"] == 500
    assert records[0]["error"].startswith("HTTP 500")

    # The retry succeeds and is recorded too.
    await run({"message": "hello", "channel": "webhook"}, {"webhook": {"url": url}}, records)
    assert [r["status"] for r in records] == ["failed", "delivered"]


async def test_receiver_4xx_is_not_retryable_but_429_is(receiver: AsyncHttpServer) -> None:
    receiver.status = 404
    with pytest.raises(ActionError) as info:
        await run({"message": "x", "channel": "slack"}, {"slack": {"url": receiver.url}})
    assert info.value.retryable is False
    assert "HTTP 404" in info.value.message

    receiver.status = 429
    with pytest.raises(ActionError) as info:
        await run({"message": "x", "channel": "slack"}, {"slack": {"url": receiver.url}})
    assert info.value.retryable is True


async def test_unreachable_receiver_is_retryable_and_recorded() -> None:
    records: list[dict[str, Any]] = []
    url = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(ActionError) as info:
        await run({"message": "x", "channel": "slack"}, {"slack": {"url": url}}, records)
    assert info.value.retryable is True
    assert info.value.message.startswith(f"slack delivery to {url} failed: ConnectError")
    assert records[0]["status"] == "failed"
    assert records[0]["status_code"] is None
    assert records[0]["error"]


async def test_credentials_in_url_are_masked(receiver: AsyncHttpServer) -> None:
    records: list[dict[str, Any]] = []
    port = receiver.url.rsplit(":", 1)[1]
    url = f"http://user:hunter2@127.0.0.1:{port}/hook?token=abc&x=1"
    out = await run({"message": "x", "channel": "webhook"}, {"webhook": {"url": url}}, records)
    assert "hunter2" not in out["target"] and "abc" not in out["target"]
    assert out["target"] == f"http://user:***@127.0.0.1:{port}/hook?token=***&x=1"
    assert records[0]["target"] == out["target"]
    assert receiver.requests[0]["headers"]["authorization"].startswith("Basic ")


# --- email ----------------------------------------------------------------------------------


async def test_email_with_the_spec_recipients_form(mail: tuple[MailStore, int]) -> None:
    store, port = mail
    records: list[dict[str, Any]] = []
    out = await run(
        {"message": "Model Llama-3.2-1B was added", "recipients": ["team@example.com"]},
        {"email": {"smtp_url": f"smtp://127.0.0.1:{port}", "from": "bud@localhost"}},
        records,
    )

    assert out == {
        "channel": "email",
        "delivered": True,
        "target": "team@example.com",
        "status_code": None,
        "recipients": ["team@example.com"],
    }
    [got] = store.messages
    assert got["from"] == "bud@localhost"
    assert got["to"] == ["team@example.com"]
    msg = got["message"]
    assert msg["Subject"] == "Model Llama-3.2-1B was added"
    assert msg["To"] == "team@example.com"
    assert msg["X-Priority"] is None
    assert "Model Llama-3.2-1B was added" in msg.get_content()
    assert records[0]["status"] == "delivered"
    assert records[0]["target"] == "team@example.com"


async def test_email_priority_subject_login_and_many_recipients(
    mail: tuple[MailStore, int],
) -> None:
    store, port = mail
    message = "Deployment llama-prod failed:\nCUDA out of memory on every node of the cluster now"
    out = await run(
        {
            "message": message,
            "recipients": ["a@example.com", "b@example.com"],
            "priority": "urgent",
        },
        {
            "email": {
                "smtp_url": f"smtp://bud:s3cret@127.0.0.1:{port}",
                "from": "alerts@bud.example",
            }
        },
    )
    assert out["target"] == "a@example.com, b@example.com"
    [got] = store.messages
    assert got["to"] == ["a@example.com", "b@example.com"]
    msg = got["message"]
    flat = " ".join(message.split())
    assert msg["Subject"] == f"[urgent] {flat[:60].rstrip()}"
    assert msg["X-Priority"].startswith("1")
    assert msg["Message-ID"] == "<exe_1.notify@bud.example>"


async def test_email_wrong_password_is_not_retryable(mail: tuple[MailStore, int]) -> None:
    _, port = mail
    records: list[dict[str, Any]] = []
    with pytest.raises(ActionError) as info:
        await run(
            {"message": "x", "recipients": ["a@example.com"]},
            {"email": {"smtp_url": f"smtp://bud:wrong@127.0.0.1:{port}"}},
            records,
        )
    assert info.value.retryable is False
    assert "SMTP 535" in info.value.message
    assert "wrong" not in info.value.message
    assert f"smtp://bud:***@127.0.0.1:{port}" in info.value.message
    assert records[0]["status"] == "failed"


async def test_email_unreachable_server_is_retryable() -> None:
    records: list[dict[str, Any]] = []
    with pytest.raises(ActionError) as info:
        await run(
            {"message": "x", "recipients": ["a@example.com"]},
            {"email": {"smtp_url": f"smtp://127.0.0.1:{free_port()}"}},
            records,
        )
    assert info.value.retryable is True
    assert info.value.message.startswith("email delivery to a@example.com via smtp://127.0.0.1:")
    assert records[0]["status"] == "failed"


async def test_email_without_recipients_names_the_param() -> None:
    with pytest.raises(ActionError) as info:
        await run(
            {"message": "x", "channel": "email"}, {"email": {"smtp_url": "smtp://127.0.0.1:1"}}
        )
    assert info.value.retryable is False
    assert "params.recipients" in info.value.message


# --- configuration and params ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "setting"),
    [
        ("slack", "BUD_SLACK_WEBHOOK_URL"),
        ("webhook", "BUD_WEBHOOK_URL"),
        ("email", "BUD_SMTP_URL"),
    ],
)
async def test_unconfigured_channel_names_the_setting(channel: str, setting: str) -> None:
    records: list[dict[str, Any]] = []
    params = {"message": "x", "channel": channel, "recipients": ["a@example.com"]}
    with pytest.raises(ActionError) as info:
        await run(params, {}, records)
    assert info.value.retryable is False
    assert info.value.message.startswith(
        f"notification channel '{channel}' is not configured: set {setting}"
    )
    assert f"PUT /v1/channels/{channel}" in info.value.message
    assert records == []


async def test_slack_message_is_exactly_as_documented() -> None:
    with pytest.raises(ActionError) as info:
        await run({"message": "x", "channel": "slack"}, {})
    assert info.value.message == (
        "notification channel 'slack' is not configured: "
        "set BUD_SLACK_WEBHOOK_URL or PUT /v1/channels/slack "
        '{"url": ...}'
    )


async def test_no_channel_configured_at_all() -> None:
    with pytest.raises(ActionError) as info:
        await run({"message": "x"}, {})
    assert info.value.retryable is False
    assert "BUD_SLACK_WEBHOOK_URL" in info.value.message
    assert "BUD_SMTP_URL" in info.value.message


def test_params_schema_rejects_bad_values() -> None:
    with pytest.raises(ValidationError) as info:
        notification_action.check_params(
            {"message": "x", "priority": "critical"}, where="steps[2].params", rendered=True
        )
    assert "steps[2].params.priority" in str(info.value)

    for bad in (
        {"channel": "slack"},
        {"message": "x", "channel": "sms"},
        {"message": "x", "recipients": ["not-an-address"]},
        {"message": "x", "extra": 1},
    ):
        with pytest.raises(ValidationError):
            notification_action.check_params(bad, where="params", rendered=True)
    # Before rendering, a template stands in for any value.
    notification_action.check_params(
        {"message": "x", "priority": "{{ event.priority }}"}, where="params", rendered=False
    )


def test_declaration() -> None:
    assert NOTIFY_ACTIONS[0] is notification_action and len(NOTIFY_ACTIONS) == 1
    assert notification_action.idempotent is False
    assert notification_action.timeout_seconds == 30
    assert notification_action.retry.max_attempts == 3
    assert notification_action.retry.max_backoff_seconds == 30.0
