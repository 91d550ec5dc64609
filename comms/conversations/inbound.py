"""Conversations across channels, inbound: an SMS or email reply becomes a message of its conversation.

``inbound_message_receive`` is COMMS_INBOUND_MESSAGE_HANDLER: the webhooks intake (Twilio SMS after its
STOP/START/HELP handling, the ESPs' inbound email routes) and the dev SMTP sink call it with a
normalised ``webhooks.inbound.InboundMessage``.

Matching. SMS: an active SMS participant with the sender's number in an open conversation of a
tenant the receiving number serves (the most recently active conversation when several). Email:
the reply-to token in ``conv+<token>@COMMS_INBOUND_EMAIL_DOMAIN`` names the conversation, and the
sender must be an active participant bound to that address. Anything else is an unknown sender:
with COMMS_CONVERSATIONS_UNKNOWN_SENDER=support it opens (or continues) a support conversation for
that address; with =drop it is recorded in the audit log and the webhook row's note, and dropped.

The provider's message id is the message's client key, so a redelivered webhook posts nothing twice.
"""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings
from django.db import transaction

from comms import errors
from comms.addresses import normalise_address
from comms.audit import audit_record
from comms.conversations.attachments import attachment_files_delete, attachment_store
from comms.conversations.bridge import participant_mark_read
from comms.conversations.models import Attachment, Conversation, ConversationMessage, Participant
from comms.conversations.quotes import html_to_text, strip_quoted
from comms.conversations.rendering import MAX_BODY_CHARS
from comms.conversations.services import message_post
from comms.models import Tenant
from comms.netsafe import resolve_safe
from comms.services import tenant_get_default
from webhooks.inbound import InboundMedia, InboundMessage

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"^conv\+([A-Za-z0-9_-]{8,40})@(.+)$", re.IGNORECASE)


def _address(channel: str, value: str) -> str:
    try:
        return normalise_address(channel, value)
    except errors.CommsError:
        return value.strip().lower()


def _sms_participant(message: InboundMessage, sender: str) -> Participant | None:
    found = Participant.objects.select_related("conversation").filter(
        binding=Participant.Binding.SMS, address=sender, left_at__isnull=True,
        conversation__state=Conversation.State.OPEN)
    if message.tenant_ids:
        found = found.filter(tenant_id__in=message.tenant_ids)
    return found.order_by("-conversation__updated_at").first()


def _email_target(message: InboundMessage, sender: str) -> tuple[Conversation | None, Participant | None]:
    match = _TOKEN.match(message.to.strip())
    if not match or match.group(2).lower() != settings.COMMS_INBOUND_EMAIL_DOMAIN.lower():
        return None, None
    conversation = Conversation.objects.filter(reply_token=match.group(1)).first()
    if conversation is None:
        return None, None
    participant = Participant.objects.filter(
        conversation=conversation, binding=Participant.Binding.EMAIL, address__iexact=sender,
        left_at__isnull=True).first()
    return conversation, participant


def _text(message: InboundMessage) -> str:
    if message.channel != "email":
        return message.text.strip()
    return strip_quoted(message.text or html_to_text(message.html))


def inbound_message_receive(*, message: InboundMessage) -> str:
    """Post `message` into its conversation (or the unknown-sender path); a note for the webhook row."""
    sender = _address(message.channel, message.sender)
    conversation, participant = None, None
    if message.channel == "sms":
        participant = _sms_participant(message, sender)
        conversation = participant.conversation if participant else None
    elif message.channel == "email":
        conversation, participant = _email_target(message, sender)
        if conversation is not None and conversation.state != Conversation.State.OPEN:
            participant = None  # a closed conversation takes no replies: handled as an unknown sender
    if participant is None:
        tenant = conversation.tenant if conversation is not None else _tenant_of(message)
        if settings.COMMS_CONVERSATIONS_UNKNOWN_SENDER != "support":
            return _drop(message, tenant)
        participant = _support_participant(tenant, message.channel, sender)
        conversation = participant.conversation
    body = _text(message)[:MAX_BODY_CHARS]  # a long email is cut, not refused
    source = ConversationMessage.Source.SMS if message.channel == "sms" else ConversationMessage.Source.EMAIL
    client_key = message.provider_ref[:255]
    if client_key:  # a redelivered webhook: answered before its media is fetched again
        existing = ConversationMessage.objects.filter(conversation=participant.conversation, sender=participant,
                                                      client_key=client_key).first()
        if existing is not None:
            return f"already posted as #{existing.index}"
    attachments = _store_media(message, participant)
    try:
        with transaction.atomic():
            posted, created = message_post(conversation=participant.conversation, sender=participant, body=body,
                                           source=source, client_key=client_key,
                                           attachment_ids=[a.pk for a in attachments])
            if created:
                participant_mark_read(participant=participant, index=posted.index)
    except errors.CommsError as exc:  # empty, or a body Markdown cannot render safely: noted on the webhook row
        _discard(attachments)
        log.info("inbound %s not posted in conversation %s: %s", message.channel, conversation.pk, exc.code)
        return f"not posted: {exc.code}"
    if not created:  # a concurrent redelivery won the race: its own uploads are attached, these are not
        _discard(attachments)
        return f"already posted as #{posted.index}"
    return f"posted #{posted.index} in conversation {conversation.pk}" + (
        f" with {len(attachments)} attachment(s)" if attachments else "")


def _discard(attachments: list[Attachment]) -> None:
    if attachments:
        attachment_files_delete(attachments)
        Attachment.objects.filter(pk__in=[a.pk for a in attachments]).delete()


def _tenant_of(message: InboundMessage) -> Tenant:
    if message.tenant_ids:
        return Tenant.objects.get(pk=message.tenant_ids[0])
    return tenant_get_default()


def _drop(message: InboundMessage, tenant: Tenant) -> str:
    # Recorded without the sender's full address (the audit log outlives erasure requests).
    masked = message.sender[-4:] if message.channel == "sms" else message.sender.rpartition("@")[2]
    audit_record(actor=None, action="conversation.inbound_dropped", target=tenant, tenant=tenant,
                 diff={"channel": message.channel, "provider": message.provider, "sender_hint": masked,
                       "provider_ref": message.provider_ref[:200], "webhook_id": message.webhook_id},
                 reason="unknown sender (COMMS_CONVERSATIONS_UNKNOWN_SENDER=drop)")
    log.info("inbound %s from an unknown sender dropped (webhook #%s)", message.channel, message.webhook_id)
    return "dropped: unknown sender"


def _support_participant(tenant: Tenant, channel: str, sender: str) -> Participant:
    """The sender's open support conversation (continued), or a new one with them as its participant."""
    binding = Participant.Binding.SMS if channel == "sms" else Participant.Binding.EMAIL
    existing = Participant.objects.select_related("conversation").filter(
        tenant=tenant, binding=binding, address=sender, left_at__isnull=True,
        conversation__kind=Conversation.Kind.SUPPORT, conversation__state=Conversation.State.OPEN).order_by(
        "-conversation__updated_at").first()
    if existing is not None:
        return existing
    with transaction.atomic():
        conversation = Conversation.objects.create(tenant=tenant, kind=Conversation.Kind.SUPPORT,
                                                   subject=f"Support: {sender}"[:200],
                                                   metadata={"opened_by": "inbound", "channel": channel})
        return Participant.objects.create(tenant=tenant, conversation=conversation, binding=binding,
                                          address=sender, display_name=sender[:120])


def _store_media(message: InboundMessage, participant: Participant) -> list[Attachment]:
    """Store each attachment like an upload of the sender (message_post attaches them); one that is
    refused (type, size, fetch) is skipped, logged."""
    stored = []
    for media in message.media:
        try:
            data = media.content if media.content is not None else fetch_media(media, provider=message.provider)
            stored.append(attachment_store(conversation=participant.conversation, data=data,
                                           filename=media.filename, uploaded_by=participant))
        except errors.CommsError as exc:
            log.warning("inbound attachment for conversation %s refused: %s", participant.conversation_id, exc.code)
    return stored


def fetch_media(media: InboundMedia, *, provider: str, max_redirects: int = 3) -> bytes:
    """GET an MMS media URL through comms.netsafe (public addresses only, checked at every redirect:
    Twilio answers its media URL with a redirect to its CDN); at most COMMS_ATTACHMENT_MAX_BYTES.

    Twilio's HTTP basic auth (account SID and auth token, for accounts that enforce it on media) is
    sent to the first host only, never to where it redirects.
    """
    url, first_host = media.url, urlsplit(media.url).hostname
    limit = settings.COMMS_ATTACHMENT_MAX_BYTES
    for _ in range(max_redirects + 1):
        host, port, ip = resolve_safe(url)
        parts = urlsplit(url)
        headers = {"Host": parts.netloc, "User-Agent": "comms-media-fetch"}
        twilio = settings.COMMS_TWILIO
        if provider == "twilio" and host == first_host and twilio.get("account_sid"):
            pair = f"{twilio['account_sid']}:{twilio.get('auth_token', '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        if parts.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(ip, port, server_hostname=host, assert_hostname=host,
                                               cert_reqs="CERT_REQUIRED", timeout=10.0, retries=False)
        else:
            pool = urllib3.HTTPConnectionPool(ip, port, timeout=10.0, retries=False)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            response = pool.urlopen("GET", path or "/", headers=headers, redirect=False, preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise errors.UnsafeDestination(f"media fetch failed: {type(exc).__name__}") from None
        try:
            if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                url = urljoin(url, response.headers["Location"])
                continue
            if response.status != 200:
                raise errors.UnsafeDestination(f"media fetch answered {response.status}")
            data = response.read(limit + 1, decode_content=True)
            if len(data) > limit:
                raise errors.AttachmentTooLarge(details={"max_bytes": limit})
            return data
        finally:
            response.release_conn()
            pool.close()
    raise errors.UnsafeDestination("media fetch: too many redirects")
