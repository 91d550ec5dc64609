"""An email participant: threaded outbound mail with the conversation's reply-to address, and replies
through the SMTP sink, SendGrid Inbound Parse (basic auth), Mailgun routes (real HMAC signatures)
and Postmark inbound, each with its quoted history stripped."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import smtplib
import time
from email.message import EmailMessage

import pytest
from django.conf import settings as django_settings

from comms.conversations.bridge import reply_address, thread_root_id
from comms.conversations.models import Attachment, Conversation, ConversationMessage
from tests.conftest import wait_for
from tests.conversations.conftest import drain, post

GMAIL_REPLY = """Tuesday works, thanks!

On Sat, Dec 5, 2026 at 10:02 AM Ada <{to}> wrote:

> Your parcel left the warehouse.
"""

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def reply_mime(*, sender: str, to: str, text: str, attach: bytes | None = None, in_reply_to: str = "") -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = f"Cy Young <{sender}>", to, "Re: Order 1042"
    mail["Message-ID"] = f"<{secrets.token_hex(8)}@mail.example.net>"
    if in_reply_to:
        mail["In-Reply-To"] = mail["References"] = in_reply_to
    mail.set_content(text)
    if attach is not None:
        mail.add_attachment(attach, maintype="application", subtype="pdf", filename="receipt.pdf")
    return mail


@pytest.mark.django_db
def test_outbound_mail_threads_and_answers_to_the_conversation(conversation, twilio, smtp_sink):
    post(conversation=conversation, sender=conversation.ada, body="Your parcel left the warehouse.")
    post(conversation=conversation, sender=conversation.ada, body="Tuesday?")
    drain()
    mails = [m for m in smtp_sink.messages if m["To"] == "cy@example.net"]
    assert len(mails) == 2
    for mail in mails:
        assert mail["Reply-To"] == reply_address(conversation)
        assert mail["Reply-To"].startswith(f"conv+{conversation.reply_token}@{django_settings.COMMS_INBOUND_EMAIL_DOMAIN}")
        assert mail["In-Reply-To"] == mail["References"] == thread_root_id(conversation)
        assert mail["Subject"] == "Re: Order 1042"
    assert mails[0]["Message-ID"] != mails[1]["Message-ID"]


@pytest.mark.django_db(transaction=True)
def test_reply_through_the_smtp_sink_lands_in_the_conversation(conversation, smtp_sink):
    to = reply_address(conversation)
    mail = reply_mime(sender="cy@example.net", to=to, text=GMAIL_REPLY.format(to=to), attach=PDF)
    with smtplib.SMTP("127.0.0.1", int(django_settings.EMAIL_PORT)) as smtp:
        smtp.send_message(mail, from_addr="cy@example.net", to_addrs=[to])
    wait_for(lambda: ConversationMessage.objects.filter(conversation=conversation).exists(), timeout=15,
             message="the reply posted")
    posted = ConversationMessage.objects.get(conversation=conversation)
    assert (posted.body, posted.source, posted.sender_id) == ("Tuesday works, thanks!", "email", conversation.cy.pk)
    [att] = Attachment.objects.filter(message=posted)
    assert (att.content_type, att.original_name) == ("application/pdf", "receipt.pdf")


@pytest.mark.django_db(transaction=True)
def test_sink_reply_from_a_non_participant_is_an_unknown_sender(conversation, smtp_sink, settings):
    settings.COMMS_CONVERSATIONS_UNKNOWN_SENDER = "support"
    to = reply_address(conversation)
    with smtplib.SMTP("127.0.0.1", int(django_settings.EMAIL_PORT)) as smtp:
        smtp.send_message(reply_mime(sender="eve@evil.example", to=to, text="let me in"),
                          from_addr="eve@evil.example", to_addrs=[to])
    wait_for(lambda: Conversation.objects.filter(kind="support").exists(), timeout=15, message="support conversation")
    assert not ConversationMessage.objects.filter(conversation=conversation).exists()
    support = Conversation.objects.get(kind="support")
    assert support.messages.get().body == "let me in" and support.tenant_id == conversation.tenant_id


@pytest.mark.django_db
def test_sendgrid_inbound_parse_with_basic_auth(conversation, client, settings):
    settings.COMMS_SENDGRID_INBOUND_AUTH = "parse:s3cret-" + secrets.token_hex(4)
    to = reply_address(conversation)
    mail = reply_mime(sender="cy@example.net", to=to, text=GMAIL_REPLY.format(to=to), attach=PDF)
    # "Send raw" Inbound Parse: the full MIME in the 'email' field, the envelope as JSON.
    form = {"email": mail.as_string(), "envelope": f'{{"to":["{to}"],"from":"cy@example.net"}}',
            "to": to, "from": "Cy Young <cy@example.net>", "subject": "Re: Order 1042", "charsets": "{}"}
    auth = "Basic " + base64.b64encode(settings.COMMS_SENDGRID_INBOUND_AUTH.encode()).decode()
    assert client.post("/webhooks/sendgrid/inbound", form).status_code == 401  # no credentials: refused
    assert not ConversationMessage.objects.exists()
    response = client.post("/webhooks/sendgrid/inbound", form, HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content
    posted = ConversationMessage.objects.get(conversation=conversation)
    assert (posted.body, posted.sender_id) == ("Tuesday works, thanks!", conversation.cy.pk)
    assert Attachment.objects.get(message=posted).sha256 == hashlib.sha256(PDF).hexdigest()


@pytest.mark.django_db
def test_sendgrid_parsed_fields_with_an_attachment(conversation, client, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.COMMS_SENDGRID_INBOUND_AUTH = "parse:pw"
    to = reply_address(conversation)
    form = {"headers": f"From: Cy Young <cy@example.net>\nTo: {to}\nSubject: Re: Order 1042\nMessage-ID: <p1@x>\n",
            "text": "Here is the receipt.\n\n-- \nCy", "from": "Cy Young <cy@example.net>", "to": to,
            "envelope": f'{{"to":["{to}"],"from":"cy@example.net"}}', "charsets": '{"text":"utf-8"}',
            "attachments": "1", "attachment-info": '{"attachment1": {"filename": "r.pdf", "type": "application/pdf"}}',
            "attachment1": SimpleUploadedFile("r.pdf", PDF, content_type="application/pdf")}
    auth = "Basic " + base64.b64encode(b"parse:pw").decode()
    assert client.post("/webhooks/sendgrid/inbound", form, HTTP_AUTHORIZATION=auth).status_code == 200
    posted = ConversationMessage.objects.get(conversation=conversation)
    assert posted.body == "Here is the receipt."
    assert Attachment.objects.get(message=posted).size == len(PDF)


def _mailgun_form(key: str, mail: EmailMessage, to: str, *, ts: float | None = None) -> dict:
    stamp, token = str(int(ts or time.time())), secrets.token_hex(25)
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"recipient": to, "sender": "cy@example.net", "from": "Cy Young <cy@example.net>",
            "subject": "Re: Order 1042", "body-mime": mail.as_string(), "timestamp": stamp, "token": token,
            "signature": signature}


@pytest.mark.django_db
def test_mailgun_route_with_a_real_signature(conversation, client, settings):
    settings.COMMS_MAILGUN_SIGNING_KEY = key = "key-" + secrets.token_hex(16)
    to = reply_address(conversation)
    mail = reply_mime(sender="cy@example.net", to=to, text=GMAIL_REPLY.format(to=to))
    forged = _mailgun_form("key-wrong", mail, to)
    assert client.post("/webhooks/mailgun/inbound", forged).status_code == 401
    stale = _mailgun_form(key, mail, to, ts=time.time() - 3600)
    assert client.post("/webhooks/mailgun/inbound", stale).status_code == 401
    form = _mailgun_form(key, mail, to)
    assert client.post("/webhooks/mailgun/inbound", form).status_code == 200
    assert client.post("/webhooks/mailgun/inbound", form).status_code == 401  # the token is single-use
    posted = ConversationMessage.objects.get(conversation=conversation)
    assert (posted.body, posted.source) == ("Tuesday works, thanks!", "email")


@pytest.mark.django_db
def test_postmark_inbound_json_with_basic_auth(conversation, client, settings):
    settings.COMMS_POSTMARK_INBOUND_AUTH = "pm:pw"
    to = reply_address(conversation)
    payload = {"FromName": "Cy Young", "From": "cy@example.net", "FromFull": {"Email": "cy@example.net", "Name": "Cy"},
               "To": to, "ToFull": [{"Email": to, "Name": ""}], "OriginalRecipient": to, "Subject": "Re: Order 1042",
               "MessageID": "a8c1040e-db1c-4e18-ac79-bc5f64c7ce2c", "TextBody": GMAIL_REPLY.format(to=to),
               "HtmlBody": "", "Headers": [{"Name": "Message-ID", "Value": "<pm1@mail.example.net>"}],
               "Attachments": [{"Name": "r.pdf", "Content": base64.b64encode(PDF).decode(),
                                "ContentType": "application/pdf", "ContentLength": len(PDF)}]}
    auth = "Basic " + base64.b64encode(b"pm:pw").decode()
    response = client.post("/webhooks/postmark/inbound", payload, content_type="application/json",
                           HTTP_AUTHORIZATION=auth)
    assert response.status_code == 200, response.content
    posted = ConversationMessage.objects.get(conversation=conversation)
    assert posted.body == "Tuesday works, thanks!"
    assert Attachment.objects.filter(message=posted).count() == 1


@pytest.mark.django_db
def test_email_to_an_unknown_token_is_dropped_when_configured(conversation, client, settings):
    from comms.audit import AuditEntry

    settings.COMMS_CONVERSATIONS_UNKNOWN_SENDER = "drop"
    settings.COMMS_POSTMARK_INBOUND_AUTH = "pm:pw"
    to = f"conv+nosuchtoken123@{settings.COMMS_INBOUND_EMAIL_DOMAIN}"
    payload = {"From": "cy@example.net", "FromFull": {"Email": "cy@example.net", "Name": "Cy"}, "To": to,
               "ToFull": [{"Email": to, "Name": ""}], "Subject": "hi", "TextBody": "hello", "Headers": []}
    response = client.post("/webhooks/postmark/inbound", payload, content_type="application/json",
                           HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"pm:pw").decode())
    assert response.status_code == 200
    assert not ConversationMessage.objects.exists()
    assert AuditEntry.objects.get(action="conversation.inbound_dropped").diff["sender_hint"] == "example.net"


@pytest.mark.django_db
def test_ses_receipt_rule_through_a_signed_sns_notification(conversation, client, settings):
    import json

    from tests.webhooks.signers import SesSigner

    signer = SesSigner(settings)
    try:
        to = reply_address(conversation)
        mail = reply_mime(sender="cy@example.net", to=to, text=GMAIL_REPLY.format(to=to))
        received = {"notificationType": "Received",
                    "mail": {"source": "cy@example.net", "messageId": "ses-1", "destination": [to],
                             "timestamp": "2026-12-05T10:00:00.000Z"},
                    "receipt": {"recipients": [to], "spamVerdict": {"status": "PASS"},
                                "action": {"type": "SNS", "encoding": "UTF8", "topicArn": signer.topic}},
                    "content": mail.as_string()}
        req = signer.sign(signer.envelope(json.dumps(received)))
        req.path = "/webhooks/ses/inbound"
        forged = json.loads(req.body)
        forged["Message"] = forged["Message"].replace("Tuesday", "Friday")
        assert client.generic("POST", req.path, json.dumps(forged).encode(), content_type=req.content_type,
                              **req.meta()).status_code == 401
        response = req.send(client)
        assert response.status_code == 200, response.content
        posted = ConversationMessage.objects.get(conversation=conversation)
        assert (posted.body, posted.sender_id) == ("Tuesday works, thanks!", conversation.cy.pk)
    finally:
        signer.close()
