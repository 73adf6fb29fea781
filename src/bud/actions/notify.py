"""The ``notification`` action: deliver a message through Slack, a JSON webhook or email."""

from __future__ import annotations

import asyncio
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import httpx

from bud import outbound
from bud.actions.base import ActionContext, ActionError, RetryPolicy, action
from bud.actions.http import (
    MASK,
    check_http_url,
    describe_exception,
    is_retryable_status,
    redact_url,
)

CHANNELS = ["slack", "webhook", "email"]
PRIORITIES = ["low", "normal", "high", "urgent"]
DELIVERY_TIMEOUT_SECONDS = 10.0
DEFAULT_FROM = "bud@localhost"
SLACK_PREFIX = {"high": ":warning:", "urgent": ":rotating_light:"}
X_PRIORITY = {"high": "2 (High)", "urgent": "1 (Highest)"}
# What to tell a user who asked for a channel nobody configured.
HOW_TO_CONFIGURE = {
    "slack": 'set BUD_SLACK_WEBHOOK_URL or PUT /v1/channels/slack {"url": ...}',
    "webhook": 'set BUD_WEBHOOK_URL or PUT /v1/channels/webhook {"url": ...}',
    "email": "set BUD_SMTP_URL (and BUD_SMTP_FROM) or PUT /v1/channels/email "
    '{"smtp_url": ..., "from": ...}',
}
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@action(
    "notification",
    description="Send a message through a configured channel: slack, webhook or email.",
    params={
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {"type": "string"},
            "channel": {"type": "string", "enum": CHANNELS},
            "recipients": {
                "type": "array",
                "items": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
                "minItems": 1,
            },
            "priority": {"type": "string", "enum": PRIORITIES, "default": "normal"},
            "title": {"type": "string"},
        },
        "additionalProperties": False,
    },
    outputs={
        "channel": "the channel used",
        "delivered": "true once the receiver accepted the message",
        "target": "where it went: the URL (credentials masked) or the recipients",
        "status_code": "the receiver's HTTP status (null for email)",
        "recipients": "email only: the recipients",
    },
    timeout_seconds=30,
    retry=RetryPolicy(
        max_attempts=3, backoff_seconds=1.0, backoff_multiplier=2.0, max_backoff_seconds=30.0
    ),
    idempotent=False,
)
async def notification_action(ctx: ActionContext, params: dict[str, Any]) -> dict[str, Any]:
    """Send a message through a configured channel: slack, webhook or email."""
    channel = choose_channel(params, ctx.channels)
    config = ctx.channels.get(channel) or {}
    note = _Notice(
        message=str(params["message"]),
        priority=str(params.get("priority") or "normal"),
        title=params.get("title"),
    )
    if channel == "email":
        return await _send_email(ctx, config, note, params.get("recipients") or [])
    if channel == "slack":
        payload: dict[str, Any] = {"text": slack_text(note)}
        headers: dict[str, str] = {}
    else:
        payload = {
            "message": note.message,
            "title": note.title,
            "priority": note.priority,
            "channel": "webhook",
            "execution_id": ctx.execution_id,
            "step_id": ctx.step_id,
            "event": ctx.event,
            "idempotency_key": ctx.idempotency_key,
        }
        headers = {"Idempotency-Key": ctx.idempotency_key}
    return await _post(ctx, channel, str(config["url"]), payload, headers, note)


class _Notice:
    """The parts of a notification every channel renders."""

    def __init__(self, message: str, priority: str, title: Any) -> None:
        self.message = message
        self.priority = priority
        self.title: str | None = str(title) if title else None

    def record(
        self,
        channel: str,
        target: str,
        *,
        delivered: bool,
        status_code: int | None,
        error: str | None,
    ) -> dict[str, Any]:
        return {
            "channel": channel,
            "target": target,
            "status": "delivered" if delivered else "failed",
            "status_code": status_code,
            "error": error,
            "message": self.message,
            "priority": self.priority,
            "title": self.title,
        }


def is_configured(channel: str, config: dict[str, Any] | None) -> bool:
    if not config:
        return False
    return bool(config.get("smtp_url") if channel == "email" else config.get("url"))


def choose_channel(params: dict[str, Any], channels: dict[str, dict[str, Any]]) -> str:
    """Explicit channel, else email when recipients are given, else the first configured one."""
    channel = params.get("channel")
    if not channel:
        if params.get("recipients"):
            channel = "email"
        else:
            channel = next((c for c in CHANNELS if is_configured(c, channels.get(c))), None)
            if channel is None:
                raise ActionError(
                    "no notification channel is configured: set BUD_SLACK_WEBHOOK_URL, "
                    "BUD_WEBHOOK_URL or BUD_SMTP_URL, or PUT /v1/channels/<slack|webhook|email>",
                    retryable=False,
                )
    if channel not in CHANNELS:
        raise ActionError(
            f"unknown notification channel {channel!r}; use one of {', '.join(CHANNELS)}",
            retryable=False,
        )
    if not is_configured(channel, channels.get(channel)):
        raise ActionError(
            f"notification channel {channel!r} is not configured: {HOW_TO_CONFIGURE[channel]}",
            retryable=False,
        )
    return str(channel)


def slack_text(note: _Notice) -> str:
    """Slack mrkdwn: a priority emoji, the title in bold on its own line, then the message."""
    body = f"*{note.title}*\n{note.message}" if note.title else note.message
    prefix = SLACK_PREFIX.get(note.priority)
    return f"{prefix} {body}" if prefix else body


def email_subject(note: _Notice) -> str:
    # Header values may not contain line breaks, and a message often does.
    if note.title:
        return " ".join(note.title.split())
    subject = " ".join(note.message.split())[:60].rstrip()
    return f"[{note.priority}] {subject}" if note.priority != "normal" else subject


async def _record(ctx: ActionContext, record: dict[str, Any]) -> None:
    if ctx.deliveries is None:
        return
    try:
        await ctx.deliveries(record)
    except Exception as exc:
        # The message may already be out; failing the step here would send it again on retry.
        ctx.log(
            f"could not record the {record['channel']} delivery: {describe_exception(exc)}",
            "warning",
        )


async def _post(
    ctx: ActionContext,
    channel: str,
    url: str,
    payload: dict[str, Any],
    headers: dict[str, str],
    note: _Notice,
) -> dict[str, Any]:
    target = redact_url(url)
    check_http_url(url, f"the {channel} channel URL")
    status_code: int | None = None
    retryable = True
    try:
        async with outbound.client(ctx.settings, timeout=DELIVERY_TIMEOUT_SECONDS) as client:
            response = await client.post(url, json=payload, headers=headers)
        status_code = response.status_code
        if response.is_success:
            error = None
        else:
            snippet = " ".join(response.text[:200].split())
            error = f"HTTP {status_code}" + (f" ({snippet})" if snippet else "")
            retryable = is_retryable_status(status_code)
    except httpx.HTTPError as exc:
        error = describe_exception(exc)
        retryable = not isinstance(
            exc, outbound.OutboundRefused | httpx.UnsupportedProtocol | httpx.LocalProtocolError
        )
    except httpx.InvalidURL as exc:
        error = describe_exception(exc)
        retryable = False
    await _record(
        ctx,
        note.record(channel, target, delivered=error is None, status_code=status_code, error=error),
    )
    if error is not None:
        raise ActionError(f"{channel} delivery to {target} failed: {error}", retryable=retryable)
    ctx.log(f"notification delivered via {channel} to {target} (HTTP {status_code})")
    return {"channel": channel, "delivered": True, "target": target, "status_code": status_code}


async def _send_email(
    ctx: ActionContext, config: dict[str, Any], note: _Notice, recipients: list[str]
) -> dict[str, Any]:
    if not recipients:
        raise ActionError(
            "the email channel needs params.recipients (a list of addresses)", retryable=False
        )
    recipients = [str(r) for r in recipients]
    target = ", ".join(recipients)
    server = _SmtpServer.parse(str(config["smtp_url"]))
    sender = str(config.get("from") or DEFAULT_FROM)

    msg = EmailMessage()
    try:
        msg["From"] = sender
        msg["To"] = target
        msg["Subject"] = email_subject(note)
        msg["Date"] = formatdate(localtime=True)
        # The same Message-ID on every attempt lets mail systems drop duplicates from our retries.
        local = _MSGID_UNSAFE.sub("-", f"{ctx.execution_id}.{ctx.step_id}")
        domain = _MSGID_UNSAFE.sub("-", sender.rpartition("@")[2]) or "localhost"
        msg["Message-ID"] = f"<{local}@{domain}>"
        msg["X-Bud-Execution-Id"] = ctx.execution_id
        if note.priority in X_PRIORITY:
            msg["X-Priority"] = X_PRIORITY[note.priority]
            msg["Importance"] = "high"
        msg.set_content(
            f"{note.message}\n\n--\nBud Pipelines: execution "
            f"{ctx.execution_id}, step {ctx.step_id}\n"
        )
    except ValueError as exc:
        # e.g. a line break in the configured From address: retrying cannot help.
        raise ActionError(f"could not build the email: {exc}", retryable=False) from None

    error: str | None = None
    retryable = True
    refused: dict[str, Any] = {}
    try:
        refused = await asyncio.to_thread(server.send, msg, sender, recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        error = "all recipients refused: " + "; ".join(
            f"{addr}: {code} {_text(reply)}" for addr, (code, reply) in exc.recipients.items()
        )
        retryable = any(code < 500 for code in codes)
    except smtplib.SMTPResponseException as exc:
        error = f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}"
        retryable = exc.smtp_code < 500
    except smtplib.SMTPNotSupportedError as exc:
        error = describe_exception(exc)
        retryable = False
    except ssl.SSLCertVerificationError as exc:
        error = describe_exception(exc)
        retryable = False
    except (smtplib.SMTPException, OSError) as exc:
        error = describe_exception(exc)

    partial = error is None and bool(refused)
    if partial:
        # Partly delivered counts as delivered: a retry would mail those who already got it.
        error = "some recipients refused: " + "; ".join(
            f"{addr}: {code} {_text(reply)}" for addr, (code, reply) in refused.items()
        )
    delivered = error is None or partial
    await _record(
        ctx, note.record("email", target, delivered=delivered, status_code=None, error=error)
    )
    if not delivered:
        raise ActionError(
            f"email delivery to {target} via {server.shown} failed: {error}", retryable=retryable
        )
    ctx.log(
        f"notification emailed to {target} via {server.shown}" + (f" ({error})" if error else ""),
        "warning" if error else "info",
    )
    outputs: dict[str, Any] = {
        "channel": "email",
        "delivered": True,
        "target": target,
        "status_code": None,
        "recipients": recipients,
    }
    if refused:
        outputs["refused"] = sorted(refused)
    return outputs


def _text(reply: Any) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class _SmtpServer:
    """Where and how to send mail, from ``smtp[s]://[user[:password]@]host[:port][?starttls=1]``."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        implicit_tls: bool,
        starttls: bool,
        user: str | None,
        password: str,
        shown: str,
    ) -> None:
        self.host = host
        self.port = port
        self.implicit_tls = implicit_tls
        self.starttls = starttls
        self.user = user
        self.password = password
        self.shown = shown

    @classmethod
    def parse(cls, url: str) -> _SmtpServer:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ActionError(
                f"the email channel's smtp_url is not valid: {exc}", retryable=False
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ActionError(
                "the email channel's smtp_url must look like smtp://[user:password@]host[:port] "
                f"or smtps://...; got {redact_url(url)}",
                retryable=False,
            )
        hostport = parts.netloc.rpartition("@")[2]
        shown = urlunsplit((scheme, hostport, "", "", ""))
        if parts.username:
            shown = urlunsplit((scheme, f"{unquote(parts.username)}:{MASK}@{hostport}", "", "", ""))
        flag = parse_qs(parts.query).get("starttls", [""])[0].lower()
        return cls(
            host=parts.hostname,
            port=port or (465 if scheme == "smtps" else 25),
            implicit_tls=scheme == "smtps",
            starttls=flag in ("1", "true", "yes", "on"),
            user=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password or ""),
            shown=shown,
        )

    def send(self, msg: EmailMessage, sender: str, recipients: list[str]) -> dict[str, Any]:
        """Blocking: connect, optionally secure and log in, send. Returns refused recipients."""
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=DELIVERY_TIMEOUT_SECONDS, context=context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=DELIVERY_TIMEOUT_SECONDS)
        with smtp:
            if self.starttls and not self.implicit_tls:
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password)
            refused = smtp.send_message(msg, from_addr=sender, to_addrs=recipients)
        return dict(refused)


NOTIFY_ACTIONS = [notification_action]
