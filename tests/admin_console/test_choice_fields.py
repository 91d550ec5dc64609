"""Every admin field that holds a list of enum values (template channels, provider categories, API key
scopes) is a set of checkboxes, never a comma-separated text box that saves a typo (issue 13 item 14)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from comms.enums import Category, Channel
from comms.models import Scope
from delivery.models import ChannelProvider

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(client):
    client.force_login(get_user_model().objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


@pytest.mark.parametrize("url, field, enum", [
    ("/admin/templates_app/template/add/", "channels", Channel),
    ("/admin/delivery/channelprovider/add/", "categories", Category),
    ("/admin/comms/apikey/add/", "scopes", Scope),
])
def test_list_of_enum_values_is_edited_as_checkboxes(ops, url, field, enum):
    page = ops.get(url).content.decode()
    assert re.findall(rf'<input type="checkbox" name="{field}" value="([a-z_:]+)"', page) == [e.value for e in enum]
    assert not re.search(rf'<(input type="text"|textarea) name="{field}"', page)


def test_a_value_outside_the_enum_is_refused(ops, tenant):
    before = ChannelProvider.objects.count()
    response = ops.post("/admin/delivery/channelprovider/add/", {
        "tenant": str(tenant.pk), "channel": "email", "name": "mail", "provider_class": "x", "order": 0,
        "status": "active", "categories": ["transactional", "marketting"]})
    assert response.status_code == 200 and "marketting is not one of the choices" in response.content.decode()
    assert ChannelProvider.objects.count() == before
