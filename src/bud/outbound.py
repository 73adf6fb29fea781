"""One policy for every request the server sends out (``http_request``, webhook and Slack
channels, cluster health probes).

- Only ``http`` and ``https`` URLs with a host.
- The destination is checked on the addresses its name resolves to, not on the name: loopback,
  private, link-local and other non-public addresses are refused unless the ``outbound_allow``
  setting lists them (CIDRs, addresses or exact host names).
- The server's own address (its port on loopback, its bind address, or any local address when
  it listens on every interface) is always refused, whatever ``outbound_allow`` says; only the
  demo's Slack inbox (``/demo/slack`` under ``bud serve --demo``) is exempt.
- The connection goes to the address that was checked (the name is not resolved twice, so a
  DNS answer cannot change in between), and every redirect is a new request, checked again.

Requests go through :func:`client`, an ``httpx.AsyncClient`` whose transport applies the
policy; :meth:`OutboundPolicy.check` applies the same rules when a URL is saved. See the
"Security" section of docs/operations.md.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from bud.errors import ValidationError

__all__ = ["OutboundPolicy", "OutboundRefused", "client", "validate_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SCHEMES = ("http", "https")
DEMO_INBOX = "/demo/slack"
RESOLVE_TIMEOUT_SECONDS = 10.0
_UNSPECIFIED = ("", "0.0.0.0", "::", "[::]")


class OutboundRefused(httpx.RequestError):
    """The outbound policy refuses this destination (it is an httpx transport-level error,
    so code that handles a failed request handles a refused one)."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = frozenset()
    self_host: str = "127.0.0.1"
    self_port: int | None = None
    self_paths: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Any) -> OutboundPolicy:
        """The policy of a :class:`bud.settings.Settings` (None: nothing private allowed)."""
        if settings is None:
            return cls(self_port=None)
        return _policy_for(
            tuple(getattr(settings, "outbound_allow", ()) or ()),
            str(settings.host),
            int(settings.port),
            bool(getattr(settings, "demo", False)),
        )

    @classmethod
    def build(
        cls, allow: Iterable[str], *, host: str, port: int | None, demo: bool = False
    ) -> OutboundPolicy:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(
            allow_networks=tuple(networks),
            allow_hosts=frozenset(hosts),
            self_host=host,
            self_port=port,
            self_paths=frozenset({DEMO_INBOX}) if demo else frozenset(),
        )

    # -- the rules ------------------------------------------------------------------------
    def check_static(self, url: httpx.URL | str, what: str = "URL") -> httpx.URL:
        """Scheme and host; a literal address is checked here, a name when it is resolved."""
        try:
            parsed = httpx.URL(url) if isinstance(url, str) else url
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise OutboundRefused(f"{what} is not a valid URL: {exc}") from None
        if parsed.scheme not in SCHEMES:
            raise OutboundRefused(
                f"{what} must be an http:// or https:// URL, got scheme "
                f"{parsed.scheme or '(none)'!r}"
            )
        if not parsed.host:
            raise OutboundRefused(f"{what} has no host")
        address = _literal(parsed.host)
        if address is not None:
            self._check_address(parsed, address, what)
        return parsed

    async def resolve(self, url: httpx.URL, what: str = "URL") -> list[IPAddress]:
        """The addresses a request to ``url`` may use, every one checked (refused if any is)."""
        self.check_static(url, what)
        literal = _literal(url.host)
        if literal is not None:
            return [literal]
        port = url.port or (443 if url.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                infos = await loop.getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise httpx.ConnectError(f"cannot resolve {url.host}: {exc}") from None
        addresses: list[IPAddress] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if address not in addresses:
                addresses.append(address)
        for address in addresses:
            self._check_address(url, address, what)
        if not addresses:
            raise httpx.ConnectError(f"cannot resolve {url.host}: no address")
        return addresses

    async def check(self, url: str, what: str = "URL") -> None:
        """Save-time check: the same rules; a name that does not resolve (yet) passes."""
        parsed = self.check_static(url, what)
        try:
            await self.resolve(parsed, what)
        except httpx.ConnectError:
            return

    def _check_address(self, url: httpx.URL, address: IPAddress, what: str) -> None:
        address = _unmapped(address)
        port = url.port or (443 if url.scheme == "https" else 80)
        if self._is_self(address, port):
            if url.path in self.self_paths:
                return
            raise OutboundRefused(
                f"{what} points at this server itself ({_show(address)}:{port}); "
                "requests to the server's own API are always refused"
            )
        if url.host.lower().rstrip(".") in self.allow_hosts:
            return
        if any(address in network for network in self.allow_networks):
            return
        if not address.is_global or address.is_multicast:
            raise OutboundRefused(
                f"{what} resolves to {_show(address)}, a {_kind(address)} address; "
                "add it to the outbound_allow setting (BUD_OUTBOUND_ALLOW) to allow it"
            )

    def _is_self(self, address: IPAddress, port: int) -> bool:
        if self.self_port is None or port != self.self_port:
            return False
        if address.is_loopback or address.is_unspecified:
            return True
        bind = self.self_host.strip()
        if bind in _UNSPECIFIED:
            # Listening on every interface: any address of this machine reaches the server.
            return not address.is_global or address in _local_addresses()
        literal = _literal(bind)
        return literal is not None and _unmapped(literal) == address


@functools.lru_cache(maxsize=64)
def _policy_for(allow: tuple[str, ...], host: str, port: int, demo: bool) -> OutboundPolicy:
    """Policies are immutable: one per distinct set of settings, built once."""
    return OutboundPolicy.build(allow, host=host, port=port, demo=demo)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _show(address: IPAddress) -> str:
    return f"[{address}]" if address.version == 6 else str(address)


def _kind(address: IPAddress) -> str:
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_private:
        return "private"
    if address.is_multicast:
        return "multicast"
    return "non-public"


def _local_addresses() -> set[IPAddress]:
    found: set[IPAddress] = set()
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return found
    for info in infos:
        literal = _literal(str(info[4][0]))
        if literal is not None:
            found.add(_unmapped(literal))
    return found


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks each request (each redirect hop too) and connects to the checked address."""

    def __init__(self, policy: OutboundPolicy, inner: httpx.AsyncBaseTransport | None = None):
        self.policy = policy
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            addresses = await self.policy.resolve(request.url, "the URL")
        except OutboundRefused as exc:
            raise OutboundRefused(
                f"{exc} ({request.method} {_redacted(request.url)})", request=request
            ) from None
        address = addresses[0]
        extensions = dict(request.extensions)
        if request.url.scheme == "https" and _literal(request.url.host) is None:
            extensions.setdefault("sni_hostname", request.url.host)
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=str(address)),
            headers=request.headers,  # keeps the original Host header
            stream=request.stream,
            extensions=extensions,
        )
        return await self.inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _redacted(url: httpx.URL) -> str:
    return str(url.copy_with(userinfo=b"", query=None, fragment=None))


def client(settings: Any, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that applies the outbound policy of ``settings``."""
    policy = (
        settings if isinstance(settings, OutboundPolicy) else OutboundPolicy.from_settings(settings)
    )
    return httpx.AsyncClient(transport=GuardedTransport(policy), **kwargs)


async def validate_url(settings: Any, url: Any, path: str) -> None:
    """Save-time check of a URL the server will call: ValidationError (422) naming ``path``."""
    if url is None:
        return
    if not isinstance(url, str):
        raise ValidationError(f"{path}: must be a URL string", details={"path": path})
    try:
        await OutboundPolicy.from_settings(settings).check(url, path)
    except OutboundRefused as exc:
        raise ValidationError(str(exc), details={"path": path}) from None
