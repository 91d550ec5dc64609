"""Web Push in the kernel: what a browser subscription must look like, and the VAPID key pair.

A subscription (``PushSubscription.toJSON()``: ``endpoint`` + ``keys.p256dh`` + ``keys.auth``) is a URL
we will POST to and the keys we encrypt to, so it is checked before it is stored:

* ``keys.p256dh``: base64url of the browser's ECDH public key, an uncompressed P-256 point, 65 bytes
  starting with 0x04 (RFC 8291 section 3.1, RFC 8292 uses the same curve);
* ``keys.auth``: base64url of the 16-byte authentication secret (RFC 8291 section 3.2);
* ``endpoint``: an absolute ``https`` URL (RFC 8030 section 5 requires HTTPS for the push resource)
  whose host resolves only to public addresses: the same SSRF rule as the webhook channel
  (``comms.netsafe``; COMMS_OUTBOUND_ALLOWED_NETWORKS lets tests reach loopback stand-ins).

The VAPID key pair (RFC 8292) is one per deployment: generated once by ``manage.py comms_vapid_keys``
(``make run`` does it when the file is missing) into COMMS_WEBPUSH["vapid_file"], the private key
encrypted at rest with the provider-credential key (``comms.crypto``). Browsers bind a subscription
to the public key they subscribed with, so rotating the pair orphans every subscription: see
docs/operations.md ("Web Push: VAPID keys").
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from comms import crypto, errors, netsafe



@dataclass(frozen=True)
class Subscription:
    endpoint: str
    p256dh: str
    auth: str


def b64url_decode(value: str) -> bytes:
    """Strict base64url (RFC 4648 section 5), padding optional as browsers omit it."""
    if not isinstance(value, str) or not value or any(c not in _B64URL for c in value.rstrip("=")):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _bad(field: str, message: str) -> errors.CommsError:
    return errors.InvalidSubscription(message, details={"field": field})


def subscription_validate(data: Any, *, check_destination: bool = True) -> Subscription:
    """The subscription in `data` (PushSubscription JSON), or COMMS_INVALID_SUBSCRIPTION (400) naming
    the field; an endpoint on a non-public address is COMMS_UNSAFE_DESTINATION (422), as for webhooks."""
    if not isinstance(data, dict):
        raise _bad("subscription", "Send the subscription as a JSON object.")
    endpoint, keys = data.get("endpoint"), data.get("keys")
    if not isinstance(endpoint, str) or not endpoint:
        raise _bad("endpoint", "endpoint is required.")
    if not isinstance(keys, dict):
        raise _bad("keys", "keys (p256dh, auth) are required.")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    try:
        point = b64url_decode(p256dh)
    except ValueError:
        raise _bad("keys.p256dh", "keys.p256dh must be base64url.") from None
    if len(point) != 65 or point[0] != 4:
        raise _bad("keys.p256dh", f"keys.p256dh must be a 65-byte uncompressed P-256 point (got {len(point)} bytes).")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise _bad("keys.p256dh", "keys.p256dh is not a point on the P-256 curve.") from None
    try:
        secret = b64url_decode(auth)
    except ValueError:
        raise _bad("keys.auth", "keys.auth must be base64url.") from None
    if len(secret) != 16:
        raise _bad("keys.auth", f"keys.auth must be 16 bytes (got {len(secret)}).")
    try:
        parts = netsafe.split_http_url(endpoint)
    except errors.ValidationFailed as exc:
        raise _bad("endpoint", exc.message) from None
    if parts.scheme != "https":
        raise _bad("endpoint", "endpoint must be an https URL (RFC 8030).")
    if check_destination:
        netsafe.resolve_safe(endpoint)  # COMMS_UNSAFE_DESTINATION: the webhook channel's SSRF rule
    return Subscription(endpoint=endpoint, p256dh=b64url_encode(point), auth=b64url_encode(secret))


def keys_encrypt(sub: Subscription) -> str:
    return crypto.encrypt_json({"p256dh": sub.p256dh, "auth": sub.auth})


def keys_decrypt(token: str) -> dict[str, str]:
    return crypto.decrypt_json(token)


# -- VAPID ------------------------------------------------------------------------------------------------
def vapid_path() -> Path:
    return Path(settings.COMMS_WEBPUSH["vapid_file"])


def vapid_generate(path: Path | None = None, *, replace: bool = False) -> tuple[str, bool]:
    """(public key, created): a new P-256 pair written to the key file unless one is there (or
    `replace`). The private key is stored as Fernet ciphertext, the file is mode 0600."""
    path = path or vapid_path()
    if path.exists() and not replace:
        return vapid_public_key(path), False
    private = ec.generate_private_key(ec.SECP256R1())
    raw = private.private_numbers().private_value.to_bytes(32, "big")
    public = private.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"public_key": b64url_encode(public),
                               "private_key_encrypted": crypto.encrypt_json(b64url_encode(raw))}))
    tmp.chmod(0o600)
    tmp.replace(path)
    return b64url_encode(public), True


def _read(path: Path | None = None) -> dict:
    path = path or vapid_path()
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise errors.WebPushUnavailable() from None


def vapid_public_key(path: Path | None = None) -> str:
    """The application server key browsers subscribe with (base64url, 65-byte point)."""
    return _read(path)["public_key"]


def vapid_private_key(path: Path | None = None) -> str:
    """The raw private scalar, base64url (what py_vapid's ``Vapid.from_string`` reads)."""
    return crypto.decrypt_json(_read(path)["private_key_encrypted"])


def vapid_configured() -> bool:
    return vapid_path().exists()
