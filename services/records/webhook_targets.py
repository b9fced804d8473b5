"""Where a webhook may be sent: URL form and the addresses its host resolves to (SSRF).

A target is checked when it is registered and again before every send, because what a
name resolves to can change. The send then goes to the address that was checked (the
`Host` header and TLS server name stay the registered host), so a second lookup between
the check and the connection cannot point it elsewhere.
"""

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from shared.problems import InvalidInput

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL may not be called; the message says why (it names the field for 422s)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: the address to connect to and what to tell the server."""

    url: str  # the registered URL
    connect_urls: tuple[str, ...]  # the same URL with each checked address as host
    host_header: str
    server_name: str | None  # TLS SNI and certificate name, for https


def _form(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError as exc:
        raise TargetRefused(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("only http and https URLs are allowed")
    if not parts.hostname:
        raise TargetRefused("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("credentials in the URL are not allowed; the secret signs instead")
    if parts.fragment:
        raise TargetRefused("a URL fragment is not allowed")
    return parts


# NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address reached.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def wrapped_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, by how it carries them: 6to4
    (2002::/16), Teredo (2001::/32: its server and its client, de-obfuscated) and NAT64
    (64:ff9b::/96). A router that translates or tunnels them reaches that IPv4 host."""
    if address.sixtofour is not None:
        return [("6to4", address.sixtofour)]
    if address.teredo is not None:
        server, client = address.teredo
        return [("Teredo", server), ("Teredo", client)]
    if address in NAT64:
        return [("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))]
    return []


def why_not_public(address: IpAddress) -> str | None:
    """The kind of address that may not be called, or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return why_not_public(address.ipv4_mapped)
    if isinstance(address, ipaddress.IPv6Address):
        wrapped = wrapped_ipv4(address)
        for how, inner in wrapped:
            kind = why_not_public(inner)
            if kind:
                return f"{how}-wrapped {kind}"
        if wrapped and address in NAT64:
            return None  # a public IPv4 host reached through the network's NAT64
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return kind
    if not address.is_global:  # shared address space (100.64/10), documentation ranges, ...
        return "reserved"
    return None


# Lookups are kept this long, so a burst of messages to one ERP costs one lookup, not
# one per message; the address connected to is still always one that was checked.
RESOLVE_TTL = 10.0
_resolved: dict[tuple[str, int], tuple[float, list[IpAddress]]] = {}


async def _resolve(host: str, port: int) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    cached = _resolved.get((host, port))
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    addresses = await _lookup(host, port)
    if len(_resolved) > 1000:
        _resolved.clear()
    _resolved[(host, port)] = (time.monotonic() + RESOLVE_TTL, addresses)
    return addresses


async def _lookup(host: str, port: int) -> list[IpAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=5
        )
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"the host {host!r} does not resolve") from exc
    addresses: list[IpAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefused(f"the host {host!r} does not resolve")
    return addresses


async def check_target(url: str, *, allow_private: bool, allow_http: bool) -> Target:
    """Refuse a URL whose form or any resolved address is not allowed; else how to call it.

    Plain `http` is refused unless `allow_http` (tests and a lab ERP): an invoice in clear
    text can be read and changed on the way, and its signature does not hide it."""
    parts = _form(url)
    if parts.scheme == "http" and not allow_http:
        raise TargetRefused("plain http is not allowed; use an https URL")
    host = parts.hostname
    assert host is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    if not allow_private:
        for address in addresses:
            kind = why_not_public(address)
            if kind:
                raise TargetRefused(f"the host {host!r} resolves to a {kind} address ({address})")
    connect_urls = []
    for address in addresses:
        literal = f"[{address}]" if address.version == 6 else str(address)
        netloc = f"{literal}:{parts.port}" if parts.port else literal
        connect_urls.append(parts._replace(netloc=netloc).geturl())
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return Target(
        url=url,
        connect_urls=tuple(connect_urls),
        host_header=host_header,
        server_name=host if parts.scheme == "https" else None,
    )


async def validate_for_registration(url: str, *, allow_private: bool, allow_http: bool) -> str:
    """The URL as stored, or 422 naming the `url` field."""
    try:
        await check_target(url, allow_private=allow_private, allow_http=allow_http)
    except TargetRefused as exc:
        raise InvalidInput("url", str(exc)) from exc
    return url
