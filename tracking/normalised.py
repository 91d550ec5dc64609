"""The one shape every provider's event is turned into before tracking acts on it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class NormalisedEvent:
    """A provider event in our vocabulary (tracking.models.EventType), plus what identifies it.

    ``provider_ref`` is the provider's message id (our Message.provider_ref); ``message_id`` is our
    own id when the provider echoes it back (custom args, X-Comms-Message-Id header). ``raw`` is the
    provider's own event exactly as parsed from the request (as anymail's ``esp_event``), kept so an
    unknown or surprising event can be read as the provider sent it; it is not stored on the event row.
    """

    provider: str
    event_type: str
    raw_type: str = ""
    event_id: str = ""
    provider_ref: str = ""
    message_id: str = ""
    recipient: str = ""
    timestamp: datetime | None = None
    bounce_type: str = ""
    reason: str = ""
    url: str = ""
    user_agent: str = ""
    ip: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    raw: Any = field(default=None, repr=False, compare=False)

    def stable_id(self) -> str:
        """The provider's event id, or a digest of what makes the event unique when it has none
        (Postmark's delivery events, Twilio's callbacks): a redelivery hashes to the same id."""
        if self.event_id:
            return self.event_id[:255]
        basis = "|".join([self.provider, self.raw_type or self.event_type, self.provider_ref, self.message_id,
                          self.recipient, self.timestamp.isoformat() if self.timestamp else "", self.url])
        return "h:" + hashlib.sha256(basis.encode()).hexdigest()
