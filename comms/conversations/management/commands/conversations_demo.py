"""`manage.py conversations_demo --json`: a demo conversation (Ada and Bob) and a token for each, so
`make run` can print two demo chat links. Idempotent: a second run reuses the conversation."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from comms.conversations.models import Conversation, Participant
from comms.conversations.services import ParticipantSpec, conversation_create
from comms.models import Recipient
from comms.services import tenant_get_default
from delivery.inbox import inbox_token

SUBJECT = "Demo: order #1001 delivery"


class Command(BaseCommand):
    help = "Create the demo conversation and print end-user tokens for its two participants."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, *args, as_json: bool = False, **options):
        tenant = tenant_get_default()
        people = [Recipient.objects.get_or_create(tenant=tenant, external_id=name,
                                                  defaults={"email": f"{name}@example.com"})[0]
                  for name in ("demo-ada", "demo-bob")]
        conversation = (Conversation.objects.filter(tenant=tenant, subject=SUBJECT,
                                                    participants__recipient=people[0]).first()
                        or conversation_create(tenant=tenant, kind="direct", subject=SUBJECT, participants=[
                            ParticipantSpec(recipient=people[0], display_name="Ada"),
                            ParticipantSpec(recipient=people[1], display_name="Bob")]))
        assert Participant.objects.filter(conversation=conversation).count() >= 2
        out = {"conversation": str(conversation.id), "ada": inbox_token(recipient=people[0]),
               "bob": inbox_token(recipient=people[1])}
        self.stdout.write(json.dumps(out) if as_json else
                          f"conversation {out['conversation']}\nada {out['ada']}\nbob {out['bob']}")
