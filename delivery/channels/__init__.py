"""The channel layer: what a channel requires of every vendor, between the engine and the vendors.

``delivery/channels/<channel>.py`` holds a channel's policy (SMS STOP/HELP footers, email compliance
headers and the common message parts, push device targeting and pruning); a vendor module in
``delivery/providers/`` speaks only its vendor's wire format, importing ``providers.base`` and, where
it needs them, its own channel's helpers here (an email vendor calls ``email.build_email``) — never
another vendor's module.

The engine calls two entries, both on the worker's thread (never on a sending thread):
``prepare_content`` once per message, before the first vendor of its chain sees the content (so a
failover sends the same bytes), and ``settle`` after each vendor answer (the database writes a
channel's policy draws from it, e.g. disabling dead push tokens).

Content limits (length caps per channel) are checked when a message is accepted and when a template
is rendered (``comms.addresses.content_limit_problems``, re-exported as ``content_limit_problems``).
"""

from __future__ import annotations

from typing import Any

from comms.addresses import content_limit_problems  # noqa: F401  (re-exported: the channel limits)
from comms.enums import Channel
from delivery.channels import email, push, sms, voice
from delivery.providers.base import Content, Provider, SendResult

# The content policy per channel; a channel without one (in_app, webhook) is sent as rendered.
_CONTENT = {Channel.SMS: sms.prepare_content, Channel.EMAIL: email.prepare_content,
            Channel.VOICE: voice.prepare_content}


def prepare_content(message: Any, content: Content) -> Content:
    """`content` as every vendor of the message's channel must send it. Pure (no database, no I/O)."""
    policy = _CONTENT.get(message.channel)
    return policy(message, content) if policy else content


def route(message: Any, chain: list) -> tuple[list, dict[str, dict]]:
    """The part of `chain` that carries `message`, and its shares for the channel's other vendors
    ({share name: metadata of the follow-up that carries it}; push: one per other vendor's devices)."""
    if message.channel == Channel.PUSH:
        return push.route(message, chain)
    return chain, {}


def settle(message: Any, result: SendResult, *, provider: Provider) -> None:
    """After a vendor answered `message`: the channel's follow-up writes (on the engine's thread)."""
    if message.channel == Channel.PUSH and result.dead_addresses:
        push.settle(message, result, vendor=provider.name.upper())
