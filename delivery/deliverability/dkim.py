"""DKIM signing (RFC 6376, Ed25519 per RFC 8463) of the bytes the SMTP vendor is about to send.

The signing domain (d=) is the From domain or the nearest parent that is a sending domain of the
message's tenant, so the signature is aligned with From under DMARC's relaxed alignment (RFC 7489
§3.1.1). Every active key of that domain signs (dual RSA + Ed25519 signatures). Keys are read from the
database on the engine's thread (``signing_keys_for``, cached briefly) and the signature is computed on
the sending thread (pure CPU, no database).

A From domain without a key is sent unsigned, never failed: a warning is logged and counted
(``comms_dkim_unsigned`` in /metrics), so a missing domain shows up without losing mail.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from django.conf import settings

from comms.redis import redis_client
from delivery.deliverability.models import DkimKey, SendingDomain

log = logging.getLogger(__name__)

# The header fields signed (RFC 6376 §5.4.1 lists From as required and these as recommended); From is
# signed twice ("oversigned"), so a second From added in transit breaks the signature (RFC 6376 §8.15).
# A listed field that is absent is signed as absent: it cannot be added later either.
SIGNED_HEADERS = (b"from", b"from", b"to", b"subject", b"date", b"message-id", b"list-unsubscribe",
                  b"list-unsubscribe-post", b"mime-version", b"content-type", b"reply-to")
CANONICALIZE = (b"relaxed", b"relaxed")  # survives header re-folding and trailing whitespace by relays
_ALG = {DkimKey.Algorithm.RSA: b"rsa-sha256", DkimKey.Algorithm.ED25519: b"ed25519-sha256"}
UNSIGNED_KEY = "comms:dkim:unsigned"  # Redis hash: From domain -> emails sent unsigned
CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class SigningKey:
    domain: bytes
    selector: bytes
    algorithm: bytes
    private: bytes


_cache: dict[Any, tuple[float, dict[str, list[SigningKey]]]] = {}
_cache_lock = threading.Lock()
_warned: dict[str, float] = {}


def cache_clear() -> None:
    """Forget the cached keys (after a rotation in this process, and in tests)."""
    with _cache_lock:
        _cache.clear()


def _tenant_keys(tenant_id: Any) -> dict[str, list[SigningKey]]:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(tenant_id)
    if hit and hit[0] > now:
        return hit[1]
    by_domain: dict[str, list[SigningKey]] = {d: [] for d in SendingDomain.objects.filter(tenant_id=tenant_id)
                                                           .values_list("domain", flat=True)}
    for key in DkimKey.objects.filter(domain__tenant_id=tenant_id, state=DkimKey.State.ACTIVE).select_related("domain"):
        try:
            private = key.private_key.encode()
        except ValueError:  # undecryptable (a dropped COMMS_ENCRYPTION_KEY): this key cannot sign
            log.error("DKIM key %s cannot be decrypted with the configured keys", key)
            continue
        by_domain[key.domain.domain].append(SigningKey(key.domain.domain.encode(), key.selector.encode(),
                                                       _ALG[key.algorithm], private))
    with _cache_lock:
        _cache[tenant_id] = (now + CACHE_SECONDS, by_domain)
    return by_domain


def from_domain(from_email: str) -> str:
    """The From header's domain, A-label and lower case ('' when there is none)."""
    domain = parseaddr(from_email)[1].rpartition("@")[2].strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode() if not domain.isascii() else domain
    except UnicodeError:
        return domain


def signing_keys_for(*, tenant_id: Any, from_email: str) -> list[SigningKey]:
    """The active keys of the From domain, else of its nearest parent sending domain (relaxed
    alignment); [] (and a counted warning) when none. On the engine's thread: it may read the database."""
    if not settings.COMMS_DKIM_SIGN:
        return []
    domain = from_domain(from_email)
    keys = _tenant_keys(tenant_id)
    labels = domain.split(".")
    for i in range(len(labels) - 1):  # example.co.uk → co.uk is tried too; it is never a tenant's domain
        found = keys.get(".".join(labels[i:]))
        if found:
            return found
    _count_unsigned(domain or "(none)")
    return []


_unsigned: dict[str, int] = {}
_unsigned_lock = threading.Lock()


def _count_unsigned(domain: str) -> None:
    """Counted in the process and written to Redis once per batch (``unsigned_flush``), not per email."""
    with _unsigned_lock:
        _unsigned[domain] = _unsigned.get(domain, 0) + 1
    now = time.monotonic()
    if _warned.get(domain, 0) < now:
        _warned[domain] = now + 600
        log.warning("email From %s sent without DKIM: no sending domain with an active key (add one under "
                    "/api/v1/sending-domains)", domain)


def unsigned_flush() -> None:
    """Add this process's unsigned counts to Redis (the SMTP provider calls it after each batch)."""
    with _unsigned_lock:
        pending = dict(_unsigned)
        _unsigned.clear()
    if not pending:
        return
    try:
        pipe = redis_client().pipeline(transaction=False)
        for domain, n in pending.items():
            pipe.hincrby(UNSIGNED_KEY, domain, n)
        pipe.execute()
    except Exception:  # a metric must never stop a send (Redis down is reported elsewhere)
        pass


def unsigned_counts() -> dict[str, int]:
    """Emails sent unsigned per From domain since Redis last lost its data (for /metrics)."""
    raw = redis_client().hgetall(UNSIGNED_KEY)
    return {k.decode(): int(v) for k, v in raw.items()}


@lru_cache(maxsize=256)
def _openssl_key(private: bytes) -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key(private, password=None)


class _Signer(dkim.DKIM):
    """dkimpy's signer with the RSA operation done by OpenSSL (cryptography): dkimpy computes RSA in pure
    Python, 6.2 ms of CPU per 2048-bit signature here against 0.3 ms (bench/dkim_cost.py). Everything
    else (canonicalisation, tag list, folding, the hashed header data) is dkimpy's own code path; only
    the final PKCS#1 v1.5 signature of the SHA-256 digest (RFC 6376 §3.3.1) is computed elsewhere."""

    openssl_key: rsa.RSAPrivateKey | None = None

    def gen_header(self, fields, include_headers, canon_policy, header_name, pk, standardize=False):
        if self.openssl_key is None or self.signature_algorithm != b"rsa-sha256":
            return super().gen_header(fields, include_headers, canon_policy, header_name, pk, standardize)
        # As dkimpy's DomainSigner.gen_header (dkimpy 1.1.8), RSA branch replaced.
        header_value = b"; ".join(b"=".join(x) for x in fields)
        header_value = dkim.fold(header_value, namelen=len(header_name), linesep=b"\r\n")
        header_value = dkim.RE_BTAG.sub(b"\\1", header_value)
        header = (header_name, b" " + header_value)
        h = dkim.HashThrough(self.hasher(), self.debug_content)
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(h, canon_policy, headers, include_headers, header, dict(fields))
        signature = self.openssl_key.sign(h.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        idx = [i for i in range(len(fields)) if fields[i][0] == b"b"][0]
        fields[idx] = (b"b", base64.b64encode(signature))
        header_value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
        return dkim.fold(header_value, namelen=len(header_name), linesep=self.linesep)


def sign(wire: bytes, keys: list[SigningKey]) -> bytes:
    """`wire` (RFC 5322 bytes, CRLF) with a DKIM-Signature per key in front. A key that fails to sign is
    logged and skipped: the mail goes out with the other signatures (or unsigned), never fails."""
    if not keys:
        return wire
    signatures = []
    for key in keys:
        try:
            signer = _Signer(wire, linesep=b"\r\n")
            if key.algorithm == b"rsa-sha256":
                signer.openssl_key = _openssl_key(key.private)
            signatures.append(signer.sign(key.selector, key.domain, key.private, canonicalize=CANONICALIZE,
                                          signature_algorithm=key.algorithm, include_headers=list(SIGNED_HEADERS)))
        except (dkim.DKIMException, ValueError) as exc:
            log.error("DKIM signing with %s._domainkey.%s failed: %s", key.selector.decode(), key.domain.decode(), exc)
    return b"".join(signatures) + wire


def selftest_sign(data: bytes, *, message: Any) -> bytes:
    """The compliance self-test's signing step (COMMS_DKIM_SIGNER): sign a rebuilt email exactly as the
    SMTP provider would, with the keys of its From domain in its tenant, so alignment is checked on real
    signatures (unsigned when the tenant has no key for that domain)."""
    from email import message_from_bytes

    wire = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    from_header = str(message_from_bytes(data).get("From", ""))
    return sign(wire, signing_keys_for(tenant_id=message.tenant_id, from_email=from_header))
