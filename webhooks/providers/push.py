"""Push feedback: our push gateway (or an operator's) reports dead tokens so devices get pruned.

FCM reports UNREGISTERED / INVALID_ARGUMENT tokens in its send response rather than by webhook;
a gateway that sends on our behalf posts them here, signed the Standard Webhooks way (the same
scheme our outbound webhook channel uses) with COMMS_PUSH_FEEDBACK_SECRET.
Body: {"type": "push.token_invalid", "data": {"token": "...", "reason": "UNREGISTERED", "tenant": "slug"}}.
Devices are pruned in the named tenant only (the default tenant when none is named): a token another
tenant registered is that tenant's record, and the kernel's devices_disable prunes by tenant.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from comms.models import Tenant
from comms.services import devices_disable, tenant_get_default
from tracking.normalised import NormalisedEvent
from webhooks.intake import NO_EVENT, Handled, IntakeView, SignatureInvalid, require
from webhooks.models import WebhookEvent

INVALID_REASONS = {"UNREGISTERED", "INVALID_ARGUMENT", "NOT_FOUND", "BadDeviceToken", "Unregistered",
                   "SENDER_ID_MISMATCH"}


class PushFeedbackIntake(IntakeView):
    name, url = "push", "push"
    audit_headers = ("Webhook-Id", "Webhook-Timestamp", "Webhook-Signature")
    # Feedback is about a device token, not a message: it records no tracking event (process() prunes).
    event_types = {"push.token_invalid": NO_EVENT}
    secret_setting = "COMMS_PUSH_FEEDBACK_SECRET"
    max_body_bytes = 64 * 1024  # one token per request

    def verify_standard_webhooks(self, request: HttpRequest, body: bytes, payload: Any) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not all(h in headers for h in ("webhook-id", "webhook-timestamp", "webhook-signature")):
            raise SignatureInvalid("push: webhook-id/-timestamp/-signature header missing")
        try:
            Webhook(settings.COMMS_PUSH_FEEDBACK_SECRET).verify(body, headers)
        except WebhookVerificationError as exc:
            raise SignatureInvalid(f"push: {exc}") from None

    def check_shape(self, payload: Any) -> None:
        require(isinstance(payload, dict) and isinstance(payload.get("type"), str)
                and isinstance(payload.get("data"), dict), "push: the body is not {\"type\": …, \"data\": {…}}")

    def describe(self, payload: Any) -> tuple[str, str]:
        return (str(payload.get("type", "")) if isinstance(payload, dict) else ""), ""

    @classmethod
    def parse(cls, webhook: WebhookEvent) -> list[NormalisedEvent]:
        return []  # token feedback names no message of ours: act() prunes the devices

    @classmethod
    def act(cls, webhook: WebhookEvent) -> Handled | None:
        state, note = process(webhook)
        return Handled(state=state, note=note)


def device_prune(*, tenant_id: object, token: str, reason: str) -> int:
    """Disable the tenant's device rows holding a token the push service calls invalid."""
    return devices_disable(tenant_id=tenant_id, tokens=[token], reason=f"push feedback: {reason}")


def process(webhook: WebhookEvent) -> tuple[str, str]:
    """(state, note) for a stored push feedback row."""
    p = webhook.payload if isinstance(webhook.payload, dict) else {}
    data = p.get("data") if isinstance(p.get("data"), dict) else {}
    if p.get("type") != "push.token_invalid" or not data.get("token"):
        return WebhookEvent.State.FLAGGED, f"unknown push feedback type {p.get('type')!r}"
    reason = str(data.get("reason", ""))
    if reason and reason not in INVALID_REASONS:
        return WebhookEvent.State.FLAGGED, f"unknown reason {reason!r}: device kept"
    slug = str(data.get("tenant") or "")
    tenant_id = Tenant.objects.filter(slug=slug).values_list("pk", flat=True).first() if slug \
        else tenant_get_default().pk
    if tenant_id is None:
        return WebhookEvent.State.FLAGGED, f"unknown tenant {slug!r}: device kept"
    pruned = device_prune(tenant_id=tenant_id, token=str(data["token"]), reason=reason or "invalid")
    return WebhookEvent.State.PROCESSED, f"{pruned} device(s) pruned"
