"""The admin's provider configuration: shipped classes suggested, a class on the wrong channel refused,
and what a row still lacks shown on its page (Bandwidth, Vonage and Postal among them)."""

from __future__ import annotations

import pytest

from delivery.models import ChannelProvider

pytestmark = pytest.mark.django_db


def test_add_page_suggests_the_new_provider_classes(admin_client):
    html = admin_client.get("/admin/delivery/channelprovider/add/").content.decode()
    assert 'list="comms-provider-classes"' in html
    for path in ("delivery.providers.bandwidth.BandwidthProvider", "delivery.providers.vonage.VonageProvider",
                 "delivery.providers.anymail_esp.PostalProvider"):
        assert f'<option value="{path}">' in html
    assert "<script" not in html.split("comms-provider-classes")[1].split("</datalist>")[0]


def _post(admin_client, **fields):
    data = {"channel": "sms", "name": "bw", "provider_class": "delivery.providers.bandwidth.BandwidthProvider",
            "order": 100, "options": "{}", "status": "active", "created_at_0": "2026-12-05",
            "created_at_1": "01:00:00", **fields}
    return admin_client.post("/admin/delivery/channelprovider/add/", data)


def test_a_class_on_the_wrong_channel_or_not_a_provider_is_refused(admin_client):
    response = _post(admin_client, channel="email", provider_class="delivery.providers.vonage.VonageProvider")
    assert response.status_code == 200 and "VonageProvider sends sms, not email." in response.content.decode()
    response = _post(admin_client, provider_class="delivery.models.ChannelProvider")
    assert "is not a delivery provider" in response.content.decode()
    response = _post(admin_client, provider_class="delivery.providers.nope.Nope")
    assert "cannot be imported" in response.content.decode()
    assert not ChannelProvider.objects.exists()
    # The right class, but nothing to send with: an active row is refused with what it lacks (it would
    # fail the start-up check delivery.E002); saved disabled, it is kept as a draft.
    response = _post(admin_client)
    assert response.status_code == 200 and "account_id is missing" in response.content.decode()
    assert not ChannelProvider.objects.exists()
    assert _post(admin_client, status="disabled").status_code == 302
    assert ChannelProvider.objects.get().provider_class.endswith("BandwidthProvider")


def test_one_form_checks_the_class_then_the_credentials_entered(admin_client):
    """The write-only credentials box and the class/channel check are one form: a complete Bandwidth row
    saves active, its secrets stored encrypted and not shown on its page."""
    options = '{"account_id": "1", "application_id": "a", "from_number": "+15005550006"}'
    response = _post(admin_client, options=options, credentials_json='{"username": "u", "password": "pw-secret-77"}')
    assert response.status_code == 302, response.content.decode()[:2000]
    row = ChannelProvider.objects.get()
    assert row.credentials == {"username": "u", "password": "pw-secret-77"} and row.status == "active"
    page = admin_client.get(f"/admin/delivery/channelprovider/{row.pk}/change/").content.decode()
    assert "pw-secret-77" not in page and "ready" in page and 'list="comms-provider-classes"' in page
    assert "the .p8 file, PEM" in page  # the help text's example survives the admin's HTML rendering
    response = _post(admin_client, name="bw2", channel="email", options=options, credentials_json='{"username": "u"}')
    assert "BandwidthProvider sends sms, not email." in response.content.decode()


def test_the_change_page_says_what_a_row_lacks(admin_client):
    row = ChannelProvider.objects.create(channel="sms", name="vg", provider_class="delivery.providers.vonage.VonageProvider",
                                         options={"from_number": "15005550007"})
    html = admin_client.get(f"/admin/delivery/channelprovider/{row.pk}/change/").content.decode()
    assert "api_key is missing" in html and "api_secret or signature_secret is missing" in html
    row.credentials = {"api_key": "k", "api_secret": "s"}
    row.save()
    html = admin_client.get(f"/admin/delivery/channelprovider/{row.pk}/change/").content.decode()
    assert "ready" in html
