"""The one way the service calls out (OIDC discovery and JWKS, webhooks): public addresses only.

A call resolves the host itself, refuses the whole call when any answer is an address the service
must not reach (loopback, private, link-local, CGNAT, multicast, reserved, documentation, cloud
metadata; IPv4 and IPv6, and IPv4 inside IPv6), and connects to the first address it checked: the
URL is rewritten to that address while the Host header and TLS (SNI and certificate check) keep the
host name, so a second DNS answer (rebinding) is never used. Redirects are not followed, the body
is read up to a cap, and the whole call has one deadline. Proxies from the environment are ignored.

`WG_OUTBOUND_ALLOW_LOOPBACK=true` allows loopback (127.0.0.0/8, ::1) for local development and
tests; private ranges stay refused whatever the setting.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

import httpx
import msgspec

from wg_api import __version__

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

OUTBOUND_STATE_KEY = "outbound"
DEFAULT_TIMEOUT_SECONDS = 5.0
DEFAULT_MAX_BYTES = 1024 * 1024

CLOUD_METADATA = frozenset(
    ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
_CGNAT = IPv4Network("100.64.0.0/10")
_DOCUMENTATION = (
    IPv4Network("192.0.2.0/24"),
    IPv4Network("198.51.100.0/24"),
    IPv4Network("203.0.113.0/24"),
    IPv6Network("2001:db8::/32"),
    IPv6Network("3fff::/20"),
)
# IANA special-purpose ranges that the ipaddress module of older Pythons does not all know.
_SPECIAL = (
    IPv4Network("0.0.0.0/8"),
    IPv4Network("192.0.0.0/24"),
    IPv4Network("198.18.0.0/15"),
    IPv4Network("240.0.0.0/4"),
    IPv6Network("100::/64"),
    IPv6Network("2001::/23"),
    IPv6Network("fc00::/7"),
    IPv6Network("fec0::/10"),
)
_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")


class OutboundError(Exception):
    """The call was not made, or was cut short (refused address, timeout, too large, network)."""


class RefusedAddress(OutboundError):
    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address}, {reason}")
        self.host = host
        self.address = address
        self.reason = reason


def refusal(address: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why the service must not connect to `address`, or None when it may."""
    if isinstance(address, IPv6Address):
        if address in _SIX_TO_FOUR or address in _TEREDO or address in _NAT64_LOCAL:
            return "an IPv6 transition address (6to4, Teredo, local NAT64)"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = refusal(embedded, allow_loopback=allow_loopback)
            return f"{reason} inside an IPv6 address" if reason else None
    if address in CLOUD_METADATA:
        return "a cloud metadata address"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, IPv4Address) and address in _CGNAT:
        return "a shared (CGNAT) address"
    if any(address in network for network in _DOCUMENTATION if network.version == address.version):
        return "a documentation address"
    if address.is_private or (isinstance(address, IPv6Address) and address.is_site_local):
        return "a private address"
    special = any(address in net for net in _SPECIAL if net.version == address.version)
    if special or address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv4-mapped, IPv4-compatible or NAT64 address reaches."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return IPv4Address(address.packed[-4:])
    return None


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host`, in its order (tests replace this)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError as exc:
            raise OutboundError(f"the answer is not JSON: {exc}") from exc


class OutboundClient:
    """Calls to public addresses only; see the module docstring. One per process."""

    def __init__(
        self,
        *,
        allow_loopback: bool = False,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.allow_loopback = allow_loopback
        self._resolver = resolver
        # No kept-alive connections: a pooled connection is keyed by address, not by TLS name.
        transport = transport or httpx.AsyncHTTPTransport(
            verify=verify, limits=httpx.Limits(max_keepalive_connections=0), retries=0
        )
        self._http = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)

    async def _resolve(self, host: str, port: int) -> list[str]:
        resolver = self._resolver or resolve_host
        return await resolver(host, port)

    async def address_for(self, url: str | httpx.URL) -> IPAddress:
        """The checked address a call to `url` connects to; RefusedAddress when any is refused."""
        target = url if isinstance(url, httpx.URL) else _parse(url)
        host = target.host
        if not host:
            raise OutboundError("the URL has no host")
        try:
            candidates = [ip_address(host)]
        except ValueError:
            try:
                answers = await self._resolve(host, target.port or _default_port(target))
            except OSError as exc:
                raise OutboundError(f"{host} could not be resolved: {exc}") from exc
            candidates = []
            for answer in answers:
                try:
                    candidates.append(ip_address(answer))
                except ValueError as exc:
                    raise RefusedAddress(host, answer, "not an IP address") from exc
        if not candidates:
            raise OutboundError(f"{host} has no address")
        for candidate in candidates:
            if reason := refusal(candidate, allow_loopback=self.allow_loopback):
                raise RefusedAddress(host, str(candidate), reason)
        chosen = candidates[0]
        if isinstance(chosen, IPv6Address) and chosen.ipv4_mapped is not None:
            return chosen.ipv4_mapped
        return chosen

    async def get(
        self,
        url: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,  # noqa: ASYNC109 (one deadline for the call)
        headers: Mapping[str, str] | None = None,
    ) -> OutboundResponse:
        return await self.request("GET", url, max_bytes=max_bytes, timeout=timeout, headers=headers)

    async def post(
        self,
        url: str,
        *,
        content: bytes,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,  # noqa: ASYNC109 (one deadline for the call)
        headers: Mapping[str, str] | None = None,
        truncate: bool = False,
    ) -> OutboundResponse:
        return await self.request(
            "POST",
            url,
            content=content,
            max_bytes=max_bytes,
            timeout=timeout,
            headers=headers,
            truncate=truncate,
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,  # noqa: ASYNC109 (one deadline for the call)
        headers: Mapping[str, str] | None = None,
        truncate: bool = False,
    ) -> OutboundResponse:
        """One call; any status is answered (3xx too: redirects are the caller's business).
        A body over `max_bytes` is an error, or with `truncate` is cut there (webhooks only
        need the status)."""
        target = _parse(url)
        try:
            async with asyncio.timeout(timeout):
                address = await self.address_for(target)
                return await self._send(
                    method, target, address, content, headers, max_bytes, truncate=truncate
                )
        except TimeoutError as exc:
            raise OutboundError(f"{target.host} did not answer within {timeout} s") from exc
        except httpx.HTTPError as exc:
            raise OutboundError(f"{target.host}: {exc.__class__.__name__}: {exc}") from exc

    async def _send(
        self,
        method: str,
        target: httpx.URL,
        address: IPAddress,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        max_bytes: int,
        *,
        truncate: bool = False,
    ) -> OutboundResponse:
        extensions: dict[str, Any] = {}
        if target.scheme == "https" and not _is_ip_literal(target.host):
            extensions["sni_hostname"] = target.host
        request = self._http.build_request(
            method,
            target.copy_with(host=str(address)),
            content=content,
            headers={
                "User-Agent": f"wg-api/{__version__}",
                **(headers or {}),
                "Host": target.netloc.decode("ascii"),
            },
            extensions=extensions,
        )
        response = await self._http.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if not truncate and declared.isdigit() and int(declared) > max_bytes:
                raise OutboundError(f"{target.host} answered more than {max_bytes} bytes")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    if truncate:
                        del body[max_bytes:]
                        break
                    raise OutboundError(f"{target.host} answered more than {max_bytes} bytes")
        finally:
            await response.aclose()
        return OutboundResponse(
            status=response.status_code, headers=response.headers, body=bytes(body)
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _parse(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise OutboundError(f"not a URL: {exc}") from exc
    if target.scheme not in ("http", "https"):
        raise OutboundError("only http and https URLs are called")
    if target.userinfo:
        raise OutboundError("URLs with credentials are not called")
    return target


def _default_port(target: httpx.URL) -> int:
    return 443 if target.scheme == "https" else 80


def _is_ip_literal(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True
