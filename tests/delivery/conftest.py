"""Fixtures shared by the delivery tests."""

import pytest

from delivery.models import ChannelProvider

from tests.conftest import TWILIO_SID as SID, TWILIO_TOKEN as TOKEN  # noqa: F401
# (the `twilio` fixture itself lives in tests/conftest.py)


@pytest.fixture
def fcm():
    """The FCM stand-in with a push provider row holding a service account the tests generated."""
    from comms.devserver.standins.fcm import FcmStandIn

    stand_in = FcmStandIn(project_id="comms-test")
    provider = ChannelProvider(channel="push", name="fcm", provider_class="delivery.providers.fcm.FcmProvider",
                               is_primary=True, options={"endpoint": stand_in.url, "timeout": 2})
    provider.credentials = {"service_account": stand_in.service_account()}
    provider.save()
    yield stand_in
    stand_in.close()


SNS_REGION = "us-east-1"


@pytest.fixture
def sns():
    """moto in server mode behind a recording tap, and an SNS provider row (order 2: after a primary)."""
    from moto.server import ThreadedMotoServer

    from comms.devserver.embedded import free_port
    from comms.devserver.standins.tap import Tap

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    import requests

    requests.post(f"http://127.0.0.1:{port}/moto-api/reset", timeout=10)  # moto's state is process-wide
    tap = Tap(f"http://127.0.0.1:{port}")
    provider = ChannelProvider(channel="sms", name="sns", provider_class="delivery.providers.sns.SnsProvider",
                               order=2, options={"region_name": SNS_REGION, "endpoint_url": tap.url,
                                                 "sender_id": "ShopCo", "timeout": 2})
    provider.credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    provider.save()
    tap.moto_url = f"http://127.0.0.1:{port}"
    yield tap
    tap.close()
    server.stop()


def sns_sent() -> dict:
    """What moto's SNS took: message id -> (phone number, text)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    return dict(sns_backends[DEFAULT_ACCOUNT_ID][SNS_REGION].sms_messages)
