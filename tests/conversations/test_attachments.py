"""Attachments: upload as a participant (API key or the end user's inbox token), type checked on the
content, thumbnails without metadata, signed expiring links, safe serving, S3 through moto."""

from __future__ import annotations

import io
import time

import boto3
import pytest
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer
from PIL import Image

from comms.conversations.attachments import download_token
from comms.conversations.models import Attachment, Conversation, Participant
from comms.devserver.embedded import free_port
from comms.models import Recipient, Scope
from delivery.inbox import inbox_token

pytestmark = pytest.mark.django_db


def jpeg_with_exif(width=64, height=32) -> bytes:
    """A JPEG whose EXIF says 'rotate 90° clockwise' (orientation 6) and carries GPS and a camera."""
    image = Image.new("RGB", (width, height), "blue")
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def png(width=10, height=10) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (255, 0, 0, 128)).save(out, format="PNG")
    return out.getvalue()


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


@pytest.fixture
def ada_inbox(conversation, client):
    client.defaults["HTTP_AUTHORIZATION"] = f"Inbox {inbox_token(recipient=conversation.ada.recipient)}"
    return client


def _upload(client, conversation, data: bytes, name: str, **extra):
    from django.core.files.uploadedfile import SimpleUploadedFile

    # The client claims image/png whatever the bytes are: the claim is ignored.
    return client.post(f"/api/v1/conversations/{conversation.pk}/attachments",
                       {"file": SimpleUploadedFile(name, data, content_type="image/png"), **extra})


def test_upload_with_an_inbox_token_makes_a_clean_thumbnail(conversation, ada_inbox):
    response = _upload(ada_inbox, conversation, jpeg_with_exif(), "holiday.png")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["content_type"], body["width"], body["height"]) == ("image/jpeg", 64, 32)
    att = Attachment.objects.get(pk=body["id"])
    assert att.uploaded_by_id == conversation.ada.pk
    thumb = ada_inbox.get(body["thumbnail_url"].replace("http://testserver", ""))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(thumb.content))
    assert image.size == (32, 64)  # EXIF orientation applied: the 64x32 landscape is now portrait
    assert not image.getexif() and "exif" not in image.info  # no camera, no GPS, no orientation left


def test_download_link_serves_safely_and_expires(conversation, ada_inbox, settings):
    body = _upload(ada_inbox, conversation, b"%PDF-1.4\n%%EOF\n", "report.pdf").json()
    path = body["url"].replace("http://testserver", "")
    response = ada_inbox.get(path, HTTP_AUTHORIZATION="")
    assert response.status_code == 200 and response.content == b"%PDF-1.4\n%%EOF\n"
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    settings.COMMS_ATTACHMENT_LINK_SECONDS = 1
    time.sleep(2.1)
    expired = ada_inbox.get(path)
    assert expired.status_code == 410 and expired.json()["code"] == "COMMS_ATTACHMENT_LINK_EXPIRED"
    forged = ada_inbox.get(path[:-3] + "abc")
    assert forged.status_code == 404 and forged.json()["code"] == "COMMS_NOT_FOUND"


def test_raster_images_inline_text_as_attachment(conversation, ada_inbox):
    image = _upload(ada_inbox, conversation, png(), "dot.png").json()
    response = ada_inbox.get(image["url"].replace("http://testserver", ""))
    assert response["Content-Disposition"].startswith("inline;") and response["Content-Type"] == "image/png"
    text = _upload(ada_inbox, conversation, "Tracking: 1Z999\n".encode(), "notes.txt").json()
    assert text["content_type"] == "text/plain" and text["thumbnail_url"] is None
    response = ada_inbox.get(text["url"].replace("http://testserver", ""))
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("data, name", [(SVG, "cat.png"), (HTML, "page.png"), (b"MZ\x90\x00\x03", "app.png"),
                                        (b"\x89PNG\r\n\x1a\n" + b"not really a png", "broken.png"),
                                        (b"GIF89a<script>alert(1)</script>", "polyglot.gif")],
                         ids=["svg-as-png", "html-as-png", "exe-as-png", "truncated-png", "gif-polyglot"])
def test_active_or_fake_content_is_refused_whatever_its_name(conversation, ada_inbox, data, name):
    response = _upload(ada_inbox, conversation, data, name)
    assert response.status_code == 415, response.content
    assert response.json()["code"] == "COMMS_ATTACHMENT_TYPE"
    assert not Attachment.objects.exists()


def test_oversize_is_refused(conversation, ada_inbox, settings):
    settings.COMMS_ATTACHMENT_MAX_BYTES = 1000
    response = _upload(ada_inbox, conversation, b"a" * 1001, "big.txt")
    assert response.status_code == 413 and response.json()["code"] == "COMMS_ATTACHMENT_TOO_LARGE"
    big = _upload(ada_inbox, conversation, b"a" * 200_000, "huge.txt")  # refused on Content-Length alone
    assert big.status_code == 413 and big.json()["code"] == "COMMS_ATTACHMENT_TOO_LARGE"
    assert not Attachment.objects.exists()


def test_types_are_configurable(conversation, ada_inbox, settings):
    settings.COMMS_ATTACHMENT_TYPES = ["image/png"]
    assert _upload(ada_inbox, conversation, b"%PDF-1.4\n", "a.pdf").status_code == 415
    assert _upload(ada_inbox, conversation, png(), "a.png").status_code == 201


def test_api_key_acts_for_a_participant_and_outsiders_are_refused(conversation, api, client, tenant, other_tenant):
    ok = _upload(api, conversation, png(), "a.png", participant_id=str(conversation.bob.pk))
    assert ok.status_code == 201 and Attachment.objects.get().uploaded_by_id == conversation.bob.pk
    missing = _upload(api, conversation, png(), "a.png")
    assert missing.status_code == 400 and missing.json()["code"] == "COMMS_VALIDATION_ERROR"
    # An inbox token of someone who is not a participant: 403.
    dan = Recipient.objects.create(tenant=tenant, external_id="dan")
    client.defaults["HTTP_AUTHORIZATION"] = f"Inbox {inbox_token(recipient=dan)}"
    refused = _upload(client, conversation, png(), "a.png")
    assert refused.status_code == 403 and refused.json()["code"] == "COMMS_FORBIDDEN"
    # Another tenant's conversation is 404, exactly like one that does not exist (no existence leak).
    foreign = Conversation.objects.create(tenant=other_tenant)
    Participant.objects.create(tenant=other_tenant, conversation=foreign, address="+14155550100", binding="sms")
    assert _upload(api, foreign, png(), "a.png", participant_id="x").status_code == 404
    client.defaults["HTTP_AUTHORIZATION"] = "Inbox forged.token"
    assert _upload(client, conversation, png(), "a.png").status_code == 401


@pytest.fixture
def s3(settings):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    params = {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "eu-west-1",
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    boto3.client("s3", **params).create_bucket(Bucket="comms-attachments",
                                               CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    settings.STORAGES = {**settings.STORAGES, "attachments": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "comms-attachments", "endpoint_url": params["endpoint_url"],
                    "region_name": "eu-west-1", "access_key": "testing", "secret_key": "testing",
                    "default_acl": "private", "file_overwrite": False}}}
    yield boto3.client("s3", **params)
    server.stop()


def test_s3_storage_through_moto(conversation, ada_inbox, s3):
    body = _upload(ada_inbox, conversation, jpeg_with_exif(), "photo.jpg").json()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="comms-attachments")["Contents"])
    att = Attachment.objects.get(pk=body["id"])
    assert keys == sorted([att.file.name, att.thumbnail.name])
    stored = s3.get_object(Bucket="comms-attachments", Key=att.file.name)["Body"].read()
    assert stored == jpeg_with_exif()
    assert ada_inbox.get(body["url"].replace("http://testserver", "")).content == stored


def test_link_for_an_existing_attachment(conversation, ada_inbox):
    body = _upload(ada_inbox, conversation, png(), "a.png").json()
    again = ada_inbox.get(f"/api/v1/conversations/{conversation.pk}/attachments/{body['id']}")
    assert again.status_code == 200 and again.json()["sha256"] == body["sha256"]
    assert again.json()["url"] != "" and download_token(Attachment.objects.get()) is not None
    assert storages["attachments"].exists(Attachment.objects.get().file.name)


def test_attach_only_own_unattached_uploads_of_the_conversation(conversation, tenant):
    from comms import errors
    from comms.conversations.attachments import attachment_store, attachments_attach
    from tests.conversations.conftest import post

    mine = attachment_store(conversation=conversation, data=png(), filename="a.png", uploaded_by=conversation.ada)
    theirs = attachment_store(conversation=conversation, data=png(), filename="b.png", uploaded_by=conversation.bob)
    message, _ = post(conversation=conversation, sender=conversation.ada, body="pic", fanout=False)
    with pytest.raises(errors.ValidationFailed) as refused:
        attachments_attach(message=message, attachment_ids=[mine.pk, theirs.pk], uploader=conversation.ada)
    assert refused.value.details["refused"] == [str(theirs.pk)]
    assert attachments_attach(message=message, attachment_ids=[mine.pk], uploader=conversation.ada) == [mine]
    assert Attachment.objects.get(pk=mine.pk).message_id == message.pk
    with pytest.raises(errors.ValidationFailed):  # already carried by a message
        attachments_attach(message=message, attachment_ids=[mine.pk], uploader=conversation.ada)
