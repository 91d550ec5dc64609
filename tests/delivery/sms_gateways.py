"""Fixture helpers for the Bandwidth, Vonage and Postal tests: stand-ins plus provider rows pointing at them."""

from __future__ import annotations

from delivery.models import ChannelProvider

BW = {"account_id": "9900001", "username": "api-user", "password": "api-pass", "application_id": "app-93de",
      "callback_auth": "bw-callback:s3cret"}
VONAGE = {"api_key": "abcd1234", "api_secret": "vonage-secret", "signature_secret": "sig-secret-0123456789"}


def bandwidth_row(stand_in, *, name="bandwidth", order=100, primary=True, **options) -> ChannelProvider:
    row = ChannelProvider(channel="sms", name=name, provider_class="delivery.providers.bandwidth.BandwidthProvider",
                          is_primary=primary, order=order,
                          options={"from_number": "+15005550006", "base_url": stand_in.url,
                                   "application_id": BW["application_id"], "account_id": BW["account_id"],
                                   "timeout": 2, **options})
    row.credentials = {"username": BW["username"], "password": BW["password"], "callback_auth": BW["callback_auth"]}
    row.save()
    return row


def vonage_row(stand_in, *, name="vonage", order=100, primary=True, signed=False, **options) -> ChannelProvider:
    row = ChannelProvider(channel="sms", name=name, provider_class="delivery.providers.vonage.VonageProvider",
                          is_primary=primary, order=order,
                          options={"from_number": "15005550007", "base_url": stand_in.url, "timeout": 2,
                                   "signature_method": "sha256", **options})
    credentials = {"api_key": VONAGE["api_key"], "signature_secret": VONAGE["signature_secret"]}
    if not signed:
        credentials["api_secret"] = VONAGE["api_secret"]
        credentials.pop("signature_secret")  # the webhook secret comes from settings then
    row.credentials = credentials
    row.save()
    return row
