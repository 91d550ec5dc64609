"""Erasers: each app erases the personal data in its own tables when a person is erased (GDPR art. 17).

The erasure use case (``preferences.services.recipient_erase``) suppresses the addresses and
redacts the consent ledger; the messages, logs, inbox, provider events and raw webhooks belong to
apps above it. Rather than import them (and write their tables), it runs every eraser registered
here; each app registers its own in ``AppConfig.ready()``. The registry sits in the kernel because
the erased subject (a ``Recipient``) is the kernel's, and every app may import the kernel.

Two phases: RECORDS erasers own the person's primary records and publish what they found (delivery
fills ``subject.message_ids``); COPIES erasers clear what other apps keep about those records
(tracking events, raw webhook bodies), found by message id or by identifier. Erasers run inside
the caller's transaction: all of it happens, or none.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Phase(enum.IntEnum):
    RECORDS = 1
    COPIES = 2


@dataclass
class ErasureSubject:
    """Who is erased: enough for each app to find its rows about them."""

    tenant_id: Any
    recipient_id: Any
    identifiers: list[str]  # addresses, the external id and device tokens, as held before the erasure
    now: datetime
    message_ids: list = field(default_factory=list)  # filled in the RECORDS phase, read by COPIES erasers


Eraser = Callable[..., dict[str, int]]
_erasers: list[tuple[Phase, Eraser]] = []


def eraser_register(eraser: Eraser, *, phase: Phase = Phase.COPIES) -> Eraser:
    """Add `eraser(*, subject) -> {name: rows changed}` to every erasure (idempotent)."""
    if all(e is not eraser for _, e in _erasers):
        _erasers.append((phase, eraser))
    return eraser


def erasers() -> list[Eraser]:
    """The registered erasers in the order they run."""
    return [e for _, e in sorted(_erasers, key=lambda pe: pe[0])]


def erasure_run(*, subject: ErasureSubject) -> dict[str, int]:
    """Run every eraser for `subject` (RECORDS first); their counts, merged, for the audit trail."""
    done: dict[str, int] = {}
    for eraser in erasers():
        done.update(eraser(subject=subject))
    return done
