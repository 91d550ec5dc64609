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
from urllib.parse import urlsplit

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


def resolve_safe(url: str) -> tuple[str, int, str]:
    """(host, port, checked IP) for `url`, or UnsafeDestination."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.UnsafeDestination(f"'{url[:80]}' is not an http(s) URL.")
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
