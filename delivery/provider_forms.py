"""The admin's provider configuration form: which provider classes comms ships, and whether a row is usable.

The class path stays free text (a deployment may ship its own ``Provider``), offered with the shipped
classes as suggestions (an HTML ``<datalist>``, no script); saving checks that the class imports, is a
``Provider`` and serves the row's channel, so a Vonage row on the email channel is refused at once
instead of failing every message later. What the row still lacks is shown on its page from the
class's own ``config_problems`` (the check ``delivery.E002`` runs at start-up).
"""

from __future__ import annotations

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.module_loading import import_string

from delivery.models import ChannelProvider
from delivery.providers.base import Provider

SHIPPED_PROVIDER_CLASSES = (
    ("email", "delivery.providers.smtp.SmtpProvider"),
    ("email", "delivery.providers.anymail_esp.AnymailProvider"),
    ("email", "delivery.providers.anymail_esp.PostalProvider"),
    ("sms", "delivery.providers.twilio.TwilioProvider"),
    ("sms", "delivery.providers.sns.SnsProvider"),
    ("sms", "delivery.providers.bandwidth.BandwidthProvider"),
    ("sms", "delivery.providers.vonage.VonageProvider"),
    ("push", "delivery.providers.fcm.FcmProvider"),
    ("in_app", "delivery.providers.in_app.InAppProvider"),
    ("webhook", "delivery.providers.webhook.WebhookProvider"),
)


class ProviderClassInput(forms.TextInput):
    """A text input suggesting the shipped provider classes."""

    def __init__(self, attrs: dict | None = None):
        super().__init__({**(attrs or {}), "list": "comms-provider-classes", "class": "vTextField"})

    def render(self, name, value, attrs=None, renderer=None):  # noqa: ANN001 - Django's widget signature
        options = format_html_join("", '<option value="{}">{}</option>', ((p, ch) for ch, p in SHIPPED_PROVIDER_CLASSES))
        return format_html('{}<datalist id="comms-provider-classes">{}</datalist>',
                           super().render(name, value, attrs, renderer), options)


class ChannelProviderForm(forms.ModelForm):
    class Meta:
        model = ChannelProvider
        fields = "__all__"
        widgets = {"provider_class": ProviderClassInput()}

    def clean(self) -> dict:
        data = super().clean()
        path, channel = data.get("provider_class") or "", data.get("channel") or ""
        if not path:
            return data
        try:
            cls = import_string(path)
        except ImportError:
            self.add_error("provider_class", f"{path} cannot be imported.")
            return data
        if not (isinstance(cls, type) and issubclass(cls, Provider)):
            self.add_error("provider_class", f"{path} is not a delivery provider.")
        elif channel and getattr(cls, "channel", None) != channel:
            self.add_error("channel", f"{cls.__name__} sends {getattr(cls, 'channel', '?')}, not {channel}.")
        return data


def configuration_problems(row: ChannelProvider) -> list[str]:
    """What the row's provider class says it still lacks (empty: ready)."""
    try:
        cls = import_string(row.provider_class)
        return list(cls.config_problems({**row.options, **row.credentials}))
    except (ImportError, ValueError) as exc:
        return [f"cannot be checked: {exc}"]
