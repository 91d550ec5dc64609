"""Double opt-in (EC-COM-021): subscribe → confirmation message → confirm link → subscribed.

No marketing goes to a pending subscription (the decision requires ``double_opt_in_confirmed``).
Beat runs :func:`double_opt_in_sweep`: one reminder after COMMS_DOUBLE_OPT_IN_REMIND_HOURS, and
pending requests older than COMMS_DOUBLE_OPT_IN_EXPIRE_DAYS are deleted (an unconfirmed address
is not ours to keep).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from comms import errors
from comms.models import Recipient
from preferences import catalogue
from preferences.models import ChannelSubscription, ConsentAction, SubscriptionStatus, UpdatedBy, UserPreference
from preferences.tokens import confirm_claims, confirm_token, public_url

log = logging.getLogger(__name__)


def language_for(locale: str) -> str:
    """The page/e-mail language for a recipient locale ("es-MX" → "es"), English when unsupported."""
    code = (locale or "en").replace("_", "-").split("-")[0].lower()
    return code if code in {c for c, _ in settings.LANGUAGES} else "en"


def _send_confirmation(sub: ChannelSubscription, *, reminder: bool) -> None:
    recipient = sub.recipient
    cat = catalogue.category(recipient.tenant_id, sub.list_id)
    context = {"reminder": reminder, "confirm_url": public_url(f"/s/confirm/{confirm_token(subscription=sub)}")}
    with translation.override(language_for(recipient.locale)):
        context["list_name"] = translation.gettext(sub.list_name or cat.name or sub.list_id)
        subject = render_to_string("preferences/email/confirm_subject.txt", context).strip()
        body = render_to_string("preferences/email/confirm_body.txt", context)
        body_html = render_to_string("preferences/email/confirm_body.html", context)
    # Sent through the one pipeline, which is delivery's (above this app): named in settings, not imported.
    import_string(settings.COMMS_SYSTEM_EMAIL_SENDER)(
        tenant=recipient.tenant, recipient_id=recipient.external_id, subject=subject, body=body, body_html=body_html,
        category="transactional", priority=1, metadata={"purpose": "double_opt_in"},
        idempotency_key=f"double-opt-in:{sub.pk}:{sub.reminders_sent if reminder else 0}:{int(sub.requested_at.timestamp())}")


@transaction.atomic
def subscription_request(*, recipient: Recipient, list_id: str, channel: str = "email", source: str,
                         ip: str | None = None, user_agent: str | None = "", consent_text: str = "") -> ChannelSubscription:
    """Start a subscription. Categories that need double opt-in go 'pending' and get a confirmation
    e-mail; others are subscribed at once (with the consent recorded)."""
    from preferences.services import consent_record

    cat = catalogue.require(recipient.tenant_id, list_id)
    now = timezone.now()
    sub, _ = ChannelSubscription.objects.select_for_update().get_or_create(
        recipient=recipient, list_id=cat.key, channel=channel,
        defaults={"tenant_id": recipient.tenant_id, "list_name": cat.name, "status": SubscriptionStatus.PENDING,
                  "source": source[:64], "requested_at": now})
    if sub.status == SubscriptionStatus.SUBSCRIBED and (sub.double_opt_in_confirmed or not cat.double_opt_in):
        return sub
    needs_confirmation = cat.double_opt_in and channel == "email"
    sub.source, sub.requested_at, sub.reminders_sent = source[:64], now, 0
    if needs_confirmation:
        sub.status = SubscriptionStatus.PENDING
        sub.save()
        _send_confirmation(sub, reminder=False)
        return sub
    sub.status, sub.subscribed_at = SubscriptionStatus.SUBSCRIBED, now
    sub.save()
    _enable(recipient, cat.key, channel, now)
    consent_record(tenant=recipient.tenant, recipient=recipient, channel=channel, category=cat.key,
                   action=ConsentAction.GRANTED, source=source, ip=ip, user_agent=user_agent,
                   consent_text=consent_text or f"Subscribe to {cat.name}")
    return sub


def _enable(recipient: Recipient, category: str, channel: str, now: dt.datetime) -> None:
    UserPreference.objects.update_or_create(
        recipient=recipient, channel=channel, category=category,
        defaults={"tenant_id": recipient.tenant_id, "enabled": True, "updated_at": now, "updated_by": UpdatedBy.USER})


@transaction.atomic
def subscription_confirm(*, token: str, ip: str | None = None, user_agent: str | None = "") -> ChannelSubscription:
    """The confirm link: the subscription becomes active and the consent is recorded."""
    from preferences.services import consent_record

    tenant_id, sub_id = confirm_claims(token)
    sub = ChannelSubscription.objects.select_for_update().select_related("recipient__tenant").filter(
        tenant_id=tenant_id, pk=sub_id).first()
    if sub is None or sub.status == SubscriptionStatus.UNSUBSCRIBED:
        raise errors.InvalidToken("This confirmation link is no longer valid.", details={"reason": "gone"})
    if sub.double_opt_in_confirmed and sub.status == SubscriptionStatus.SUBSCRIBED:
        return sub  # a second click (or a link scanner after the person) changes nothing
    now = timezone.now()
    sub.status, sub.subscribed_at = SubscriptionStatus.SUBSCRIBED, now
    sub.double_opt_in_confirmed, sub.double_opt_in_at = True, now
    sub.save()
    _enable(sub.recipient, sub.list_id, sub.channel, now)
    consent_record(tenant=sub.recipient.tenant, recipient=sub.recipient, channel=sub.channel, category=sub.list_id,
                   action=ConsentAction.GRANTED, source="double_opt_in", ip=ip, user_agent=user_agent,
                   consent_text=f"Confirmed subscription to {sub.list_name or sub.list_id} (double opt-in)")
    return sub


def double_opt_in_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Remind pending subscriptions once, then delete those never confirmed."""
    now = now or timezone.now()
    expired = ChannelSubscription.objects.filter(
        status=SubscriptionStatus.PENDING,
        requested_at__lt=now - dt.timedelta(days=settings.COMMS_DOUBLE_OPT_IN_EXPIRE_DAYS)).delete()[0]
    reminded = 0
    due = ChannelSubscription.objects.filter(
        status=SubscriptionStatus.PENDING, reminders_sent__lt=settings.COMMS_DOUBLE_OPT_IN_MAX_REMINDERS,
        requested_at__lt=now - dt.timedelta(hours=settings.COMMS_DOUBLE_OPT_IN_REMIND_HOURS),
    ).select_related("recipient__tenant")
    for sub in due[:1000]:
        with transaction.atomic():
            sub.reminders_sent += 1
            sub.last_reminder_at = now
            sub.save(update_fields=["reminders_sent", "last_reminder_at"])
            try:
                _send_confirmation(sub, reminder=True)
            except errors.CommsError as exc:  # e.g. the address got suppressed meanwhile
                log.info("no double opt-in reminder for subscription %s: %s", sub.pk, exc.message)
            reminded += 1
    return {"reminded": reminded, "expired": expired}


def subscriptions_of(*, recipient: Recipient) -> list[dict[str, Any]]:
    return [{"list_id": s.list_id, "list_name": s.list_name, "channel": s.channel, "status": s.status,
             "source": s.source, "subscribed_at": s.subscribed_at, "unsubscribed_at": s.unsubscribed_at,
             "double_opt_in_confirmed": s.double_opt_in_confirmed, "double_opt_in_at": s.double_opt_in_at}
            for s in ChannelSubscription.objects.filter(recipient=recipient).order_by("list_id", "channel")]
