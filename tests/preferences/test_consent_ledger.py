"""The consent ledger ties every row to the people it concerns and records each cause once (issue 13,
item 8): RFC 8058 one-click POSTs repeated by a mailbox provider, unsubscribe links of messages sent
to a bare address, re-permission, and erasure of one holder of a shared address."""

from __future__ import annotations

import pytest
from django.test import Client

from comms.enums import Status
from comms.models import Recipient
from delivery.models import Message
from preferences.headers import message_unsubscribe_token
from preferences.models import ConsentRecord, UserPreference
from preferences.services import (
    is_suppressed, preferences_update, recipient_erase, suppression_add, suppression_lift, unsubscribe_token,
)

pytestmark = pytest.mark.django_db


def _one_click(token: str):
    response = Client(enforce_csrf_checks=True).post(f"/u/{token}", data="List-Unsubscribe=One-Click",
                                                     content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, response.content
    return response


def _export(api, external_id: str) -> list[dict]:
    response = api.get(f"/api/v1/recipients/{external_id}/consent")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_rfc8058_post_twice_writes_one_row_linked_to_the_recipient(api, person):
    token = unsubscribe_token(recipient=person, category="booking")
    _one_click(token)
    _one_click(token)  # mailbox providers retry; Gmail's button can be pressed twice
    [row] = _export(api, person.external_id)
    assert (row["action"], row["source"], row["category"]) == ("withdrawn", "one_click", "booking")
    assert ConsentRecord.objects.filter(tenant_id=person.tenant_id).count() == 1
    assert UserPreference.objects.get(recipient=person, channel="email", category="booking").enabled is False


def test_the_same_link_after_a_resubscribe_is_a_new_withdrawal(api, person):
    token = unsubscribe_token(recipient=person, category="booking")
    _one_click(token)
    preferences_update(recipient=person, changes=[{"category": "booking", "channel": "email", "enabled": True}],
                       updated_by="user", source="preference_center")
    _one_click(token)  # an old e-mail's link, used again: the person withdrew again
    _one_click(token)
    assert [r["action"] for r in _export(api, person.external_id)] == ["withdrawn", "granted", "withdrawn"]
    assert UserPreference.objects.get(recipient=person, channel="email", category="booking").enabled is False


def test_unsubscribe_link_of_a_bare_address_is_linked_to_every_recipient_with_it(api, tenant, other_tenant):
    Recipient.objects.create(tenant=tenant, external_id="dora", email="dora@example.com")
    Recipient.objects.create(tenant=tenant, external_id="dora-work", email="Dora@Example.com")
    Recipient.objects.create(tenant=tenant, external_id="eve", email="eve@example.com")
    elsewhere = Recipient.objects.create(tenant=other_tenant, external_id="dora", email="dora@example.com")
    message = Message.objects.create(tenant=tenant, channel="email", recipient_address="dora@example.com",
                                     status=Status.SENT, category="marketing", subject="s", body="b")
    token = message_unsubscribe_token(message)
    _one_click(token)
    _one_click(token)
    assert is_suppressed(tenant=tenant, channel="email", address="dora@example.com")
    for who in ("dora", "dora-work"):
        [row] = _export(api, who)
        assert (row["action"], row["source"], row["channel"]) == ("withdrawn", "one_click", "email")
    assert _export(api, "eve") == []
    assert not ConsentRecord.objects.filter(recipient_id=elsewhere.pk).exists()
    assert ConsentRecord.objects.count() == 2


def test_bare_address_nobody_holds_keeps_one_unlinked_row(tenant):
    message = Message.objects.create(tenant=tenant, channel="email", recipient_address="nobody@example.com",
                                     status=Status.SENT, category="marketing", subject="s", body="b")
    token = message_unsubscribe_token(message)
    _one_click(token)
    _one_click(token)
    [row] = ConsentRecord.objects.all()
    assert (row.recipient_id, row.action, row.address_hash != "") == (None, "withdrawn", True)


def test_re_permission_without_a_named_recipient_is_linked_to_the_holders(api, tenant, person):
    suppression_add(tenant=tenant, channel="sms", address=person.phone, reason="unsubscribe", source="sms_keyword")
    assert suppression_lift(tenant=tenant, channel="sms", address=person.phone, source="support",
                            consent_text="Phone call, ticket 4411")
    [row] = _export(api, person.external_id)
    assert (row["action"], row["consent_text"]) == ("granted", "Phone call, ticket 4411")


def test_erasing_one_holder_of_a_shared_number_keeps_the_others_record(api, tenant, person):
    from preferences.services import sms_keyword_handle

    sibling = Recipient.objects.create(tenant=tenant, external_id="sibling", phone=person.phone)
    sms_keyword_handle(tenant=tenant, from_number=person.phone, to_number="+15005550006", body="STOP",
                       source_ref="twilio:SM1")
    recipient_erase(recipient=person)
    [row] = _export(api, sibling.external_id)
    assert row["action"] == "withdrawn"
    erased = ConsentRecord.objects.exclude(recipient_id=sibling.pk).get()
    assert (erased.recipient_id, erased.erased_at is not None) == (None, True)
