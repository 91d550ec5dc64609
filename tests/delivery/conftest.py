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




@pytest.fixture
def fcm():
    """The FCM stand-in with a push provider row holding a service account the tests generated."""
    from tests.standins.fcm import FcmStandIn

    stand_in = FcmStandIn(project_id="comms-test")
    provider = ChannelProvider(channel="push", name="fcm", provider_class="delivery.providers.fcm.FcmProvider",
                               is_primary=True, options={"endpoint": stand_in.url, "timeout": 2})
    provider.credentials = {"service_account": stand_in.service_account()}
    provider.save()
    yield stand_in
    stand_in.close()
