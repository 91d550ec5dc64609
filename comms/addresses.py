"""Address validation and normalisation per channel, and the channel content limits.

One place decides what a valid address is, so the single-send API, bulk fan-out and the
recipient directory agree.
"""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from comms import errors
from comms.enums import Channel
from comms.netsafe import split_http_url

_email_validator = EmailValidator()
# The common shape of an address (dot-atom local part, LDH labels, alphabetic TLD): every match is
# also accepted by Django's EmailValidator, so the slower validator only sees the unusual rest
# (quoted local parts, IDN, address literals). Bulk calls validate 100,000 addresses at a time.
_SIMPLE_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_\-:.]{8,4096}$")
# An APNs device token is 32 bytes, sent as 64 hex digits in the request path (Apple, "Sending
# notification requests to APNs": POST /3/device/<device token>).
_APNS_TOKEN = re.compile(r"^[0-9a-fA-F]{64}$")


def normalise_email(value: str) -> str:
    """Trimmed, with the domain lower-cased (the local part is case-sensitive per RFC 5321 §2.4)."""
    value = (value or "").strip()
    if len(value) > 254 or not (_SIMPLE_EMAIL.match(value) or _valid_unusual_email(value)):
        raise errors.InvalidAddress(f"'{value[:80]}' is not a valid email address.")
    local, _, domain = value.rpartition("@")
    if not domain.isascii():  # store and send the A-label form (RFC 5890), which every MTA accepts
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise errors.InvalidAddress(f"'{value[:80]}' has an invalid internationalised domain.") from None
    return f"{local}@{domain.lower()}"


def _valid_unusual_email(value: str) -> bool:
    if not value or any(c in value for c in "\r\n\0"):
        return False
    try:
        _email_validator(value)
    except ValidationError:
        return False
    return True


def normalise_phone(value: str) -> str:
    """E.164 only: the API never guesses a country for a bare national number."""
    value = (value or "").strip()
    if not _E164.match(value):
        raise errors.InvalidAddress(f"'{value[:40]}' is not an E.164 phone number (e.g. +14155550123).")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise errors.InvalidAddress(f"'{value[:40]}' is not a valid phone number.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise errors.InvalidAddress(f"'{value[:40]}' is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_url(value: str) -> str:
    """Webhook-channel addresses: a well-formed http(s) URL (a bad port or IPv6 literal is the
    caller's error, not a 500); whether it is safe to call is netsafe's check at enqueue."""
    value = (value or "").strip()
    try:
        split_http_url(value)
    except errors.ValidationFailed as exc:
        raise errors.InvalidAddress(exc.message) from None
    return value


def normalise_address(channel: str, value: str) -> str:
    if channel == Channel.EMAIL:
        return normalise_email(value)
    if channel in (Channel.SMS, Channel.VOICE):
        return normalise_phone(value)
    if channel == Channel.WEBHOOK:
        return normalise_url(value)
    if channel == Channel.PUSH:
        value = (value or "").strip()
        if value.startswith("https://"):  # a browser's Web Push endpoint (a registered webpush device)
            return normalise_url(value)
        if not _TOKEN.match(value):
            raise errors.InvalidAddress("Push addresses are device tokens (8-4096 URL-safe characters).")
        return value
    if channel == Channel.IN_APP:
        value = (value or "").strip()
        if not value or len(value) > 255:
            raise errors.InvalidAddress("In-app messages address a recipient id.")
        return value
    raise errors.UnknownChannel(f"Unknown channel '{channel}'.")


# Characters, except email bodies (bytes). SMS: 1,600 is the concatenation ceiling of Twilio and
# most carriers (10 GSM-7 segments of 153 + headroom); push body: 256 per seed 000; in-app: the
# inbox row's title and deep_link columns (255 and 2,048).
LIMITS = {
    Channel.SMS: {"body": 1600},
    Channel.PUSH: {"subject": 100, "body": 256},
    Channel.IN_APP: {"subject": 255, "body": 10_000, "link": 2048},
    Channel.WEBHOOK: {"body": 256 * 1024},
    # Twilio refuses a call whose inline Twiml parameter is over 4,000 characters; 3,000 of spoken
    # text leaves room for the <Say>/<Gather> markup and the escaping of & < > (a few minutes of speech).
    Channel.VOICE: {"body": 3000},
}
EMAIL_SUBJECT_CHARS = 998  # RFC 5322 §2.1.1 line limit


def content_limit_problems(channel: str, *, subject: str, body: str, body_html: str,
                           data: dict | None = None) -> list[errors.CommsError]:
    """Every limit the send path puts on content, as typed errors, not raised.

    The send refuses on the first (validate_content); template preview and submit report them all,
    so a template that previews clean is never refused when sent.
    """
    found: list[errors.CommsError] = []
    if channel == Channel.EMAIL:
        if "\r" in subject or "\n" in subject:
            found.append(errors.ValidationFailed("subject must be a single line.", details={"field": "subject"}))
        if len(subject) > EMAIL_SUBJECT_CHARS:
            found.append(errors.ContentTooLarge(
                f"subject is {len(subject)} characters; email allows {EMAIL_SUBJECT_CHARS}.",
                details={"field": "subject", "limit": EMAIL_SUBJECT_CHARS}))
        size = len(body.encode()) + len(body_html.encode())
        if size > settings.COMMS_MAX_EMAIL_BODY_BYTES:
            found.append(errors.ContentTooLarge(
                f"email body is {size} bytes; the limit is {settings.COMMS_MAX_EMAIL_BODY_BYTES}.",
                details={"field": "body", "limit_bytes": settings.COMMS_MAX_EMAIL_BODY_BYTES}))
        return found
    limits = LIMITS.get(channel, {})
    link = str((data or {}).get("link") or (data or {}).get("deep_link") or "")
    for field, value in (("subject", subject), ("body", body), ("link", link)):
        if field in limits and len(value) > limits[field]:
            found.append(errors.ContentTooLarge(
                f"{field} is {len(value)} characters; {channel} allows {limits[field]}.",
                details={"field": field, "limit": limits[field]}))
    return found


def validate_content(channel: str, *, subject: str, body: str, body_html: str, data: dict | None = None) -> None:
    """Raise ContentTooLarge/ValidationFailed when content cannot go out on `channel`."""
    if channel != Channel.EMAIL and not body:
        raise errors.ValidationFailed(f"{channel} needs a body (or a template).", details={"field": "body"})
    problems = content_limit_problems(channel, subject=subject, body=body, body_html=body_html, data=data)
    if problems:
        raise problems[0]
    if channel == Channel.EMAIL and not (body or body_html):
        raise errors.ValidationFailed("email needs body or body_html (or a template).", details={"field": "body"})


def ios_push_service(tenant_slug: str) -> str:
    """Who carries a tenant's iOS pushes: ``apns`` (directly) or ``fcm`` (APNs through FCM, the default
    so existing FCM-registered iOS installs keep working). ``COMMS_PUSH_IOS_VIA`` sets it for every
    tenant, ``COMMS_PUSH_IOS_VIA_TENANTS`` ({tenant slug: "apns"|"fcm"}) per tenant; registration and
    the push channel both ask here, so a token is checked for the service that will carry it."""
    return settings.COMMS_PUSH_IOS_VIA_TENANTS.get(tenant_slug) or settings.COMMS_PUSH_IOS_VIA


def normalise_device_token(*, token: str, platform: str, tenant_slug: str) -> str:
    """A device token as stored: an iOS token that APNs carries must be APNs' 64 hex digits (kept
    lowercase, so one device is one row however the app spells it); FCM and Web Push tokens pass."""
    token = (token or "").strip()
    if platform == "ios" and ios_push_service(tenant_slug) == "apns":
        if not _APNS_TOKEN.match(token):
            raise errors.DeviceTokenInvalid(
                "iOS push goes to APNs directly for this tenant: the token must be the 64 hex digits of "
                "the APNs device token (not an FCM registration token).",
                details={"platform": platform, "length": len(token)})
        return token.lower()
    return token
