"""Outbound requests to addresses our customers give us: never to our own network (SSRF).

A destination is resolved once, every address is checked (private, loopback, link-local, the
cloud metadata range, multicast, reserved, unspecified; IPv4-mapped IPv6 is judged as the IPv4 it
maps), and the connection is then made to the checked address, so DNS cannot be switched between
check and use (rebinding). COMMS_OUTBOUND_ALLOWED_NETWORKS lists CIDRs that are permitted anyway
(tests use loopback).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from comms import errors


def _allowed_networks() -> list[ipaddress._BaseNetwork]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in settings.COMMS_OUTBOUND_ALLOWED_NETWORKS]


def address_is_public(ip: ipaddress._BaseAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in _allowed_networks() if net.version == ip.version):
        return True
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


def split_http_url(url: str) -> SplitResult:
    """`url` split, if it is a well-formed absolute http(s) URL; else ValidationFailed (a 400).

    urlsplit raises ValueError for a bad IPv6 literal and ``.port`` for a port that is not a number
    in 0-65535 (RFC 3986 section 3.2.3 allows any digits; sockets do not): both are the caller's
    malformed input, not our error. Whether the host is *safe* is resolve_safe's question (a 422).
    """
    if not isinstance(url, str) or not url or len(url) > 2048 or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise errors.ValidationFailed("The URL is empty, too long, or contains spaces or control characters.",
                                      details={"field": "url"})
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError when out of range or not a number
    except ValueError as exc:
        raise errors.ValidationFailed(f"'{url[:80]}' is not a valid URL: {exc}.", details={"field": "url"}) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.ValidationFailed(f"'{url[:80]}' is not an absolute http(s) URL.", details={"field": "url"})
    return parts


def resolve_safe(url: str) -> tuple[str, int, str]:
    """(host, port, checked IP) for `url`, or UnsafeDestination (a malformed URL, e.g. a redirect's
    Location with a bad port, is also no destination we will connect to)."""
    try:
        parts = split_http_url(url)
    except errors.ValidationFailed as exc:
        raise errors.UnsafeDestination(exc.message, details={"url": url[:200]}) from None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise errors.UnsafeDestination(f"'{parts.hostname}' does not resolve.", details={"host": parts.hostname}) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    blocked = [str(ip) for ip in addresses if not address_is_public(ip)]
    if not addresses or blocked:
        raise errors.UnsafeDestination(
            f"'{parts.hostname}' resolves to a non-public address ({', '.join(blocked) or 'none'}).",
            details={"host": parts.hostname, "addresses": blocked},
        )
    return parts.hostname, port, str(addresses[0])
