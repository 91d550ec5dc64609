"""DNS checks of a sending domain (dnspython): SPF, DKIM, DMARC, MX, the return-path domain.

Each check answers ok / warn / fail / unknown. "unknown" means DNS did not answer (timeout, SERVFAIL,
no nameserver): it is never a crash and never counted as a regression, because the domain may be fine.
The resolver is configurable (COMMS_DNS_NAMESERVERS "ip[:port]", COMMS_DNS_TIMEOUT) so tests and
air-gapped installs point it at their own server.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from django.conf import settings

from delivery.deliverability.models import DkimKey, SendingDomain

OK, WARN, FAIL, UNKNOWN = "ok", "warn", "fail", "unknown"
SEVERITY = {OK: 0, UNKNOWN: 1, WARN: 2, FAIL: 3}
SPF_LOOKUP_LIMIT = 10  # RFC 7208 §4.6.4: more DNS-querying terms than this is a permerror
CHECKS = ("spf", "dkim", "dmarc", "mx", "return_path")


class DnsUnknown(Exception):
    """DNS gave no usable answer (timeout, SERVFAIL, no nameserver)."""


@dataclass
class CheckResult:
    status: str
    detail: str
    found: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def resolver() -> dns.resolver.Resolver:
    """A resolver for the configured nameservers ("ip" or "ip:port"), else the system's."""
    configured = settings.COMMS_DNS_NAMESERVERS
    res = dns.resolver.Resolver(configure=not configured)
    if configured:
        res.nameservers, ports = [], {}
        for entry in configured:
            host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            res.nameservers.append(host)
            ports[host] = int(port or 53)
        res.nameserver_ports = ports
    res.timeout = res.lifetime = settings.COMMS_DNS_TIMEOUT
    res.cache = None  # a check must see the zone as it is now
    return res


class Lookup:
    """Queries with the absent/unknown distinction the checks need."""

    def __init__(self, res: dns.resolver.Resolver | None = None):
        self.res = res or resolver()
        self.down: str = ""  # after a timeout the other queries of this run answer "unknown" at once

    def _answer(self, name: str, kind: str):
        if self.down:
            raise DnsUnknown(f"{kind} {name}: not asked, {self.down}")
        try:
            return self.res.resolve(name, kind, raise_on_no_answer=False, tcp=False)
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.exception.Timeout, dns.resolver.LifetimeTimeout) as exc:
            self.down = f"an earlier query timed out ({type(exc).__name__})"
            raise DnsUnknown(f"{kind} {name}: {type(exc).__name__}") from None
        except dns.resolver.NoNameservers as exc:
            raise DnsUnknown(f"{kind} {name}: {type(exc).__name__}") from None
        except dns.exception.DNSException as exc:
            raise DnsUnknown(f"{kind} {name}: {exc}") from None

    def txt(self, name: str) -> list[str]:
        answer = self._answer(name, "TXT")
        if answer is None or answer.rrset is None:
            return []
        # A TXT record's strings are concatenated without separator (RFC 7208 §3.3, RFC 6376 §3.6.2.2).
        return [b"".join(r.strings).decode(errors="replace") for r in answer.rrset]

    def records(self, name: str, kind: str) -> list[str]:
        answer = self._answer(name, kind)
        if answer is None or answer.rrset is None:
            return []
        return [r.to_text() for r in answer.rrset if dns.rdatatype.to_text(r.rdtype) == kind]


# -- SPF --------------------------------------------------------------------------------------------
_COUNTED = re.compile(r"^[+\-~?]?(include:|a\b|a:|a/|mx\b|mx:|mx/|ptr\b|ptr:|exists:|redirect=)", re.I)


def _spf_records(lookup: Lookup, domain: str) -> list[str]:
    return [t for t in lookup.txt(domain) if t.lower().startswith("v=spf1") and (len(t) == 6 or t[6] == " ")]


def _spf_walk(lookup: Lookup, domain: str, terms: list[str], seen: set[str], depth: int = 0) -> int:
    """DNS-querying terms in `domain`'s SPF tree (include and redirect followed), collecting every term."""
    records = _spf_records(lookup, domain)
    if len(records) != 1 or depth > SPF_LOOKUP_LIMIT:
        return 0
    count = 0
    for term in records[0].split()[1:]:
        terms.append(term.lower())
        if _COUNTED.match(term):
            count += 1
            target = term.split(":", 1)[1] if term.lower().lstrip("+-~?").startswith("include:") else (
                term.split("=", 1)[1] if term.lower().startswith("redirect=") else "")
            if target and target.lower() not in seen:
                seen.add(target.lower())
                count += _spf_walk(lookup, target, terms, seen, depth + 1)
    return count


def check_spf(lookup: Lookup, domain: str) -> CheckResult:
    records = _spf_records(lookup, domain)
    if not records:
        return CheckResult(FAIL, f"no SPF record (TXT v=spf1) at {domain}")
    if len(records) > 1:  # RFC 7208 §4.5: more than one record is a permerror
        return CheckResult(FAIL, f"{len(records)} SPF records at {domain}: merge them into one", records)
    terms: list[str] = []
    lookups = _spf_walk(lookup, domain, terms, {domain})
    needed = [m if ":" in m else f"include:{m}" for m in settings.COMMS_SPF_INCLUDES]
    missing = [m for m in needed if not any(t.lstrip("+").lower() == m.lower() for t in terms)]
    extra = {"lookups": lookups, "missing": missing}
    if lookups > SPF_LOOKUP_LIMIT:
        return CheckResult(FAIL, f"{lookups} DNS lookups (RFC 7208 allows {SPF_LOOKUP_LIMIT}): receivers answer "
                                 "permerror", records, extra)
    if missing:
        return CheckResult(FAIL, f"SPF does not include {', '.join(missing)} (the relay/ESP that sends)", records, extra)
    if any(t in ("+all", "all") for t in records[0].lower().split()):
        return CheckResult(WARN, "SPF ends in +all: anyone may send as this domain", records, extra)
    return CheckResult(OK, f"SPF present, {lookups} lookup(s)", records, extra)


# -- DKIM -------------------------------------------------------------------------------------------
def _tags(value: str) -> dict[str, str]:
    out = {}
    for part in value.split(";"):
        name, sep, val = part.partition("=")
        if sep:
            out[name.strip().lower()] = re.sub(r"\s+", "", val)
    return out


def check_dkim(lookup: Lookup, domain: SendingDomain) -> CheckResult:
    """Every live key published with our public key; the selectors seen matching go in extra["published"]."""
    keys = list(domain.keys.filter(state__in=["pending", "active", "retiring"]))
    if not keys:
        return CheckResult(FAIL, "no DKIM key: rotate to create one")
    problems, published, status = [], [], OK
    for key in keys:
        name = f"{key.selector}._domainkey.{domain.domain}"
        values = [v for v in lookup.txt(name) if "p=" in v]
        match = any(_tags(v).get("p") == key.public_key and _tags(v).get("k", "rsa") == key.algorithm for v in values)
        if match:
            published.append(key.selector)
            continue
        why = "not published" if not values else "published with another key"
        problems.append(f"{name} ({key.state}): {why}")
        level = FAIL if key.state == DkimKey.State.ACTIVE else WARN
        status = level if SEVERITY[level] > SEVERITY[status] else status
    detail = "; ".join(problems) or f"{len(published)} key(s) published and matching"
    return CheckResult(status, detail, published, {"published": published})


# -- DMARC ------------------------------------------------------------------------------------------
def check_dmarc(lookup: Lookup, domain: str) -> CheckResult:
    at = domain
    records = [t for t in lookup.txt(f"_dmarc.{domain}") if t.lower().startswith("v=dmarc1")]
    if not records and domain.count(".") > 1:  # RFC 7489 §6.6.3: fall back to the organisational domain
        at = ".".join(domain.split(".")[-2:])
        records = [t for t in lookup.txt(f"_dmarc.{at}") if t.lower().startswith("v=dmarc1")]
    if not records:
        return CheckResult(FAIL, f"no DMARC record at _dmarc.{domain}")
    if len(records) > 1:
        return CheckResult(FAIL, f"{len(records)} DMARC records at _dmarc.{at}: receivers ignore them all", records)
    tags = _tags(records[0])
    policy = tags.get("p", "").lower()
    extra = {"policy": policy, "adkim": tags.get("adkim", "r"), "aspf": tags.get("aspf", "r"), "at": at}
    if policy not in ("none", "quarantine", "reject"):
        return CheckResult(FAIL, f"DMARC record without a valid p= (found {policy or 'none given'!r})", records, extra)
    note = " (monitoring only: move to quarantine/reject once reports are clean)" if policy == "none" else ""
    return CheckResult(OK, f"p={policy}, adkim={extra['adkim']}, aspf={extra['aspf']}{note}", records, extra)


# -- MX and return path -----------------------------------------------------------------------------
def check_mx(lookup: Lookup, domain: str) -> CheckResult:
    found = lookup.records(domain, "MX")
    if not found:
        return CheckResult(WARN, f"no MX at {domain}: replies and bounces to the From domain cannot be delivered")
    return CheckResult(OK, f"{len(found)} MX record(s)", found)


def check_return_path(lookup: Lookup, domain: SendingDomain) -> CheckResult:
    bounce = domain.return_path or f"bounce.{domain.domain}"
    target = settings.COMMS_RETURN_PATH_CNAME.rstrip(".").lower()
    if target:
        found = lookup.records(bounce, "CNAME")
        if any(f.rstrip(".").lower() == target for f in found):
            return CheckResult(OK, f"{bounce} CNAME {target}", found)
        return CheckResult(FAIL, f"{bounce} should be a CNAME to {target}", found)
    found = lookup.records(bounce, "MX")
    if not found:
        return CheckResult(WARN, f"no MX at the return-path domain {bounce}: bounces cannot come back there")
    return CheckResult(OK, f"{bounce}: {len(found)} MX record(s)", found)


def domain_checks_run(domain: SendingDomain, *, lookup: Lookup | None = None) -> dict[str, CheckResult]:
    """Every check of `domain`; a check whose DNS did not answer is "unknown"."""
    lookup = lookup or Lookup()
    runs = {"spf": lambda: check_spf(lookup, domain.domain), "dkim": lambda: check_dkim(lookup, domain),
            "dmarc": lambda: check_dmarc(lookup, domain.domain), "mx": lambda: check_mx(lookup, domain.domain),
            "return_path": lambda: check_return_path(lookup, domain)}
    out = {}
    for name, run in runs.items():
        try:
            out[name] = run()
        except DnsUnknown as exc:
            out[name] = CheckResult(UNKNOWN, f"DNS did not answer: {exc}")
    return out


def worst(statuses) -> str:
    return max(statuses, key=SEVERITY.__getitem__, default=UNKNOWN)


def as_json(results: dict[str, CheckResult]) -> dict[str, dict]:
    return {name: asdict(result) for name, result in results.items()}
