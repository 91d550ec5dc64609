"""Encryption at rest for provider credentials and secrets stored in the database.

Fernet (AES-128-CBC + HMAC) keyed by COMMS_ENCRYPTION_KEY, or derived from SECRET_KEY with HKDF
when unset, so a database dump alone never reveals provider credentials.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@lru_cache(maxsize=1)
def _fernet() -> Fernet:
    configured = getattr(settings, "COMMS_ENCRYPTION_KEY", "")
    if configured:
        return Fernet(configured.encode())
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"comms-at-rest", info=b"fernet").derive(
        settings.SECRET_KEY.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_json(value: Any) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def decrypt_json(token: str) -> Any:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:  # a rotated key without re-encryption: say so instead of guessing
        raise ValueError("stored secret cannot be decrypted with the current key") from exc
