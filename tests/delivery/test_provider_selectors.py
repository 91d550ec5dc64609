"""Provider-configuration selectors other apps read instead of querying ChannelProvider themselves."""

import pytest

from delivery import selectors
from delivery.models import ChannelProvider

pytestmark = pytest.mark.django_db
TWILIO = "delivery.providers.twilio.TwilioProvider"


def _provider(name: str, *, tenant=None, provider_class: str = TWILIO, **options) -> ChannelProvider:
    return ChannelProvider.objects.create(channel="sms", name=name, tenant=tenant, provider_class=provider_class,
                                          options=options)


def test_providers_for_number_are_tenant_rows_of_that_class_sending_from_that_number(tenant, other_tenant):
    mine = _provider("tw-a", tenant=tenant, from_number="+15005550006")
    theirs = _provider("tw-b", tenant=other_tenant, from_number="+15005550006")
    _provider("tw-shared", from_number="+15005550006")  # serves every tenant: names no one
    _provider("tw-c", tenant=tenant, from_number="+15005550007")
    _provider("sns-a", tenant=tenant, provider_class="delivery.providers.sns.SnsProvider", from_number="+15005550006")
    found = selectors.providers_for_number(provider_class="twilio.TwilioProvider", number="+15005550006")
    assert set(found) == {mine, theirs}


def test_providers_of_class_match_the_class_path_suffix_for_every_tenant(tenant):
    a, b = _provider("tw-a", tenant=tenant), _provider("tw-shared")
    _provider("sns", provider_class="delivery.providers.sns.SnsProvider")
    assert set(selectors.providers_of_class(provider_class="twilio.TwilioProvider")) == {a, b}


def test_provider_options_by_name(tenant):
    _provider("ses-eu", provider_class="delivery.providers.anymail_esp.AnymailProvider", from_email="a@shop.example")
    assert selectors.provider_options(name="ses-eu") == {"from_email": "a@shop.example"}
    assert selectors.provider_options(name="nobody") == {}
