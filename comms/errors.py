"""Typed errors with stable codes, and the one place that turns any API failure into JSON.

Every error body is ``{"code": "COMMS_…", "message": "…", "details": {…}}``. Callers branch on
``code``; ``message`` is for humans and may change.
"""

from __future__ import annotations

import logging
from typing import Any

from django import db
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.views import defaults
from rest_framework import exceptions as drf

log = logging.getLogger(__name__)


class CommsError(Exception):
    """Base of every typed error; subclasses set ``code`` and ``status``."""

    code = "COMMS_ERROR"
    status = 400
    default_message = "The request could not be processed."

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None):
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


def error_class(code: str, status: int, default_message: str) -> type[CommsError]:
    """A typed error with a stable code; apps above declare their own with it (e.g. conversations)."""
    return type(code.title().replace("_", ""), (CommsError,), {
        "code": code, "status": status, "default_message": default_message,
    })


_error = error_class


ValidationFailed = _error("COMMS_VALIDATION_ERROR", 400, "The request body is not valid.")
InvalidJson = _error("COMMS_INVALID_JSON", 400, "The request body is not valid JSON.")
JsonTooDeep = _error("COMMS_JSON_TOO_DEEP", 400, "The JSON nests arrays/objects too deeply.")
UnknownField = _error("COMMS_UNKNOWN_FIELD", 400, "The request contains fields this endpoint does not know.")
UnknownChannel = _error("COMMS_UNKNOWN_CHANNEL", 400, "Unknown channel.")
InvalidAddress = _error("COMMS_INVALID_ADDRESS", 400, "The recipient address is not valid for this channel.")
ContentTooLarge = _error("COMMS_CONTENT_TOO_LARGE", 400, "The content exceeds the channel's limits.")
ScheduleInPast = _error("COMMS_SCHEDULE_IN_PAST", 400, "scheduled_for lies in the past.")
ChannelUnavailable = _error("COMMS_CHANNEL_UNAVAILABLE", 422, "No provider is configured for this channel.")
RecipientNotFound = _error("COMMS_RECIPIENT_NOT_FOUND", 422, "No recipient with that external id.")
TemplateNotFound = _error("COMMS_TEMPLATE_NOT_FOUND", 422, "No active template with that key.")
TemplateMissingVar = _error("COMMS_TEMPLATE_MISSING_VAR", 422, "A required template variable is missing.")
TemplateBadVar = _error("COMMS_TEMPLATE_BAD_VAR", 422, "A template variable has the wrong type or value.")
TemplateInvalid = _error("COMMS_TEMPLATE_INVALID", 400, "The template does not compile.")
TemplateNotEditable = _error("COMMS_TEMPLATE_NOT_EDITABLE", 409, "Only a draft version can be changed.")
TemplateChannel = _error("COMMS_TEMPLATE_CHANNEL", 422, "The template has no content for this channel.")
TemplateRenderFailed = _error("COMMS_TEMPLATE_RENDER", 422, "The rendered content cannot be sent.")
ApprovalRefused = _error("COMMS_APPROVAL_REFUSED", 409, "This review or activation is not allowed.")
TemplateKeyTaken = _error("COMMS_TEMPLATE_EXISTS", 409, "A template with this key exists.")
Unauthenticated = _error("COMMS_UNAUTHENTICATED", 401, "A valid API key is required.")
Forbidden = _error("COMMS_FORBIDDEN", 403, "This API key lacks the scope for this operation.")
NotFound = _error("COMMS_NOT_FOUND", 404, "Not found.")
MethodNotAllowed = _error("COMMS_METHOD_NOT_ALLOWED", 405, "Method not allowed.")
UnsupportedMediaType = _error("COMMS_UNSUPPORTED_MEDIA_TYPE", 415, "Send JSON (Content-Type: application/json).")
IdempotencyConflict = _error(
    "COMMS_IDEMPOTENCY_CONFLICT", 409, "This Idempotency-Key was already used with a different payload."
)
NotCancellable = _error("COMMS_NOT_CANCELLABLE", 409, "The message is already being sent or finished.")
NotRequeueable = _error("COMMS_NOT_REQUEUEABLE", 409, "Only failed or dead messages can be requeued.")
BulkTooLarge = _error("COMMS_BULK_TOO_LARGE", 413, "Too many recipients in one bulk call.")
PayloadTooLarge = _error("COMMS_PAYLOAD_TOO_LARGE", 413, "The request body is too large.")
RateLimited = _error("COMMS_RATE_LIMITED", 429, "Too many requests; slow down.")
PrefBlocked = _error("COMMS_PREF_BLOCKED", 422, "The recipient opted out of this channel and category.")
QuietHours = _error("COMMS_QUIET_HOURS", 422, "The recipient is in quiet hours.")
Suppressed = _error("COMMS_SUPPRESSED", 422, "The address is on the suppression list.")
UnsafeDestination = _error("COMMS_UNSAFE_DESTINATION", 422, "The URL points at a non-public network address.")
WebhookUnverified = _error("COMMS_WEBHOOK_UNVERIFIED", 422, "The URL is not a registered, active webhook endpoint.")
WebhookSignatureInvalid = _error("COMMS_WEBHOOK_SIGNATURE", 401,
                                 "The webhook signature or credentials did not verify.")
WebhookMalformed = _error("COMMS_WEBHOOK_MALFORMED", 400,
                          "The webhook body is signed but not in the provider's format; it was kept, not processed.")
TrackingTokenInvalid = _error("COMMS_TRACKING_TOKEN", 400, "The tracking link is not valid.")
Internal = _error("COMMS_INTERNAL", 500, "Internal error; the request may be retried.")
NoDevices = _error("COMMS_NO_DEVICES", 422, "The recipient has no active push device.")
DeviceTokenInvalid = _error("COMMS_DEVICE_TOKEN_INVALID", 400,
                            "The device token does not have the shape its push service uses.")
Unavailable = _error("COMMS_UNAVAILABLE", 503, "The service is briefly unavailable; retry after the given delay.")
# Seconds a client is told to wait when the database is unreachable (a restart or failover).
UNAVAILABLE_RETRY_AFTER = 2
# Router, digests, campaigns and schedules (issue 8).
NoRoute = _error("COMMS_NO_ROUTE", 202, "No routing rule for this event name; the event was stored.")
RuleInvalid = _error("COMMS_RULE_INVALID", 400, "The routing rule does not match its schema.")
ConditionInvalid = _error("COMMS_CONDITION_INVALID", 400, "The condition expression is not valid.")
Deduplicated = _error("COMMS_DEDUPLICATED", 200, "An equal event inside the dedupe window was already routed.")
CronInvalid = _error("COMMS_CRON_INVALID", 400, "The cron expression does not parse.")
AudienceEmpty = _error("COMMS_AUDIENCE_EMPTY", 422, "The audience has no recipients.")
AudienceInvalid = _error("COMMS_AUDIENCE_INVALID", 400, "The audience is not valid.")
CsvInvalid = _error("COMMS_CSV_INVALID", 400, "The CSV audience has rows that cannot be used.")
CampaignState = _error("COMMS_CAMPAIGN_STATE", 409, "The campaign is not in a state that allows this.")
ScheduleState = _error("COMMS_SCHEDULE_STATE", 409, "The schedule is not in a state that allows this.")
CampaignChannel = _error("COMMS_CAMPAIGN_CHANNEL", 422, "This channel cannot be sent to this kind of audience.")
SegmentInUse = _error("COMMS_SEGMENT_IN_USE", 409, "A campaign uses this segment.")
# Preferences and compliance (issue 5).
NoConsent = _error("COMMS_NO_CONSENT", 422, "The recipient has not given the consent this category needs.")
UnknownCategory = _error("COMMS_UNKNOWN_CATEGORY", 400, "Unknown category.")
InvalidTimezone = _error("COMMS_INVALID_TIMEZONE", 400, "Unknown time zone.")
InvalidQuietHours = _error("COMMS_INVALID_QUIET_HOURS", 400, "Quiet hours need a start different from the end.")
InvalidToken = _error("COMMS_INVALID_TOKEN", 400, "The link is invalid or has expired.")
ImportFailed = _error("COMMS_IMPORT_FAILED", 400, "The import has bad rows and nothing was imported (atomic).")
# Conversation attachments (issue 17).
AttachmentTypeRefused = _error("COMMS_ATTACHMENT_TYPE", 415,
                               "The file's content is not an allowed type (checked on the bytes, not the name).")
AttachmentTooLarge = _error("COMMS_ATTACHMENT_TOO_LARGE", 413, "The attachment exceeds the size limit.")
AttachmentLinkExpired = _error("COMMS_ATTACHMENT_LINK_EXPIRED", 410, "The download link has expired; ask for a new one.")
InvalidSubscription = _error("COMMS_INVALID_SUBSCRIPTION", 400, "The Web Push subscription is not valid.")
WebPushUnavailable = _error("COMMS_WEBPUSH_UNAVAILABLE", 503,
                            "Web Push is not set up: no VAPID key pair (run manage.py comms_vapid_keys).")
# Journeys (issue 16).
JourneyInvalid = _error("COMMS_JOURNEY_INVALID", 400, "The journey definition does not match its schema.")
JourneyCycle = _error("COMMS_JOURNEY_CYCLE", 400, "The step graph has a cycle with no wait in it.")
JourneyBranchDefault = _error("COMMS_JOURNEY_BRANCH_DEFAULT", 400, "A branch has no default.")
JourneyState = _error("COMMS_JOURNEY_STATE", 409, "The journey is not in a state that allows this.")
JourneyNotEntered = _error("COMMS_JOURNEY_NOT_ENTERED", 409, "The re-entry policy keeps this recipient out.")

# Deliverability: sending domains and DKIM keys (issue 19).
InvalidDomain = _error("COMMS_INVALID_DOMAIN", 400, "The domain name is not valid.")
DomainExists = _error("COMMS_DOMAIN_EXISTS", 409, "This tenant already has this sending domain.")
InvalidKey = _error("COMMS_INVALID_KEY", 400, "The DKIM private key does not parse (PEM, RSA of 1024+ bits or Ed25519).")


def status_for(code: str) -> int:
    """The HTTP status that goes with a stable code."""
    for cls in CommsError.__subclasses__():
        if cls.code == code:
            return cls.status
    return 400


def _first_comms_code(codes: Any) -> str | None:
    """Find the most specific COMMS_* code in DRF's nested get_codes() structure."""
    if isinstance(codes, str):
        return codes if codes.startswith("COMMS_") else None
    values = codes.values() if isinstance(codes, dict) else codes if isinstance(codes, list) else []
    for value in values:
        if found := _first_comms_code(value):
            return found
    return None


def _validation_message(detail: Any, prefix: str = "") -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            return _validation_message(value, f"{prefix}.{name}".strip(".") if name else prefix)
    if isinstance(detail, list) and detail:
        return _validation_message(detail[0], prefix)
    return f"{prefix}: {detail}" if prefix else str(detail)


_DRF_MAP: list[tuple[type[Exception], type[CommsError]]] = [
    (drf.ParseError, InvalidJson),
    (drf.NotAuthenticated, Unauthenticated),
    (drf.AuthenticationFailed, Unauthenticated),
    (drf.PermissionDenied, Forbidden),
    (drf.NotFound, NotFound),
    (drf.MethodNotAllowed, MethodNotAllowed),
    (drf.UnsupportedMediaType, UnsupportedMediaType),
    (drf.Throttled, RateLimited),
]


def to_comms_error(exc: Exception) -> CommsError | None:
    """Translate DRF/Django exceptions into typed errors; None for anything unexpected."""
    if isinstance(exc, CommsError):
        return exc
    if isinstance(exc, drf.ValidationError):
        code = _first_comms_code(exc.get_codes()) or ValidationFailed.code
        err = ValidationFailed(_validation_message(exc.detail), details={"fields": exc.detail})
        err.code = code
        return err
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, db.DataError) or (isinstance(exc, ValueError) and "NUL" in str(exc)):
        # A value PostgreSQL cannot store (e.g. a NUL character inside a JSON string): the input's fault.
        return ValidationFailed("The request contains a value that cannot be stored (e.g. a NUL character).")
    if isinstance(exc, (db.OperationalError, db.InterfaceError)):
        # The database is restarting or unreachable: nothing was accepted, so the client may retry.
        log.warning("database unavailable: %s", type(exc).__name__)
        return Unavailable(details={"retry_after_seconds": UNAVAILABLE_RETRY_AFTER})
    if isinstance(exc, Http404):
        return NotFound()
    for drf_type, comms_type in _DRF_MAP:
        if isinstance(exc, drf_type):
            err = comms_type(str(exc.detail) if hasattr(exc, "detail") else None)
            if isinstance(exc, drf.Throttled) and exc.wait:
                err.details = {"retry_after_seconds": int(exc.wait)}
            return err
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]):
    """DRF EXCEPTION_HANDLER: every error leaves as {code, message, details}."""
    # Imported here: rest_framework.views imports the auth classes, which import this module.
    from rest_framework.response import Response
    from rest_framework.views import exception_handler as drf_default_handler

    err = to_comms_error(exc)
    if err is None:
        # Let DRF set headers for what it knows (e.g. WWW-Authenticate), then fall through to 500.
        if drf_default_handler(exc, context) is not None:
            err = CommsError(str(getattr(exc, "detail", exc)))
        else:
            log.exception("unhandled API error")
            err = Internal()
    response = Response(err.as_dict(), status=err.status)
    if isinstance(exc, drf.Throttled) and exc.wait:
        response["Retry-After"] = str(int(exc.wait))
    if err.status == 429 and "Retry-After" not in response and err.details.get("retry_after_seconds"):
        response["Retry-After"] = str(err.details["retry_after_seconds"])
    if err.status == 503:
        response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    if err.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="comms"'
    return response


# Paths whose every answer is JSON, errors included (the API, and the provider webhooks under /webhooks/).
JSON_PREFIXES = ("/api/", "/webhooks/")


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES) and not request.path.startswith(("/api/docs/", "/api/schema/"))


def json_400(request: HttpRequest, exception: Exception | None = None):
    """handler400 (SuspiciousOperation, e.g. a bad Host header or too many fields)."""
    if _wants_json(request):
        return JsonResponse(ValidationFailed("The request is not valid.").as_dict(), status=400)
    return defaults.bad_request(request, exception)


def json_403(request: HttpRequest, exception: Exception | None = None):
    if _wants_json(request):
        return JsonResponse(Forbidden("Forbidden.").as_dict(), status=403)
    return defaults.permission_denied(request, exception)


def json_404(request: HttpRequest, exception: Exception | None = None):
    if _wants_json(request):
        return JsonResponse(NotFound().as_dict(), status=404)
    return defaults.page_not_found(request, exception)


def json_500(request: HttpRequest):
    if _wants_json(request):
        return JsonResponse(Internal().as_dict(), status=500)
    return defaults.server_error(request)
# Deliverability (issue 19): spam scoring, probes, suppression sync with the ESPs.
SpamCheckUnavailable = _error("COMMS_SPAM_CHECK_UNAVAILABLE", 503, "The spam checker (spamd) is not reachable.")
EspSyncFailed = _error("COMMS_ESP_SYNC_FAILED", 502, "The ESP's suppression API failed or answered in an unknown shape.")
ProbeSuppressed = _error("COMMS_PROBE_SUPPRESSED", 422, "The probe recipient is on the suppression list; not sent.")
EspSyncMalformed = _error("COMMS_ESP_SYNC_MALFORMED", 502, "The ESP's suppression API answered in a shape we do not know.")

# Deliverability: pools (streams) and warm-up ladders.
PoolUnknown = _error("COMMS_POOL_UNKNOWN", 422, "No pool with that name for this channel.")
PoolForbidden = _error("COMMS_POOL_FORBIDDEN", 403, "Only an admin-scoped API key may choose a message's pool.")
WarmupInvalid = _error("COMMS_WARMUP_INVALID", 400, "The warm-up ladder is not valid.")

# Tenant quotas and budgets (issue 21): one code; 429 for a rate or daily budget (Retry-After says
# when it renews), 422 for a bulk call larger than the tenant's plan allows (retrying cannot help).
TenantQuota = _error("COMMS_TENANT_QUOTA", 429, "The tenant's quota for this is spent; retry after the window renews.")
TenantQuotaBulkSize = type("TenantQuotaBulkSize", (TenantQuota,), {
    "status": 422, "default_message": "The bulk call has more recipients than the tenant's plan allows."})
# Retention and archival (comms.retention, comms.archive).
RetentionBelowMinimum = _error("COMMS_RETENTION_BELOW_MINIMUM", 422,
                               "The retention period is shorter than this kind's minimum.")
RetentionNotAllowed = _error("COMMS_RETENTION_NOT_ALLOWED", 422,
                             "This kind of data is never deleted by retention (only anonymised by erasure).")
RetentionUnknownKind = _error("COMMS_RETENTION_UNKNOWN_KIND", 422, "Unknown kind of data.")
ArchiveUnavailable = _error("COMMS_ARCHIVE_UNAVAILABLE", 503, "The archive storage cannot be written; nothing was deleted.")
ArchiveCorrupt = _error("COMMS_ARCHIVE_CORRUPT", 422, "An archive part does not match its manifest.")
