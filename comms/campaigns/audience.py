"""A campaign's audience: parsed and checked when the campaign is created (or its draft edited),
and who of it is reachable on each channel, the same rule for the count at schedule time and the
fan-out's query.

Directory audiences (a list of recipient ids, a saved segment) reach a recipient on
``email``/``sms``/``voice`` through that column, on ``in_app`` always, and on ``push`` when they have at least
one enabled Device (the push provider fans out to the recipient's devices at send time; the address
is the recipient id).

``webhook`` is refused for campaigns at create time (``422 COMMS_CAMPAIGN_CHANNEL``), not in the
background fan-out: a webhook "recipient" is a subscriber system registered as a verified
WebhookEndpoint, not a person of the directory, and templates have no webhook content to render.
System notifications go out with ``POST /messages`` or ``/messages/bulk`` (channel webhook, body
given) or through a routing rule.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from comms import errors
from comms.campaigns.models import Campaign, Segment
from comms.enums import Channel
from comms.models import Device, Recipient
from comms.campaigns.segments import csv_parse, segment_queryset

# channel → the Recipient column that holds its address (push: the recipient id; devices at send time)
ADDRESS_FIELD = {Channel.EMAIL: "email", Channel.SMS: "phone", Channel.IN_APP: "external_id",
                 Channel.PUSH: "external_id", Channel.VOICE: "phone"}


def _has_device() -> Exists:
    return Exists(Device.objects.filter(recipient=OuterRef("pk"), disabled_at__isnull=True))


def channels_check(channels: list[str]) -> None:
    """Campaigns go to people: email, sms, in_app, push, voice. Webhook is refused with the way to do it."""
    refused = [c for c in channels if c not in ADDRESS_FIELD]
    if refused:
        raise errors.CampaignChannel(
            f"Campaigns do not send on {', '.join(refused)}: webhook subscribers are systems, not recipients, "
            "and templates have no webhook content. Use POST /messages/bulk with channel webhook, or a routing "
            "rule.", details={"channels": refused, "allowed": sorted(ADDRESS_FIELD)})


def reachable_q(channel: str) -> Q:
    """Recipients of a directory audience that have an address on `channel`."""
    channels_check([channel])
    if channel == Channel.PUSH:
        return Q(_has_device())
    return ~Q(**{ADDRESS_FIELD[channel]: ""})


def audience_queryset(campaign: Campaign) -> QuerySet:
    """Every recipient of a directory audience (list or segment), reachable or not."""
    if campaign.audience_kind == Campaign.AudienceKind.SEGMENT:
        return segment_queryset(tenant=campaign.tenant, spec=campaign.segment.filter)
    return Recipient.objects.filter(tenant=campaign.tenant, external_id__in=campaign.audience_list)


def reachable(campaign: Campaign, channel: str) -> tuple[QuerySet, str]:
    """(recipients reachable on `channel`, the column holding their address): what the fan-out writes."""
    return audience_queryset(campaign).filter(reachable_q(channel)), ADDRESS_FIELD[channel]


def audience_size(campaign: Campaign) -> int:
    """Recipients reachable on at least one of the campaign's channels (CSV: the accepted rows)."""
    if campaign.audience_kind == Campaign.AudienceKind.CSV:
        return len(campaign.audience_list)
    any_channel = Q(pk__in=[])
    for channel in campaign.channels:
        any_channel |= reachable_q(channel)
    return audience_queryset(campaign).filter(any_channel).count()


def audience_set(campaign: Campaign, audience: dict) -> None:
    """Fill the campaign's audience fields from the API shape; refuses what the fan-out could not send."""
    if not isinstance(audience, dict):
        raise errors.AudienceInvalid("audience is one of {recipients: [...]}, {segment: name}, {csv: text}.")
    kinds = set(audience) & {"recipients", "segment", "csv"}
    if len(kinds) != 1:
        raise errors.AudienceInvalid("audience is one of {recipients: [...]}, {segment: name}, {csv: text}.")
    kind = kinds.pop()
    campaign.segment, campaign.audience_list, campaign.audience_errors = None, [], []
    if kind == "recipients":
        ids = audience["recipients"]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise errors.AudienceInvalid("audience.recipients is a list of recipient ids.")
        campaign.audience_kind, campaign.audience_list = Campaign.AudienceKind.LIST, list(dict.fromkeys(ids))
    elif kind == "segment":
        segment = Segment.objects.filter(tenant=campaign.tenant, name=audience["segment"]).first()
        if segment is None:
            raise errors.AudienceInvalid(f"No segment '{audience['segment']}'.")
        campaign.audience_kind, campaign.segment = Campaign.AudienceKind.SEGMENT, segment
    else:
        text = audience["csv"]
        if not isinstance(text, str):
            raise errors.CsvInvalid("audience.csv is the CSV text.")
        header = [c.strip() for c in text.lstrip("\ufeff").split("\n", 1)[0].split(",")]
        if len(campaign.channels) > 1 and "to" in header:
            raise errors.CsvInvalid("A CSV with a 'to' column serves one channel; give one channel.")
        accepted, refused = csv_parse(tenant=campaign.tenant, text=text, channels=campaign.channels)
        campaign.audience_kind, campaign.audience_list = Campaign.AudienceKind.CSV, accepted
        campaign.audience_errors = refused[:1000]
        if not accepted:
            raise errors.AudienceEmpty("No usable row in the CSV.", details={"refused": refused[:100]})
    size = audience_size(campaign)
    if size == 0:
        raise errors.AudienceEmpty(
            f"Nobody in the audience is reachable on {', '.join(campaign.channels)}.",
            details={"channels": campaign.channels, "kind": campaign.audience_kind})
    campaign.audience_size = size
