"""Keyed hashes of addresses and recipients: what the suppression list and consent ledger look up.

HMAC-SHA256 with a key of its own (COMMS_HASH_KEY, else derived from SECRET_KEY with HKDF), so a
leaked table cannot be reversed by hashing a list of known addresses without the key. Changing the
key orphans every stored hash: rotate it only with a re-hash from the encrypted copies.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

from comms import errors
from comms.addresses import normalise_address


@lru_cache(maxsize=1)
def _key() -> bytes:
    configured = getattr(settings, "COMMS_HASH_KEY", "")
    if configured:
        return configured.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"comms-address-hash", info=b"hmac").derive(
        settings.SECRET_KEY.encode())


def keyed_hash(value: str) -> str:
    return hmac.new(_key(), value.encode(), hashlib.sha256).hexdigest()


def canonical_address(channel: str, address: str) -> str:
    """The form an address is hashed in: normalised, and e-mail compared case-insensitively
    (mailbox providers treat the local part case-insensitively; a suppression must not be dodged
    by capitalisation)."""
    try:
        value = normalise_address(channel, address)
    except errors.CommsError:
        value = (address or "").strip()
    return value.lower() if channel == "email" else value


def address_hash(channel: str, address: str) -> str:
    # Email and SMS addresses never collide (an E.164 number is not an e-mail address), and push
    # tokens are channel-specific, so the channel is part of the key only through the table row.
    return keyed_hash(f"addr:{canonical_address(channel, address)}")


def subject_hash(tenant_id, external_id: str) -> str:
    """The identity a consent record keeps after erasure: not reversible, still groupable."""
    return keyed_hash(f"subject:{tenant_id}:{external_id}")
