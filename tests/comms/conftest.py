import pytest


@pytest.fixture(autouse=True)
def _no_asset_fetch(settings):
    settings.COMMS_ASSET_CHECK = False


from tests.delivery.conftest import fcm  # noqa: E402,F401 (the FCM stand-in fixture, for push campaigns)
