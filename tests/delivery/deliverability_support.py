"""Shared by the deliverability tests: the loopback DNS fixture, publishing records, dkimpy's lookup."""

from __future__ import annotations

import dkim
import dns.exception
import dns.resolver
import pytest

from comms.devserver.standins.dns import DnsStandIn
from delivery.deliverability import dkim as signer
from delivery.deliverability.domains import sending_domain_records
from delivery.deliverability.models import SendingDomain


@pytest.fixture
def dns_server(settings):
    server = DnsStandIn().start()
    settings.COMMS_DNS_NAMESERVERS = [server.nameserver]
    settings.COMMS_DNS_TIMEOUT = 2.0
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_keys():
    signer.cache_clear()
    yield
    signer.cache_clear()


def publish(server: DnsStandIn, domain: SendingDomain) -> None:
    """Publish the records the API tells the customer to publish, exactly as given (the split strings)."""
    for record in sending_domain_records(domain):
        if record["type"] == "TXT":
            server.zones.add_txt(record["name"], record["strings"])
        elif record["type"] == "MX":
            server.zones.add_mx(record["name"], record["value"].split()[1])
        elif record["type"] == "CNAME":
            server.zones.add_cname(record["name"], record["value"])


def dnsfunc_for(server: DnsStandIn):
    """dkimpy's key lookup, answered by the loopback server (independent of our resolver code)."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port, res.lifetime = ["127.0.0.1"], server.port, 2.0

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        try:
            answer = res.resolve(name.decode().rstrip("."), "TXT")
        except dns.exception.DNSException:
            return None
        return b"".join(b"".join(r.strings) for r in answer)

    return lookup


def verify_all(raw: bytes, dnsfunc) -> list[tuple[bytes, bool]]:
    """(a= of each DKIM-Signature, verified) for every signature on `raw`."""
    d = dkim.DKIM(raw)
    sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
    out = []
    for i, sig in enumerate(sigs):
        alg = dkim.util.parse_tag_value(sig.replace(b"\r\n", b""))[b"a"]
        out.append((alg, dkim.DKIM(raw).verify(idx=i, dnsfunc=dnsfunc)))
    return out
