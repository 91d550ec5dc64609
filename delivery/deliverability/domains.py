"""Sending domains: validation, DKIM key generation/import, the DNS records to publish, rotation.

Keys are generated here (2048-bit RSA, RFC 8301 §3.2 wants at least 1024 and recommends 2048; and
Ed25519, RFC 8463) so a private key never travels; both are active at once (dual signing: verifiers
that do not know ed25519-sha256 ignore that signature, RFC 8463 §3 and RFC 6376 §6.1).
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from typing import Any

import idna
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from comms import errors
from comms.audit import audit_record
from delivery.deliverability.models import DkimKey, SendingDomain

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
LIVE = (DkimKey.State.PENDING, DkimKey.State.ACTIVE, DkimKey.State.RETIRING)


def domain_normalise(raw: Any) -> str:
    """`raw` as the A-label domain we store: lower case, IDNA-encoded (UTS #46), one trailing dot at most
    dropped (an absolute name, `example.com.`, is the same domain). Raises InvalidDomain otherwise."""
    if not isinstance(raw, str) or not raw.strip():
        raise errors.InvalidDomain("A domain name is required.", details={"field": "domain"})
    text = raw.strip()
    if text.endswith(".") and not text.endswith(".."):
        text = text[:-1]
    if "@" in text or "/" in text or " " in text or ":" in text:
        raise errors.InvalidDomain("Give the bare domain (example.com), not an address or URL.",
                                   details={"field": "domain", "value": raw[:300]})
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise errors.InvalidDomain(f"Not a valid domain name: {exc}.", details={"field": "domain", "value": raw[:300]})
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise errors.InvalidDomain("Not a valid domain name: it needs at least two labels of letters, digits and "
                                   "hyphens (at most 63 each, 253 in all).", details={"field": "domain",
                                                                                      "value": raw[:300]})
    if labels[-1].isdigit():
        raise errors.InvalidDomain("An IP address is not a domain.", details={"field": "domain", "value": raw[:300]})
    return ascii_name


# -- keys -------------------------------------------------------------------------------------------
def key_generate(algorithm: str) -> tuple[str, str]:
    """(private key in dkimpy's form, p= value). RSA: PEM and base64 DER SubjectPublicKeyInfo
    (RFC 6376 §3.6.1); Ed25519: base64 raw 32-byte seed and public key (RFC 8463 §4)."""
    if algorithm == DkimKey.Algorithm.RSA:
        return _rsa_parts(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    if algorithm == DkimKey.Algorithm.ED25519:
        return _ed_parts(ed25519.Ed25519PrivateKey.generate())
    raise errors.ValidationFailed(f"Unknown DKIM algorithm {algorithm!r}.", details={"field": "algorithm"})


def _rsa_parts(key: rsa.RSAPrivateKey) -> tuple[str, str]:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode()


def _ed_parts(key: ed25519.Ed25519PrivateKey) -> tuple[str, str]:
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(seed).decode(), base64.b64encode(public).decode()


def key_import(pem: Any) -> tuple[str, str, str]:
    """(algorithm, private key, p=) of a PEM private key brought from elsewhere (a migration from another
    sender keeps its published selector). Raises InvalidKey for anything else."""
    if not isinstance(pem, str) or "PRIVATE KEY" not in pem:
        raise errors.InvalidKey("Give the private key in PEM (-----BEGIN PRIVATE KEY-----).",
                                details={"field": "private_key"})
    try:
        key = serialization.load_pem_private_key(pem.strip().encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise errors.InvalidKey(f"The private key does not parse: {exc}", details={"field": "private_key"}) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:  # RFC 8301 §3.2: verifiers must not accept shorter keys
            raise errors.InvalidKey(f"An RSA key of {key.key_size} bits is too short (RFC 8301: 1024 at least, "
                                    "2048 recommended).", details={"field": "private_key"})
        return (DkimKey.Algorithm.RSA, *_rsa_parts(key))
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return (DkimKey.Algorithm.ED25519, *_ed_parts(key))
    raise errors.InvalidKey(f"DKIM keys are RSA or Ed25519, not {type(key).__name__}.", details={"field": "private_key"})


def _selector(domain: SendingDomain, algorithm: str) -> str:
    """c<yyyymm><r|e>[n]: dated so a rotation gets a fresh name, the letter tells the algorithm apart."""
    base = f"c{timezone.now():%Y%m}{'r' if algorithm == DkimKey.Algorithm.RSA else 'e'}"
    taken = set(DkimKey.objects.filter(domain=domain, selector__startswith=base).values_list("selector", flat=True))
    n, name = 1, base
    while name in taken:
        n += 1
        name = f"{base}{n}"
    return name


def _add_key(domain: SendingDomain, algorithm: str, state: str, *, private: str = "", public: str = "",
             selector: str = "") -> DkimKey:
    if not private:
        private, public = key_generate(algorithm)
    key = DkimKey(domain=domain, selector=selector or _selector(domain, algorithm), algorithm=algorithm,
                  state=state, public_key=public,
                  activated_at=timezone.now() if state == DkimKey.State.ACTIVE else None)
    key.private_key = private
    key.save()
    return key


# -- services ---------------------------------------------------------------------------------------
@transaction.atomic
def sending_domain_create(*, tenant: Any, domain: Any, actor: Any, private_key: str | None = None,
                          selector: str | None = None) -> SendingDomain:
    """A sending domain with its keys, active at once: a new domain has no older key to overlap with,
    and a receiver that cannot fetch an unpublished key treats the mail as unsigned (RFC 6376 §6.1.2),
    which is what it was before. With `private_key` (PEM) that key is imported under `selector`."""
    name = domain_normalise(domain)
    if selector is not None and not _LABEL.match(str(selector).lower()):
        raise errors.ValidationFailed("A selector is one DNS label (letters, digits, hyphens).",
                                      details={"field": "selector"})
    imported = key_import(private_key) if private_key is not None else None
    try:
        with transaction.atomic():
            row = SendingDomain.objects.create(tenant=tenant, domain=name, return_path=f"bounce.{name}")
    except IntegrityError:
        raise errors.DomainExists(f"{name} is already a sending domain of this tenant.",
                                  details={"domain": name}) from None
    if imported:
        _add_key(row, imported[0], DkimKey.State.ACTIVE, private=imported[1], public=imported[2],
                 selector=(selector or "").lower())
    else:
        for algorithm in settings.COMMS_DKIM_ALGORITHMS:
            _add_key(row, algorithm, DkimKey.State.ACTIVE)
    audit_record(actor=actor, action="sending_domain.created", target=row, tenant=tenant,
                 diff={"domain": name, "imported": bool(imported)})
    return row


@transaction.atomic
def sending_domain_delete(*, domain: SendingDomain, actor: Any) -> None:
    audit_record(actor=actor, action="sending_domain.deleted", target=domain, tenant=domain.tenant,
                 diff={"domain": domain.domain})
    domain.delete()


@transaction.atomic
def sending_domain_rotate(*, domain: SendingDomain, actor: Any) -> list[DkimKey]:
    """New keys, pending: they sign only once a DNS check sees them published (keys_promote)."""
    DkimKey.objects.filter(domain=domain, state=DkimKey.State.PENDING).update(state=DkimKey.State.RETIRED)
    algorithms = set(domain.keys.filter(state=DkimKey.State.ACTIVE).values_list("algorithm", flat=True))
    fresh = [_add_key(domain, algorithm, DkimKey.State.PENDING)
             for algorithm in sorted(algorithms or set(settings.COMMS_DKIM_ALGORITHMS))]
    audit_record(actor=actor, action="sending_domain.rotated", target=domain, tenant=domain.tenant,
                 diff={"pending": [k.selector for k in fresh]})
    return fresh


@transaction.atomic
def keys_promote(*, domain: SendingDomain, published: set[str], now=None) -> list[str]:
    """After a DNS check: pending keys seen published (matching) become active and the active keys of
    their algorithm start retiring (kept published for the overlap); overdue retiring keys retire."""
    now = now or timezone.now()
    promoted = []
    for key in domain.keys.select_for_update().filter(state=DkimKey.State.PENDING, selector__in=published):
        DkimKey.objects.filter(domain=domain, algorithm=key.algorithm, state=DkimKey.State.ACTIVE).update(
            state=DkimKey.State.RETIRING,
            retire_at=now + timedelta(hours=settings.COMMS_DKIM_ROTATION_OVERLAP_HOURS))
        key.state, key.activated_at = DkimKey.State.ACTIVE, now
        key.save(update_fields=["state", "activated_at"])
        promoted.append(key.selector)
    DkimKey.objects.filter(domain=domain, state=DkimKey.State.RETIRING, retire_at__lte=now).update(
        state=DkimKey.State.RETIRED)
    if promoted:
        audit_record(actor=None, action="sending_domain.keys_activated", target=domain, tenant=domain.tenant,
                     diff={"selectors": promoted})
    return promoted


# -- records ----------------------------------------------------------------------------------------
def txt_strings(value: str) -> list[str]:
    """A TXT value as the ≤255-byte character-strings a TXT record is made of (RFC 1035 §3.3.14);
    verifiers concatenate them (RFC 6376 §3.6.2.2)."""
    return [value[i:i + 255] for i in range(0, len(value), 255)] or [""]


def dkim_value(key: DkimKey) -> str:
    return f"v=DKIM1; k={key.algorithm}; p={key.public_key}"


def _record(kind: str, name: str, value: str, purpose: str, *, strings: list[str] | None = None) -> dict:
    zone = " ".join(f'"{s}"' for s in strings) if strings is not None else value
    return {"type": kind, "name": name, "value": value, "strings": strings, "zone_line": f"{name}. IN {kind} {zone}",
            "purpose": purpose}


def spf_value() -> str:
    includes = " ".join(m if ":" in m else f"include:{m}" for m in settings.COMMS_SPF_INCLUDES)
    return f"v=spf1 {includes} ~all".replace("  ", " ")


def sending_domain_records(domain: SendingDomain) -> list[dict]:
    """Every record to publish, copy-ready: DKIM TXT per live key, SPF, DMARC, the return-path record."""
    out = []
    for key in domain.keys.filter(state__in=LIVE):
        value = dkim_value(key)
        purpose = {"pending": "DKIM (new key: publish now, signs after the next check sees it)",
                   "active": "DKIM (signing)"}.get(key.state) or (
            f"DKIM (rotated out: keep until {key.retire_at:%Y-%m-%d %H:%M} UTC)")
        out.append({**_record("TXT", f"{key.selector}._domainkey.{domain.domain}", value, purpose,
                              strings=txt_strings(value)), "selector": key.selector, "state": key.state,
                    "algorithm": key.algorithm})
    spf = spf_value()
    out.append(_record("TXT", domain.domain, spf, "SPF (merge into an existing v=spf1 record: one per name)",
                       strings=txt_strings(spf)))
    rua = settings.COMMS_DMARC_RUA or f"dmarc-reports@{domain.domain}"
    dmarc = f"v=DMARC1; p=none; rua=mailto:{rua}; adkim=r; aspf=r"
    out.append(_record("TXT", f"_dmarc.{domain.domain}", dmarc,
                       "DMARC (start at p=none, move to quarantine/reject once reports are clean)",
                       strings=txt_strings(dmarc)))
    bounce = domain.return_path or f"bounce.{domain.domain}"
    if settings.COMMS_RETURN_PATH_CNAME:
        out.append(_record("CNAME", bounce, f"{settings.COMMS_RETURN_PATH_CNAME.rstrip('.')}.",
                           "Return-path (bounce) domain, aligned with From for SPF"))
    else:
        mx = (settings.COMMS_BOUNCE_MX or f"mx.{domain.domain}").rstrip(".")
        out.append(_record("MX", bounce, f"10 {mx}.", "Return-path (bounce) domain: where bounces go"))
        out.append(_record("TXT", bounce, spf, "SPF of the return-path domain (SPF checks the envelope sender)",
                           strings=txt_strings(spf)))
    return out
