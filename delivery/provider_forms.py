"""The admin's provider configuration form: which provider classes comms ships, its secrets, and whether a
row is usable.

The class path stays free text (a deployment may ship its own ``Provider``), offered with the shipped
classes as suggestions (an HTML ``<datalist>``, no script); saving checks that the class imports, is a
``Provider`` and serves the row's channel, so a Vonage row on the email channel is refused at once
instead of failing every message later. Credentials are entered as JSON in a write-only box: stored
encrypted, never shown again, an empty box keeps the stored ones. A row that is not disabled must pass
its class's own ``config_problems`` when saved (the start-up check ``delivery.E002`` would otherwise stop
the next start): an APNs row without its .p8 key is refused with the reason. A disabled row may be
saved incomplete, as a draft; its page lists what it still lacks.
"""

from __future__ import annotations

import json

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
    ("push", "delivery.providers.apns.ApnsProvider"),
    ("push", "delivery.providers.webpush.WebPushProvider"),
    ("voice", "delivery.providers.twilio_voice.TwilioVoiceProvider"),
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
    credentials_json = forms.CharField(
        required=False, label="Credentials (JSON)", widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="Secrets as a JSON object (e.g. APNs: {\"key_id\": \"…\", \"private_key\": \"the .p8 file, PEM\"}); "
                  "stored encrypted and never shown again. Leave empty to keep the stored ones.")

    class Meta:
        model = ChannelProvider
        fields = "__all__"
        widgets = {"provider_class": ProviderClassInput()}

    def clean_credentials_json(self) -> dict | None:
        raw = (self.cleaned_data.get("credentials_json") or "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("Credentials are a JSON object.")
        return value

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
            return data
        if channel and getattr(cls, "channel", None) != channel:
            self.add_error("channel", f"{cls.__name__} sends {getattr(cls, 'channel', '?')}, not {channel}.")
            return data
        if self.errors or data.get("status") == ChannelProvider.State.DISABLED:
            return data  # a draft: its page lists what it lacks
        credentials = data.get("credentials_json")
        if credentials is None:
            credentials = self.instance.credentials if self.instance.pk else {}
        for problem in cls.config_problems({**(data.get("options") or {}), **(credentials or {})}):
            self.add_error(None, f"{problem} (save the row disabled to keep it as a draft).")
        return data

    def save(self, commit: bool = True) -> ChannelProvider:
        if self.cleaned_data.get("credentials_json") is not None:
            self.instance.credentials = self.cleaned_data["credentials_json"]
        return super().save(commit=commit)


def configuration_problems(row: ChannelProvider) -> list[str]:
    """What the row's provider class says it still lacks (empty: ready)."""
    try:
        cls = import_string(row.provider_class)
        return list(cls.config_problems({**row.options, **row.credentials}))
    except (ImportError, ValueError) as exc:
        return [f"cannot be checked: {exc}"]
