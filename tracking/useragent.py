"""Device type and a coarse client name from a User-Agent; IPs truncated before they are stored.

Mail clients fetch images through proxies (Gmail's GoogleImageProxy, Apple Mail Privacy Protection
prefetches everything): those opens say little about a person (EC-COM-026), so they are named as
such and marked ``machine`` in the event data.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from user_agents import parse

# Substrings of proxies and mail clients that ua-parser does not name usefully.
_MAIL_CLIENTS = (
    ("GoogleImageProxy", "Gmail image proxy", True),
    ("YahooMailProxy", "Yahoo Mail proxy", True),
    ("Outlook-iOS", "Outlook (iOS)", False),
    ("Microsoft Outlook", "Outlook", False),
    ("ms-office", "Outlook", False),
    ("Thunderbird", "Thunderbird", False),
)


@lru_cache(maxsize=2048)
def classify(user_agent: str) -> tuple[str, str, bool]:
    """(device_type, client, machine) for a User-Agent string."""
    if not user_agent:
        return "unknown", "", False
    for needle, name, machine in _MAIL_CLIENTS:
        if needle in user_agent:
            return ("desktop" if not machine else "unknown"), name, machine
    ua = parse(user_agent[:512])
    if ua.is_bot:
        return "unknown", ua.browser.family[:64], True
    device = "tablet" if ua.is_tablet else "mobile" if ua.is_mobile else "desktop" if ua.is_pc else "unknown"
    client = ua.browser.family
    if client in ("Mobile Safari UI/WKWebView", "Apple Mail") or (
            ua.os.family in ("iOS", "Mac OS X") and "AppleWebKit" in user_agent and "Safari" not in user_agent):
        client = "Apple Mail"
    return device, client[:64], False


def truncate_ip(ip: str) -> str | None:
    """IPv4 to its /24, IPv6 to its /48: enough for coarse geography, not a person's address."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
