"""Engagement history for send-time tests, written through tracking's real ingest path.

Each recipient is sent one real email (API → worker → SMTP sink); opens of it are then ingested as a
provider would report them, stamped at chosen instants, so ``MessageEvent`` rows (and FirstEvent)
are what the send-time model reads in production.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from comms.models import Recipient
from delivery.models import Message
from delivery.services import drain_all
from tracking.normalised import NormalisedEvent
from tracking.services.events import Outcome, event_ingest


def opened_at(admin_api, recipients: dict[Recipient, list[datetime]], *, template: str = "promo") -> None:
    """Send each recipient one message and record an open at each of their instants (the test needs the
    ``smtp_sink`` fixture: under xdist no other test may have started the sink on this worker)."""
    for recipient in recipients:
        response = admin_api.post("/api/v1/messages", {"channel": "email", "recipient_id": recipient.external_id,
                                                       "template": template, "variables": {"name": "x"}},
                                  format="json")
        assert response.status_code in (201, 202), response.content
    drain_all()
    for recipient, instants in recipients.items():
        message = Message.objects.filter(recipient=recipient).exclude(sent_at=None).get()
        for n, at in enumerate(instants):
            event = NormalisedEvent(provider="mailgun", event_type="opened", raw_type="opened",
                                    event_id=f"{message.id}-open-{n}", message_id=str(message.id), timestamp=at)
            assert event_ingest(event=event) == Outcome.APPLIED


def weekly(at: datetime, weeks: int) -> list[datetime]:
    """The same hour of the week, one to ``weeks`` weeks before ``at``."""
    return [at - timedelta(weeks=w) for w in range(1, weeks + 1)]
