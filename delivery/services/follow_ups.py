"""Messages that continue an accepted one: its fallback channel after a final failure, a later
follow-up per push device that refused it for now, and one send per share of a fan-out (another
vendor's devices).

Split from enqueue.py: each is a new message through ``message_enqueue``, keyed on the original so a
repeated outcome never makes two.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from typing import Any

from comms import errors
from comms.enums import LogEvent
from comms.models import Recipient
from delivery.models import DeliveryLog, Message
from delivery.services.enqueue import SendSpec, message_enqueue


def _same_content(message: Message, **target: Any) -> SendSpec:
    """A spec sending `message`'s content again (to `target`'s channel/address/time): the same template,
    variables and locale, or the same inline text (a bulk row's is on its batch)."""
    content = message.batch if message.batch_id and not message.subject and not message.body else message
    inline = not message.template_key
    return SendSpec(
        template_key=message.template_key, variables=message.variables, locale=message.locale if inline else "",
        subject=content.subject if inline else "", body=content.body if inline else "",
        body_html=content.body_html if inline else "", priority=message.priority, category=message.category,
        metadata=message.metadata, **target,
    )


def message_fallback(*, message: Message) -> Message | None:
    """After `message` failed for good, send the same content on its next fallback channel.

    The new message's idempotency key is derived from the failed one, so a repeated outcome can
    never create two fallbacks.
    """
    if not message.fallback_channels or message.recipient_id is None:
        return None
    recipient = Recipient.objects.filter(pk=message.recipient_id).first()
    if recipient is None:
        return None
    spec = _same_content(message, channel=message.fallback_channels[0], recipient_id=recipient.external_id,
                         fallback=tuple(message.fallback_channels[1:]))
    try:
        follow_up, _ = message_enqueue(tenant=message.tenant, spec=spec, idempotency_key=f"fallback:{message.id}",
                                       fallback_of=message.id)
    except errors.CommsError as exc:
        DeliveryLog.objects.create(message=message, event=LogEvent.FALLBACK, detail=f"no fallback: {exc.message}")
        return None
    DeliveryLog.objects.create(message=message, event=LogEvent.FALLBACK,
                               detail=f"continued on {follow_up.channel} as {follow_up.id}")
    return follow_up


def message_follow_up(*, message: Message, addresses: tuple[str, ...], at: datetime | None) -> list[Message]:
    """Send `message` again, later, to the addresses of its fan-out that refused it for now.

    One follow-up per address (a push device), keyed on the message and the address so a repeated
    outcome never makes two; each is screened and retried like any message. ``at`` None means the
    retry budget allows no later try: the refusal is logged and nothing is queued.
    """
    recipient = Recipient.objects.filter(pk=message.recipient_id).first() if message.recipient_id else None
    made = []
    for address in addresses:
        tail = address[-12:]
        if at is None:
            DeliveryLog.objects.create(message=message, event=LogEvent.FAILED, attempt=message.attempt_count,
                                       detail=f"device …{tail} refused it and no retry is left")
            continue
        spec = _same_content(message, channel=message.channel, to=address,
                             recipient_id=recipient.external_id if recipient else "", scheduled_for=at)
        key = f"follow-up:{message.id}:{hashlib.sha256(address.encode()).hexdigest()[:16]}"
        existing = Message.objects.filter(tenant_id=message.tenant_id, idempotency_key=key).first()
        if existing is not None:  # a repeated outcome (its time differs, so the fingerprint would too)
            made.append(existing)
            continue
        try:
            follow_up, _ = message_enqueue(tenant=message.tenant, spec=spec, idempotency_key=key,
                                           fallback_of=message.id)
        except errors.CommsError as exc:
            DeliveryLog.objects.create(message=message, event=LogEvent.FAILED, attempt=message.attempt_count,
                                       detail=f"device …{tail}: no follow-up: {exc.message}")
            continue
        DeliveryLog.objects.create(message=message, event=LogEvent.RETRYING, attempt=message.attempt_count,
                                   detail=f"device …{tail} refused it for now; follow-up {follow_up.id}",
                                   data={"follow_up": str(follow_up.id), "device": tail})
        made.append(follow_up)
    return made


def message_shares_enqueue(*, message: Message, shares: dict[str, dict]) -> list[Message]:
    """Send `message`'s content now as one follow-up per share (push: another vendor's devices, named in
    the share's metadata), keyed on the message and the share's name so a retried send never makes two."""
    recipient = Recipient.objects.filter(pk=message.recipient_id).first() if message.recipient_id else None
    made = []
    for name, extra in shares.items():
        key = f"share:{message.id}:{name}"
        # Only a retried send can find its share made (the first try has nothing to look up).
        existing = (Message.objects.filter(tenant_id=message.tenant_id, idempotency_key=key).first()
                    if message.attempt_count > 1 else None)
        if existing is not None:
            made.append(existing)
            continue
        spec = _same_content(message, channel=message.channel, to="" if recipient else message.recipient_address,
                             recipient_id=recipient.external_id if recipient else "")
        spec = replace(spec, metadata={**(message.metadata or {}), **extra})
        try:
            share, _ = message_enqueue(tenant=message.tenant, spec=spec, idempotency_key=key, fallback_of=message.id)
        except errors.CommsError as exc:
            DeliveryLog.objects.create(message=message, event=LogEvent.FAILED, attempt=message.attempt_count,
                                       detail=f"{name}: no follow-up: {exc.message}")
            continue
        DeliveryLog.objects.create(message=message, event=LogEvent.FALLBACK, attempt=message.attempt_count,
                                   detail=f"{name}'s devices: follow-up {share.id}",
                                   data={"follow_up": str(share.id), "share": name})
        made.append(share)
    return made
