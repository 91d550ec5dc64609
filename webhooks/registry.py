"""The one list of inbound webhook providers: URLs, stored headers and processing all come from it.

A new provider is one module in ``webhooks/providers/`` (a subclass of ``intake.IntakeView`` declaring
its name, URL, verify_* steps, header allow-list, event-type map, check_shape and parse) plus one
entry in ``PROVIDERS`` below; nothing else names it.
"""

from __future__ import annotations

from django.urls import URLPattern, path

from webhooks.intake import IntakeView
from webhooks.providers.esp import MailgunIntake, PostmarkIntake, SendGridIntake
from webhooks.providers.inbound_email import (
    MailgunInboundIntake, PostmarkInboundIntake, SendGridInboundIntake, SesInboundIntake,
)
from webhooks.providers.push import PushFeedbackIntake
from webhooks.providers.ses import SesIntake
from webhooks.providers.twilio import TwilioInboundIntake, TwilioStatusIntake
from webhooks.providers.twilio_voice import TwilioVoiceGatherIntake, TwilioVoiceStatusIntake
from webhooks.providers.postal import PostalIntake
from webhooks.providers.bandwidth import BandwidthIntake
from webhooks.providers.vonage import VonageDlrIntake, VonageInboundIntake

PROVIDERS: tuple[type[IntakeView], ...] = (
    SendGridIntake, MailgunIntake, PostmarkIntake, SesIntake, TwilioStatusIntake, TwilioInboundIntake,
    PushFeedbackIntake,
    TwilioVoiceStatusIntake, TwilioVoiceGatherIntake,
    # Inbound email (replies to conversations): issue 17.
    SendGridInboundIntake, MailgunInboundIntake, PostmarkInboundIntake, SesInboundIntake,
    PostalIntake, BandwidthIntake, VonageDlrIntake, VonageInboundIntake,
)

_BY_NAME: dict[str, type[IntakeView]] = {cls.name: cls for cls in PROVIDERS}

# Every stored row keeps the headers on any registered provider's allow-list (the rows have always
# kept this union, whichever provider's URL was called; filtering per provider would change them).
STORED_HEADERS: tuple[str, ...] = tuple(
    dict.fromkeys(h for cls in PROVIDERS for h in cls.header_allow_list()))


def provider_for(name: str) -> type[IntakeView] | None:
    """The class that handles rows stored under `name` (None for a provider no longer registered)."""
    return _BY_NAME.get(name)


def url_name(cls: type[IntakeView]) -> str:
    """``webhook-<url>`` with slashes as dashes (webhook-twilio-status), the names reverse() knows."""
    return "webhook-" + cls.url.replace("/", "-")


def urlpatterns() -> list[URLPattern]:
    """One route per registered provider, under /webhooks/ (config/urls.py)."""
    return [path(cls.url, cls.as_view(stored_headers=STORED_HEADERS), name=url_name(cls))
            for cls in PROVIDERS]
