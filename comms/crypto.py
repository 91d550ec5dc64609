"""Encryption at rest for provider credentials and secrets stored in the database.

Fernet (AES-128-CBC + HMAC) with rotation: COMMS_ENCRYPTION_KEY is a comma-separated list of Fernet
keys, newest first. The first key encrypts; every key (and, last, the key derived from SECRET_KEY
with HKDF, which is what is used when none is configured) can decrypt. To rotate: put a new key in
front, run ``manage.py comms_rotate_secrets`` (re-encrypts every stored secret with the first key),
then drop the old key. A database dump alone never reveals provider credentials.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _derived() -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"comms-at-rest", info=b"fernet").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    configured = [k.strip() for k in (getattr(settings, "COMMS_ENCRYPTION_KEY", "") or "").split(",") if k.strip()]
    return MultiFernet([*(Fernet(k.encode()) for k in configured), _derived()])


def reset_keys() -> None:
    """Forget the cached keys (after the settings changed, e.g. in tests)."""
    _fernet.cache_clear()


def encrypt_json(value: Any) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str) -> Any:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:  # a key was dropped before re-encryption: say so instead of guessing
        raise ValueError("stored secret cannot be decrypted with the configured keys") from exc


def rotate_token(token: str) -> str:
    """The same secret encrypted with the first (newest) key; empty stays empty."""
    if not token:
        return token
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("stored secret cannot be decrypted with the configured keys") from exc


# (model label, encrypted text columns): every place a secret is stored encrypted.
ENCRYPTED_COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("delivery.ChannelProvider", ("credentials_encrypted", "webhook_secret_encrypted")),
    ("delivery.WebhookEndpoint", ("secret_encrypted", "previous_secret_encrypted")),
    ("comms.Device", ("keys_encrypted",)),
    ("delivery.DkimKey", ("private_key_encrypted",)),
]


def secrets_rotate() -> dict[str, int]:
    """Re-encrypt every stored secret with the newest key; one transaction, rows locked."""
    from django.apps import apps
    from django.db import transaction

    counts: dict[str, int] = {}
    with transaction.atomic():
        for label, columns in ENCRYPTED_COLUMNS:
            model = apps.get_model(label)
            n = 0
            for row in model.objects.select_for_update().only("pk", *columns):
                for column in columns:
                    setattr(row, column, rotate_token(getattr(row, column)))
                row.save(update_fields=list(columns))
                n += 1
            counts[label] = n
    return counts
