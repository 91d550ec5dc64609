"""Issue 13 item 14: priorities are named by urgency, template channels are a checked choice, and a
template created through the API names the API key that created it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from comms.enums import Category, Channel, Priority
from comms.models import ApiKey
from templates_app.models import Template
from tests.templates_app.fixtures import order_template_data

pytestmark = pytest.mark.django_db

URGENCY = {0: "P0 emergency", 1: "P1 high", 2: "P2 normal", 3: "P3 low", 4: "P4 lowest"}


def test_priority_labels_name_urgency_and_values_do_not_change():
    assert {int(p): p.label for p in Priority} == URGENCY
    categories = {c.value for c in Category} | {c.label.lower() for c in Category}
    for priority in Priority:
        assert not set(priority.label.lower().split()) & categories  # "P4 transactional" was a category
        # Every label's name is accepted as input and means that same priority.
        assert Priority.parse(priority.label.split()[1]) == priority
        assert Priority.parse(f"P{int(priority)}") == priority
    assert Priority.parse("critical") == 0  # the seed's names keep their meaning


def test_priority_labels_show_in_the_console_admin_and_openapi(client, admin_client_user, admin_api):
    console = client.get("/console/").content.decode()
    for label in URGENCY.values():
        assert label in console
    assert "newsletter" not in console and "P4 transactional" not in console
    messages = client.get("/admin/delivery/message/").content.decode()
    assert "P4 lowest" in messages and "P2 newsletter" not in messages  # the priority filter
    schema = client.get("/api/schema/").content.decode()
    assert "P2 newsletter" not in schema and "P4 transactional" not in schema
    assert "P0 emergency, P1 high, P2 normal, P3 low, P4 lowest" in schema  # the priority field's description


@pytest.fixture
def admin_client_user(client):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(user)
    return user


def _add(client, tenant, **extra):
    data = {"tenant": str(tenant.pk), "template_key": "promo", "name": "Promo", "category": "marketing",
            "default_locale": "en-US", "sms_segment_cap": 3, "sms_overflow": "refuse", **extra}
    return client.post("/admin/templates_app/template/add/", data)


def test_template_channels_are_checkboxes_of_the_channel_enum(client, admin_client_user, tenant):
    form = client.get("/admin/templates_app/template/add/").content.decode()
    boxes = re.findall(r'<input type="checkbox" name="channels" value="([a-z_]+)"', form)
    assert boxes == [c.value for c in Channel]
    assert 'name="channels" cols' not in form and '<textarea name="channels"' not in form  # no free text

    typo = _add(client, tenant, channels=["emial"])
    assert typo.status_code == 200 and "emial is not one of the choices" in typo.content.decode()
    none = _add(client, tenant)
    assert none.status_code == 200 and "Choose at least one." in none.content.decode()
    assert not Template.objects.filter(template_key="promo").exists()

    saved = _add(client, tenant, channels=["email", "sms"])
    assert saved.status_code == 302
    template = Template.objects.get(template_key="promo")
    assert template.channels == ["email", "sms"] and template.created_by == admin_client_user
    change = client.get(f"/admin/templates_app/template/{template.pk}/change/").content.decode()
    assert re.search(r'<input type="checkbox" name="channels" value="sms"[^>]*checked', change)
    assert re.search(r'<input type="checkbox" name="channels" value="push"(?![^>]*checked)[^>]*>', change)


def test_template_created_through_the_api_names_its_api_key(client, admin_client_user, admin_api, tenant):
    created = admin_api.post("/api/v1/templates", order_template_data(), format="json")
    assert created.status_code == 201, created.content
    key = ApiKey.objects.get(tenant=tenant, name="test", scopes__contains=["admin"])
    template = Template.objects.get(template_key="order_confirmation")
    version = template.versions.get()
    assert template.created_by is None and template.created_by_key == key
    assert version.created_by_key == key
    assert template.creator == f"API key test ({key.prefix}…)"

    edited = admin_api.put("/api/v1/templates/order_confirmation", {"name": "Orders"}, format="json")
    assert edited.status_code == 200, edited.content
    assert template.versions.get(version=1).created_by_key == key  # an open draft is edited in place

    page = client.get(f"/admin/templates_app/template/{template.pk}/change/").content.decode()
    assert f"API key test ({key.prefix}…)" in page  # the "created by" field and the version history
    assert page.count(f"API key test ({key.prefix}…)") >= 2
    versions = client.get("/admin/templates_app/templateversion/").content.decode()
    assert f"API key test ({key.prefix}…)" in versions
