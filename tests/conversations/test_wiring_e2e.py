"""The conversation core and the channel bridge as one product, end to end.

A message posted through the REST API (or as a staff reply in the admin) reaches the SMS participant
through the Twilio stand-in and the email participant through the SMTP sink, once; the SMS
participant's reply (a signed Twilio inbound webhook posted to a real ASGI process) arrives over a live
WebSocket to the in-app participant and is not sent back to its sender; an attachment uploaded then
posted is in the message and in the WebSocket event, behind a signed link that serves its bytes.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from comms.conversations.models import ConversationMessage, Receipt
from delivery.inbox import inbox_token
from tests.conftest import _uvicorn, serving
from tests.conversations.conftest import OUR_NUMBER, SID, TOKEN, drain, end_user
from tests.conversations.wsclient import Socket

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: the on-commit hooks run as in production


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "orange").save(out, format="PNG")
    return out.getvalue()


def _to(sink, address: str) -> list:
    return [m for m in sink.messages if m["To"] == address]


def _text(mail) -> str:
    part = mail.get_payload()[0] if mail.is_multipart() else mail
    return part.get_payload(decode=True).decode()


@pytest.fixture
def asgi(twilio):
    """One uvicorn process with the Twilio credentials the inbound webhook is verified with."""
    with serving(_uvicorn, "uvicorn", extra_env={"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}) as url:
        yield url


def test_rest_post_reaches_sms_and_email_participants_exactly_once(conversation, twilio, smtp_sink):
    ada = end_user(conversation.ada.recipient)
    url = f"/api/v1/conversations/{conversation.pk}/messages"
    first = ada.post(url, {"body": "Your parcel left the warehouse", "client_key": "c-1"}, format="json")
    assert first.status_code == 201, first.json()
    again = ada.post(url, {"body": "Your parcel left the warehouse", "client_key": "c-1"}, format="json")
    assert again.status_code == 200  # the client's retry answers the first message and sends nothing
    drain()
    [sms] = twilio.messages
    assert (sms["To"], sms["Body"]) == ("+14155550111", "Ada: Your parcel left the warehouse")
    [mail] = _to(smtp_sink, "cy@example.net")
    assert "Your parcel left the warehouse" in _text(mail)
    assert not _to(smtp_sink, "ada@example.com")  # the in-app sender gets nothing by SMS/email
    receipts = Receipt.objects.filter(message_id=first.json()["id"])
    assert {r.participant_id for r in receipts if r.outbound_message_id} == {conversation.bob.pk, conversation.cy.pk}


def test_staff_reply_in_the_admin_reaches_the_channel_participants(conversation, twilio, smtp_sink, client,
                                                                    django_user_model):
    staff = django_user_model.objects.create_superuser("support", "support@example.com", "pw")
    client.force_login(staff)
    response = client.post(f"/admin/conversations/conversation/{conversation.pk}/reply/", {"body": "Refund issued"})
    assert response.status_code == 302
    drain()
    assert [m["Body"] for m in twilio.messages] == ["support: Refund issued"]
    assert len(_to(smtp_sink, "cy@example.net")) == 1


def test_sms_reply_arrives_over_the_websocket_and_is_not_echoed(conversation, twilio, smtp_sink, asgi):
    cid = str(conversation.pk)
    ada = Socket(asgi, inbox_token(recipient=conversation.ada.recipient))
    try:
        assert ada.next("ready")["participants"] == {cid: str(conversation.ada.pk)}
        posted = httpx.post(f"{asgi}/api/v1/conversations/{cid}/messages", json={"body": "Tomorrow at 10?"},
                            headers={"Authorization": f"Inbox {inbox_token(recipient=conversation.ada.recipient)}"})
        assert posted.status_code == 201, posted.text
        ada.next("message.created", timeout=15)
        drain()
        assert [m["To"] for m in twilio.messages] == ["+14155550111"]

        webhook = f"{asgi}/webhooks/twilio/sms"
        fields, signature = twilio.inbound_sms(url=webhook, sender="+14155550111", to=OUR_NUMBER,
                                               body="Yes, after 10am please")
        answer = httpx.post(webhook, data=fields, headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 200, answer.text

        event = ada.next("message.created", timeout=15)
        message = event["message"]
        assert (message["body"], message["source"], message["index"]) == ("Yes, after 10am please", "sms", 2)
        assert message["sender"]["participant_id"] == str(conversation.bob.pk)
        read = ada.next("receipt", kind="read", participant_id=str(conversation.bob.pk))
        assert read["index"] == 2  # answering read everything before it
    finally:
        ada.close()
    # The same webhook delivered again posts nothing twice.
    assert httpx.post(webhook, data=fields, headers={"X-Twilio-Signature": signature}).status_code == 200
    assert ConversationMessage.objects.filter(conversation=conversation).count() == 2
    drain()
    assert [m["To"] for m in twilio.messages] == ["+14155550111"]  # never sent back to Bob
    to_cy = _to(smtp_sink, "cy@example.net")
    assert len(to_cy) == 2 and "Yes, after 10am please" in _text(to_cy[-1])


def test_uploaded_attachment_is_in_the_message_and_the_websocket_event(conversation, twilio, smtp_sink, asgi):
    cid = str(conversation.pk)
    auth = {"Authorization": f"Inbox {inbox_token(recipient=conversation.ada.recipient)}"}
    ada = Socket(asgi, inbox_token(recipient=conversation.ada.recipient))
    try:
        ada.next("ready")
        image = _png()
        upload = httpx.post(f"{asgi}/api/v1/conversations/{cid}/attachments", headers=auth,
                            files={"file": ("door.png", image, "image/png")})
        assert upload.status_code == 201, upload.text
        attachment_id = upload.json()["id"]
        posted = httpx.post(f"{asgi}/api/v1/conversations/{cid}/messages", headers=auth,
                            json={"body": "The door", "attachment_ids": [attachment_id]})
        assert posted.status_code == 201, posted.text
        [carried] = posted.json()["attachments"]
        assert (carried["id"], carried["content_type"], carried["width"]) == (attachment_id, "image/png", 40)
        event = ada.next("message.created", timeout=15)
    finally:
        ada.close()
    [in_event] = event["message"]["attachments"]
    assert in_event["id"] == attachment_id and in_event["thumbnail_url"]
    download = httpx.get(asgi + urlsplit(in_event["url"]).path)  # the signed link is the only credential
    assert download.status_code == 200 and download.content == image
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    listed = httpx.get(f"{asgi}/api/v1/conversations/{cid}/messages", headers=auth).json()["results"]
    assert [a["id"] for a in listed[-1]["attachments"]] == [attachment_id]
    # Posting the same upload again is refused (already carried): a typed 400, nothing posted.
    refused = httpx.post(f"{asgi}/api/v1/conversations/{cid}/messages", headers=auth,
                         json={"body": "again", "attachment_ids": [attachment_id]})
    assert refused.status_code == 400 and refused.json()["details"]["refused"] == [attachment_id]
    assert ConversationMessage.objects.filter(conversation=conversation).count() == 1
