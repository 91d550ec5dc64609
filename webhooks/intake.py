"""The shared intake view: limit, read, verify, store raw, answer fast, process later.

Order matters. The rate limit and the size cap come first and store nothing (a flood or an
oversized body must not fill the table; the provider retries a 429). Everything else is stored
as a WebhookEvent *before* the answer, including requests whose signature fails (stored with
``signature_valid=false`` and never processed), so an auditor sees every attempt. A verified
request is answered 200 at once and processed by a Celery task after the row commits; beat
sweeps up any row whose task was lost, so losing Redis loses no event.

A provider is one subclass of ``IntakeView`` that declares everything about it (see the class
docstring) and one line in ``webhooks/registry.py``; the registry builds the URLs and the processing
service finds the class by the stored row's provider name.
"""

from __future__ import annotations

import inspect
import io
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import DataError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from comms import errors, jsonlimits
from comms.redis import parse_rate, rate_window
from comms.throttles import public_rate_limit
from tracking.models import EventType
from tracking.normalised import NormalisedEvent
from webhooks.models import WebhookEvent

log = logging.getLogger(__name__)

# Headers every provider's row keeps (never Authorization: it holds a secret); each provider adds the
# ones it signs with in its own ``audit_headers``.
COMMON_AUDIT_HEADERS = (
    "Content-Type", "User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
)

# In an ``event_types`` map: a raw type the provider documents that records no tracking event
# (Twilio's progress reports before the handset, push-token feedback, an inbound SMS).
NO_EVENT = None


class SignatureInvalid(Exception):
    """The request is not provably from the provider."""


class Malformed(Exception):
    """The body is not in the provider's format (it is kept, marked malformed, and answered 400).

    ``error`` is the typed error the provider is answered with: a 400, because a provider retries
    5xx answers and a body that is not in its format will not get better by being sent again.
    """

    def __init__(self, message: str, error: type[errors.CommsError] = errors.WebhookMalformed):
        super().__init__(message)
        self.error = error


def rebuild_request(*, body: bytes, content_type: str, headers: dict[str, str], url: str = "") -> HttpRequest:
    """A Django request equal to the stored one, for parsers written against HttpRequest (anymail)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type, "PATH_INFO": "/", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
        "wsgi.url_scheme": "https",
    }
    for name, value in headers.items():
        if name.lower() != "content-type":
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    return WSGIRequest(environ)


def parse_payload(body: bytes, content_type: str) -> Any:
    """JSON bodies as JSON (nesting bounded), form bodies as {field: value or [values]}; raises Malformed."""
    try:
        text = body.decode("utf-8", errors="strict") if body else ""
    except UnicodeDecodeError as exc:
        raise Malformed(f"body is not UTF-8: {exc}", errors.InvalidJson) from None
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, keep_blank_values=True).items()}
    try:
        return jsonlimits.loads(text)
    except errors.JsonTooDeep as exc:
        raise Malformed(exc.message, errors.JsonTooDeep) from None
    except ValueError as exc:
        raise Malformed(f"body is not JSON: {exc}", errors.InvalidJson) from None


def require(condition: bool, message: str) -> None:
    """For check_shape: raise Malformed(message) unless `condition` holds."""
    if not condition:
        raise Malformed(message)


def _error(err: errors.CommsError, **headers: str) -> JsonResponse:
    response = JsonResponse(err.as_dict(), status=err.status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _rate_ok(provider: str) -> tuple[bool, int]:
    """A per-provider fixed window in Redis (COMMS_WEBHOOK_RATES), shared by every web process."""
    rate = settings.COMMS_WEBHOOK_RATES.get(provider) or settings.COMMS_WEBHOOK_RATES.get("default", "")
    if not rate:
        return True, 0
    limit, seconds = parse_rate(rate)
    window = rate_window(f"comms:webhook-rate:{provider}", seconds=seconds, limit=limit)
    try:
        used = window.hit()
    except Exception:  # Redis down: accept (storing is what matters), never refuse valid events
        return True, 0
    return used <= window.limit, max(1, int(window.wait + 0.999))


def public_url(request: HttpRequest) -> str:
    """The URL the provider called, as it saw it (Twilio signs it): behind a TLS-terminating proxy the
    scheme and host come from X-Forwarded-Proto/-Host, but only when COMMS_TRUST_FORWARDED says the
    proxy sets them; COMMS_WEBHOOK_BASE_URL overrides both."""
    base = settings.COMMS_WEBHOOK_BASE_URL
    if base:
        return base.rstrip("/") + request.get_full_path()
    if settings.COMMS_TRUST_FORWARDED:
        proto = request.META.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip()
        host = request.META.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
        if proto and host:
            return f"{proto}://{host}{request.get_full_path()}"
    return request.build_absolute_uri()


@dataclass
class Handled:
    """What a provider did with a stored row by itself instead of handing events to tracking
    (push-token pruning, an inbound SMS keyword, an SNS subscription confirmation)."""

    state: str
    note: str = ""
    reply: str | None = None  # inbound SMS: the keyword's answer


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(public_rate_limit("webhooks"), name="dispatch")  # per client address (comms/throttles.py)
class IntakeView(View):
    """Base for one inbound provider. A subclass declares everything about its provider:

    - ``name``: the stored rows' provider column and the registry key (rate and size limits use it);
    - ``url``: the path under /webhooks/ (URL name ``webhook-<url with / as ->``);
    - ``secret_setting``, ``max_body_bytes``: the setting holding its secret, its usual body cap;
    - ``audit_headers``: the headers it sends that a stored row keeps (declared even when empty);
    - ``event_types``: the provider's raw event type → ``tracking.models.EventType`` (``NO_EVENT`` for a
      documented type that records nothing); any type not listed is ``EventType.UNKNOWN``, kept and
      flagged for review rather than guessed (``event_type()``);
    - ``verify_<step>(request, body, payload)`` methods raising SignatureInvalid: every one defined
      anywhere in the class hierarchy runs, base classes first, as django-anymail's
      ``run_validators`` collects ``validate_request`` (anymail/webhooks/base.py). A subclass adds a check
      by defining one and cannot drop one by forgetting ``super()``: a step with an inherited name runs
      as well as the inherited one, and overriding ``verify`` itself is refused at class creation;
    - ``check_shape(payload)``: the documented body shape, raising Malformed (via ``require``);
    - ``parse(row)``: the stored row as NormalisedEvents, each keeping its raw provider payload;
    - optionally ``act(row)``: a side effect the provider performs itself (returns Handled), and
      ``describe(payload)``: the (type, id) columns of the stored row.
    """

    name: ClassVar[str] = ""
    url: ClassVar[str] = ""
    audit_headers: ClassVar[tuple[str, ...]] = COMMON_AUDIT_HEADERS
    event_types: ClassVar[Mapping[str, str | None]] = {}
    # A setting that must hold the provider's secret, and what to say when it does not (verify_configured).
    secret_setting: ClassVar[str] = ""
    secret_missing: ClassVar[str] = ""
    # Body cap (bytes) unless COMMS_WEBHOOK_MAX_BYTES names one for this provider; None: its "default".
    max_body_bytes: ClassVar[int | None] = None
    # Set by the registry's URLs: what every stored row keeps (the registered providers' allow-lists).
    stored_headers: tuple[str, ...] = ()
    http_method_names = ["post", "head", "options"]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "verify" in vars(cls):
            raise TypeError(f"{cls.__qualname__} defines verify(); define verify_<step> methods instead "
                            "(every one in the class hierarchy runs, so none can be skipped)")

    def head(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponse()  # some providers probe the URL when it is configured

    # --- declarations ---------------------------------------------------------------------------------
    @classmethod
    def event_type(cls, raw: str) -> str | None:
        """Our event type for the provider's raw type: unknown types are UNKNOWN, never guessed."""
        return cls.event_types.get(raw, EventType.UNKNOWN)

    @classmethod
    def header_allow_list(cls) -> tuple[str, ...]:
        """The headers this provider's rows keep: every ``audit_headers`` in the hierarchy, base first."""
        names: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            names.update(dict.fromkeys(vars(klass).get("audit_headers", ())))
        return tuple(names)

    @classmethod
    def signature_steps(cls) -> list[Callable[..., None]]:
        """Every ``verify_*`` function defined in the class hierarchy, base classes first (configuration
        and the vendor's own signature before a subclass's additions), each once."""
        steps: list[Callable[..., None]] = []
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if attr.startswith("verify_") and inspect.isfunction(value) and value not in steps:
                    steps.append(value)
        return steps

    def verify_configured(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        """Without its secret a provider's signature cannot be checked: refuse everything."""
        if self.secret_setting and not getattr(settings, self.secret_setting, None):
            missing = self.secret_missing or f"no {self.secret_setting} configured"
            raise SignatureInvalid(f"{self.name}: {missing}")

    def run_verify_steps(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        """Raise SignatureInvalid unless every step passes; a class that declares no step of its own
        has no signature check at all, so it is refused (fail closed)."""
        steps = self.signature_steps()
        if steps == [IntakeView.verify_configured]:
            raise SignatureInvalid(f"{self.name}: no signature check declared")
        for step in steps:
            step(self, request, body, payload)

    def check_shape(self, payload: Any) -> None:  # pragma: no cover - contract
        """Raise Malformed unless the parsed body has the provider's documented shape (checked after
        the signature, before the 200: a signed body in the wrong shape is answered 400, kept, and
        never processed)."""
        raise NotImplementedError

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:  # pragma: no cover - contract
        """The stored row's events in our vocabulary (the Celery task calls this; nothing is verified
        again); each NormalisedEvent keeps the provider's raw event in ``raw``."""
        raise NotImplementedError

    @classmethod
    def act(cls, webhook: WebhookEvent) -> Handled | None:
        """A side effect the provider performs itself instead of tracking events; None: parse the row."""
        return None

    def describe(self, payload: Any) -> tuple[str, str]:
        """(provider event type(s), provider event id) for the stored row's columns."""
        return "", ""

    @classmethod
    def normalise(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        """``parse``, with a body that is not in the provider's format ending as Malformed (typed),
        whatever the parser (ours or anymail's) tripped over: found by fuzzing
        (tests/security/test_fuzz.py)."""
        try:
            return cls.parse(webhook)
        except (AnymailError, Malformed):
            raise
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            raise Malformed(f"{cls.name} payload not understood: {type(exc).__name__}: {exc}"[:500]) from exc

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """JSON like every other error (Django's default is an empty HTML 405)."""
        allowed = ", ".join(m.upper() for m in self._allowed_methods())
        return _error(errors.MethodNotAllowed(f"{request.method} is not allowed here; allowed: {allowed}.",
                                              details={"allowed": allowed.split(", ")}), Allow=allowed)

    def parse_body(self, body: bytes, content_type: str) -> Any:
        """The stored payload; a provider posting multipart forms (inbound email) overrides this."""
        return parse_payload(body, content_type)

    def accepted(self, webhook: WebhookEvent) -> HttpResponse:
        return HttpResponse("ok", content_type="text/plain")

    # --- plumbing ---------------------------------------------------------------------------------------
    def body_limit(self) -> int:
        caps = settings.COMMS_WEBHOOK_MAX_BYTES
        return caps.get(self.name) or self.max_body_bytes or caps["default"]

    def read_body(self, request: HttpRequest) -> bytes | None:
        limit = self.body_limit()
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return None
        body = request.read(limit + 1)  # not request.body: our per-provider cap, not Django's global one
        return None if len(body) > limit else body

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        allowed, retry_after = _rate_ok(self.name)
        if not allowed:
            return _error(errors.RateLimited("Webhook rate limit reached; retry later.",
                                             details={"retry_after_seconds": retry_after}),
                          Retry_After=str(retry_after))
        body = self.read_body(request)
        if body is None:
            log.warning("%s webhook refused: body over the limit", self.name)
            return _error(errors.PayloadTooLarge("The webhook body exceeds this provider's limit."))
        content_type = request.META.get("CONTENT_TYPE", "")
        kept = self.stored_headers or self.header_allow_list()
        headers = {name: request.headers[name] for name in kept if name in request.headers}
        # The URL as the provider called it (Twilio signs it): verify steps read self.signed_url.
        self.signed_url = public_url(request)
        row = WebhookEvent(provider=self.name, content_type=content_type[:200], headers=headers,
                           # PostgreSQL text cannot hold NUL: shown as U+FFFD (a JSON body cannot contain one)
                           body=body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
                           url=self.signed_url[:2048],
                           remote_addr=request.META.get("REMOTE_ADDR") or None, received_at=timezone.now())
        malformed: Malformed | None = None
        try:
            payload = self.parse_body(body, content_type)
        except Malformed as exc:
            payload, malformed = None, exc
        row.payload = payload
        verify_request = rebuild_request(body=body, content_type=content_type, headers=dict(request.headers),
                                         url=row.url)
        verify_request.META["REMOTE_ADDR"] = request.META.get("REMOTE_ADDR", "")
        try:
            self.run_verify_steps(verify_request, body, payload)
        except SignatureInvalid as exc:
            row.signature_valid, row.signature_error, row.state = False, str(exc)[:500], WebhookEvent.State.REJECTED
            row.event_type, row.provider_event_id = self._describe(payload)
            _store(row)
            log.warning("%s webhook #%s refused: %s", self.name, row.pk, exc)
            return _error(errors.WebhookSignatureInvalid(),
                          WWW_Authenticate=f'Basic realm="comms-{self.name}"')
        row.signature_valid = True
        row.event_type, row.provider_event_id = self._describe(payload)
        if malformed is None:
            try:
                self.check_shape(payload)
            except Malformed as exc:
                malformed = exc
        if malformed is None:
            # The task processes the row at once; the beat sweep only steps in if the task was lost.
            row.next_attempt_at = row.received_at + timedelta(seconds=settings.COMMS_WEBHOOK_SWEEP_GRACE_SECONDS)
            if _store(row):
                return self.after_store(row)
            malformed = Malformed("the body holds values PostgreSQL cannot store (a NUL character or an unpaired "
                                  "surrogate in a string)")
        row.state, row.unknown, row.error = WebhookEvent.State.MALFORMED, True, str(malformed)[:2000]
        row.next_attempt_at = None
        _store(row)
        log.warning("%s webhook #%s malformed: %s", self.name, row.pk, malformed)
        return _error(malformed.error(f"Malformed {self.name} webhook body: {str(malformed)[:300]}"))

    def after_store(self, row: WebhookEvent) -> HttpResponse:
        from webhooks.tasks import process  # tasks → services → registry → this module

        transaction.on_commit(lambda: _enqueue(process, row.pk))
        return self.accepted(row)

    def _describe(self, payload: Any) -> tuple[str, str]:
        if payload is None:
            return "", ""
        try:
            kind, event_id = self.describe(payload)
        except Exception:  # describing is best effort; the body is stored whole anyway
            return "", ""
        return str(kind).replace("\x00", "")[:200], str(event_id).replace("\x00", "")[:255]


def _store(row: WebhookEvent) -> bool:
    """Save the row; False when PostgreSQL refused the parsed payload (jsonb holds no \\u0000 and no
    unpaired surrogate), in which case the row is kept without it: the raw body is what matters."""
    try:
        with transaction.atomic():
            row.save()
        return True
    except DataError:
        row.payload = None
        row.save()
        return False


def _enqueue(task: Any, webhook_id: int) -> None:
    try:
        task.delay(webhook_id)
    except Exception:  # broker down: the beat sweep picks the row up
        log.warning("could not queue webhook #%s; the sweep will process it", webhook_id)
