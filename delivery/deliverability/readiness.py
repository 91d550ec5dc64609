"""Gmail/Yahoo bulk-sender readiness (February 2024 rules) of a sending domain, from its last DNS check.

Google's "Email sender guidelines" and Yahoo's "Sender Best Practices" require of bulk senders: SPF and
DKIM both set up, a DMARC record (p=none at least) with the From domain aligned with SPF or DKIM,
one-click unsubscribe (RFC 8058) on marketing mail, and a user-reported spam rate under 0.3 %
(Google asks to stay under 0.1 %). The spam rate is the caller's (tracking's complaint statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

from delivery.deliverability.models import DomainCheck, SendingDomain

SPAM_LIMIT_PCT = 0.3
SPAM_TARGET_PCT = 0.1


@dataclass
class Requirement:
    name: str
    status: str  # ok | warn | fail | unknown
    detail: str


def _check(check: DomainCheck | None, name: str) -> dict:
    return (check.results.get(name) if check else None) or {"status": "unknown", "detail": "not checked yet"}


def domain_readiness(domain: SendingDomain, check: DomainCheck | None, *, spam: tuple[int, int] | None) -> list[Requirement]:
    """Each requirement with its status. `spam` is (complaints, sent) over 7 days, None when unknown."""
    spf, dkim, dmarc = _check(check, "spf"), _check(check, "dkim"), _check(check, "dmarc")
    both = [spf["status"], dkim["status"]]
    auth = "ok" if both == ["ok", "ok"] else ("fail" if "fail" in both else ("warn" if "warn" in both else "unknown"))
    out = [Requirement("SPF and DKIM", auth, f"SPF: {spf['detail']}; DKIM: {dkim['detail']}")]
    out.append(Requirement("DMARC p=none or stricter", dmarc["status"], dmarc["detail"]))
    # comms signs with d= the From domain or its parent (relaxed alignment, RFC 7489 §3.1.1); with adkim=s a
    # From on a subdomain would not align, which is why the policy's adkim is shown.
    if dkim["status"] == "ok" and dmarc["status"] == "ok":
        strict = "adkim=s" in dmarc["detail"]
        out.append(Requirement("DMARC alignment", "ok",
                               f"DKIM d={domain.domain} aligned with From {domain.domain}"
                               + (" (strict: send From this exact domain)" if strict else " (relaxed)")))
    else:
        out.append(Requirement("DMARC alignment", "fail" if "fail" in (dkim["status"], dmarc["status"]) else "unknown",
                               "needs a published DKIM key and a DMARC record"))
    out.append(Requirement("One-click unsubscribe", "ok",
                           "List-Unsubscribe + List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058) on every "
                           "non-critical email, signed by DKIM"))
    if not spam or not spam[1]:
        out.append(Requirement("Spam rate under 0.3 %", "unknown", "no mail sent from this domain in 7 days"))
    else:
        pct = spam[0] * 100.0 / spam[1]
        status = "ok" if pct < SPAM_TARGET_PCT else ("warn" if pct < SPAM_LIMIT_PCT else "fail")
        out.append(Requirement("Spam rate under 0.3 %", status,
                               f"{pct:.3f} % ({spam[0]} complaints of {spam[1]} sent, 7 days; aim under 0.1 %)"))
    return out


def ready(requirements: list[Requirement]) -> bool:
    return all(r.status == "ok" or (r.name.startswith("Spam") and r.status in ("ok", "warn", "unknown"))
               for r in requirements)
