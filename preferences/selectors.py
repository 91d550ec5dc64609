"""Read models for the API and the pages."""

from __future__ import annotations

from typing import Any

from comms.models import Recipient
from preferences import catalogue
from preferences.models import ConsentRecord, QuietHours
from preferences.subscriptions import subscriptions_of
from preferences.tokens import preference_center_url


def quiet_hours_of(*, recipient: Recipient) -> list[dict[str, Any]]:
    return [{"category": q.category, "enabled": q.enabled, "start": q.start.strftime("%H:%M"),
             "end": q.end.strftime("%H:%M"), "timezone": q.timezone or recipient.timezone,
             "channels": q.channels or ["sms", "push"]}
            for q in QuietHours.objects.filter(recipient=recipient).order_by("category")]


def preferences_view(*, recipient: Recipient) -> dict[str, Any]:
    from preferences.services import effective_preferences

    return {
        "recipient_id": recipient.external_id,
        "categories": [{"key": c.key, "name": c.name, "critical": c.critical, "marketing": c.marketing,
                        "double_opt_in": c.double_opt_in} for c in catalogue.categories(recipient.tenant_id)],
        "preferences": [{k: v for k, v in p.items() if k != "updated_at"} | {
            "updated_at": p["updated_at"].isoformat() if p["updated_at"] else None}
            for p in effective_preferences(recipient=recipient)],
        "quiet_hours": quiet_hours_of(recipient=recipient),
        "subscriptions": subscriptions_of(recipient=recipient),
        "preference_center_url": preference_center_url(recipient=recipient),
    }


def consent_history(*, recipient: Recipient) -> list[dict[str, Any]]:
    return [{"id": c.id, "at": c.at.isoformat(), "action": c.action, "channel": c.channel, "category": c.category,
             "source": c.source, "ip": c.ip, "user_agent": c.user_agent, "consent_text": c.consent_text,
             "legal_basis": c.legal_basis}
            for c in ConsentRecord.objects.filter(tenant_id=recipient.tenant_id, recipient=recipient).order_by("id")]
