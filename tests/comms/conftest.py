import pytest


@pytest.fixture(autouse=True)
def _no_asset_fetch(settings):
    settings.COMMS_ASSET_CHECK = False
