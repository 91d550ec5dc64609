"""Attachments: the type is decided from the bytes, never from the name or the client's Content-Type.

Accepted types (COMMS_ATTACHMENT_TYPES, default PNG, JPEG, GIF, WebP, PDF, plain text) are recognised
by their magic numbers; images must also open and ``verify()`` in Pillow and are re-encoded for the
thumbnail (EXIF orientation applied, metadata stripped). Anything active — SVG, HTML, XML, scripts —
is refused whatever its name says, because a browser could run it. "Plain text" must be valid UTF-8
without NUL bytes and without markup a browser would sniff as HTML.

Bytes live in the ``COMMS_ATTACHMENT_STORAGE`` storage (django-storages: filesystem under var/ by
default, S3 when configured) and are only ever served through a signed, expiring link
(``download_token``: django.core.signing, its own salt, max_age COMMS_ATTACHMENT_LINK_SECONDS).
MMS media and inbound email attachments go through ``attachment_store`` like an upload.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.db import transaction
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from comms import errors
from comms.conversations.models import Attachment, Conversation, ConversationMessage, Participant

SALT = "comms.conversations.attachment"
RASTER = {"image/png": "PNG", "image/jpeg": "JPEG", "image/gif": "GIF", "image/webp": "WEBP"}
# Markup a browser may sniff as HTML/SVG/XML in a "text" file (WHATWG MIME sniffing, section 7.1).
_ACTIVE_TEXT = re.compile(rb"<\s*(!doctype|html|script|svg|iframe|object|embed|body|head|\?xml|meta|style|a\s|img\s)",
                          re.IGNORECASE)
Image.MAX_IMAGE_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded


@dataclass(frozen=True)
class Detected:
    content_type: str
    width: int | None = None
    height: int | None = None


def storage():
    return storages[settings.COMMS_ATTACHMENT_STORAGE]


def sniff(data: bytes) -> str:
    """The content type the bytes prove (magic numbers), or '' when none of ours matches."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"\x00" in data or _ACTIVE_TEXT.search(head) or _ACTIVE_TEXT.search(data):
        return ""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return "text/plain"


def inspect_content(data: bytes) -> Detected:
    """What `data` is, or a typed error: too large, empty, or not an allowed (inactive) type."""
    if len(data) > settings.COMMS_ATTACHMENT_MAX_BYTES:
        raise errors.AttachmentTooLarge(
            f"The attachment is {len(data)} bytes; the limit is {settings.COMMS_ATTACHMENT_MAX_BYTES}.",
            details={"size": len(data), "max_bytes": settings.COMMS_ATTACHMENT_MAX_BYTES})
    if not data:
        raise errors.ValidationFailed("The attachment is empty.", details={"field": "file"})
    kind = sniff(data)
    if not kind or kind not in settings.COMMS_ATTACHMENT_TYPES:
        raise errors.AttachmentTypeRefused(details={"detected": kind or "unknown",
                                                    "allowed": list(settings.COMMS_ATTACHMENT_TYPES)})
    if kind in RASTER:
        try:
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format != RASTER[kind]:
                    raise errors.AttachmentTypeRefused(details={"detected": kind, "decoded_as": probe.format})
                probe.verify()  # structural check: truncated or corrupt images are refused here
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise errors.AttachmentTypeRefused(f"The image does not decode: {type(exc).__name__}.",
                                               details={"detected": kind}) from None
        return Detected(kind, width, height)
    return Detected(kind)


def thumbnail(data: bytes, content_type: str) -> bytes:
    """A JPEG/PNG thumbnail re-encoded from the pixels: EXIF orientation applied, no metadata kept."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        frame = ImageOps.exif_transpose(image)
        has_alpha = frame.mode in ("RGBA", "LA", "P")
        frame = frame.convert("RGBA" if has_alpha else "RGB")
        size = settings.COMMS_ATTACHMENT_THUMBNAIL_PX
        frame.thumbnail((size, size))
        out = io.BytesIO()
        # A fresh image has no info dict: saving without exif= writes no EXIF, GPS or comments.
        clean = Image.new(frame.mode, frame.size)
        clean.paste(frame)
        clean.save(out, format="PNG" if has_alpha else "JPEG", quality=85)
        return out.getvalue()


def _safe_name(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return re.sub(r"[^\w.\- ]", "_", name)[:120] or "attachment"


def attachment_store(*, conversation: Conversation, data: bytes, filename: str = "",
                     uploaded_by: Participant | None = None, message: ConversationMessage | None = None) -> Attachment:
    """Check `data` on its content, store it (and an image's thumbnail), and record it."""
    detected = inspect_content(data)
    day = timezone.now().strftime("%Y/%m/%d")
    key = uuid.uuid4().hex
    store = storage()
    thumb_name = ""
    file_name = store.save(f"attachments/{conversation.tenant_id}/{day}/{key}", ContentFile(data))
    try:
        if detected.content_type in RASTER:
            thumb_name = store.save(f"attachments/{conversation.tenant_id}/{day}/{key}.thumb",
                                    ContentFile(thumbnail(data, detected.content_type)))
        with transaction.atomic():
            att = Attachment(tenant_id=conversation.tenant_id, conversation=conversation, message=message,
                             uploaded_by=uploaded_by, original_name=_safe_name(filename),
                             content_type=detected.content_type, size=len(data),
                             sha256=hashlib.sha256(data).hexdigest(), width=detected.width, height=detected.height)
            att.file.name, att.thumbnail.name = file_name, thumb_name
            att.save()
    except Exception:
        store.delete(file_name)  # no orphaned bytes when the row is not written
        if thumb_name:
            store.delete(thumb_name)
        raise
    return att


def attachment_files_delete(attachments) -> int:
    """Delete the stored bytes (file and thumbnail) of `attachments`; how many files went."""
    store, gone = storage(), 0
    for att in attachments:
        for name in (att.file.name, att.thumbnail.name):
            if name:
                store.delete(name)
                gone += 1
    return gone


def download_token(attachment: Attachment, *, thumb: bool = False) -> str:
    """A signed, expiring token naming one attachment (and whether the thumbnail is meant)."""
    return signing.dumps({"a": str(attachment.pk), "t": 1 if thumb else 0}, salt=SALT, compress=True)


def attachment_for_token(token: str) -> tuple[Attachment, bool]:
    """(attachment, thumbnail?) for a download token, or a typed error: expired, forged, gone."""
    try:
        claims = signing.loads(token, salt=SALT, max_age=settings.COMMS_ATTACHMENT_LINK_SECONDS)
    except signing.SignatureExpired:
        raise errors.AttachmentLinkExpired() from None
    except signing.BadSignature:
        raise errors.NotFound("No such attachment.") from None
    att = Attachment.objects.filter(pk=claims.get("a")).first()
    if att is None:
        raise errors.NotFound("No such attachment.")
    return att, bool(claims.get("t"))


def attachments_attach(*, message: ConversationMessage, attachment_ids: list, uploader: Participant) -> list[Attachment]:
    """Link uploaded attachments to the message that carries them (for services.message_post on merge).

    Only the uploader's own, not yet attached files of the same conversation: an id of another
    conversation, another participant's upload or one already carried is refused, not silently skipped.
    """
    wanted = {str(i) for i in attachment_ids}
    found = list(Attachment.objects.select_for_update().filter(
        pk__in=wanted, conversation_id=message.conversation_id, uploaded_by=uploader, message__isnull=True))
    if len(found) != len(wanted):
        missing = sorted(wanted - {str(a.pk) for a in found})
        raise errors.ValidationFailed("Some attachments are not yours to attach here (or already attached).",
                                      details={"field": "attachment_ids", "refused": missing})
    Attachment.objects.filter(pk__in=[a.pk for a in found]).update(message=message)
    return found
