"""Fixtures shared by the delivery tests."""

import pytest

from delivery.models import ChannelProvider
from tests.standins.twilio import TwilioStandIn

SID, TOKEN = "AC" + "1" * 32, "secret-token"


@pytest.fixture
def twilio():
    stand_in = TwilioStandIn(SID, TOKEN)
    provider = ChannelProvider(channel="sms", name="twilio", provider_class="delivery.providers.twilio.TwilioProvider",
                               is_primary=True, options={"from_number": "+15005550006", "base_url": stand_in.url})
    provider.credentials = {"account_sid": SID, "auth_token": TOKEN}
    provider.save()
    yield stand_in
    stand_in.close()


