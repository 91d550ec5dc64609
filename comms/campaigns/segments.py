"""Audiences: saved segments (a filter over recipient fields and attributes) and CSV uploads.

A segment is evaluated in SQL at fan-out time, so a million-recipient segment is one query.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterator

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from jsonschema import Draft202012Validator
from psycopg.types.string import TextLoader

from comms import errors
from comms.audit import audit_record
from comms.addresses import normalise_address
from comms.campaigns.models import Campaign, Segment
from comms.models import Device, Recipient
from tracking.scores import SCORE_FIELDS, score_q, score_validate

_FIELDS = {"external_id", "email", "phone", "locale", "timezone"}
_OPS = {"eq": "exact", "ne": "exact", "in": "in", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte",
        "contains": "contains", "startswith": "startswith", "exists": "isnull"}
FILTER_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "all": {"type": "array", "items": {"$ref": "#/$defs/cond"}},
        "any": {"type": "array", "items": {"$ref": "#/$defs/cond"}},
    },
    "$defs": {"cond": {
        "type": "object", "additionalProperties": False, "required": ["field", "op"],
        "properties": {"field": {"type": "string", "pattern": r"^(attributes(\.[A-Za-z0-9_-]+)+|[a-z_]+)$"},
                       "op": {"enum": sorted(_OPS)}, "value": {}},
    }},
}
_VALIDATOR = Draft202012Validator(FILTER_SCHEMA)


def filter_validate(spec: Any) -> dict:
    problems = list(_VALIDATOR.iter_errors(spec))
    if problems:
        first = problems[0]
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
        raise errors.AudienceInvalid(f"segment filter {path}: {first.message}", details={"path": path})
    for cond in [*spec.get("all", []), *spec.get("any", [])]:
        if cond["field"] in SCORE_FIELDS:  # stored scores (tracking.scores): a number 0..1, comparisons only
            score_validate(field=cond["field"], op=cond["op"], value=cond.get("value"))
            continue
        if not cond["field"].startswith("attributes.") and cond["field"] not in _FIELDS:
            raise errors.AudienceInvalid(f"Unknown field '{cond['field']}'.",
                                         details={"allowed": sorted(_FIELDS | set(SCORE_FIELDS))})
        if cond["op"] != "exists" and "value" not in cond:
            raise errors.AudienceInvalid(f"Condition on '{cond['field']}' needs a value.")
        if cond["op"] == "in" and not isinstance(cond.get("value"), list):
            raise errors.AudienceInvalid(f"'in' on '{cond['field']}' needs a list.")
    return spec


def _q(cond: dict) -> Q:
    if cond["field"] in SCORE_FIELDS:
        return score_q(field=cond["field"], op=cond["op"], value=cond["value"])
    field = cond["field"].replace(".", "__")
    op = cond["op"]
    if op == "exists":
        q = Q(**{f"{field}__isnull": False})
        if not cond["field"].startswith("attributes."):
            q &= ~Q(**{field: ""})
        return q if cond.get("value", True) else ~q
    q = Q(**{f"{field}__{_OPS[op]}": cond["value"]})
    return ~q if op == "ne" else q


def segment_queryset(*, tenant, spec: dict) -> QuerySet:
    """Recipients matching the filter (all conditions AND, any conditions OR)."""
    filter_validate(spec)
    query = Q()
    for cond in spec.get("all", []):
        query &= _q(cond)
    if spec.get("any"):
        anyq = Q()
        for cond in spec["any"]:
            anyq |= _q(cond)
        query &= anyq
    return Recipient.objects.filter(tenant=tenant).filter(query)


MAX_CSV_ROWS = 100_000
MAX_REPORTED = 100


def csv_parse(*, tenant, text: str, channel: str = "", channels: list[str] | None = None
              ) -> tuple[list[dict], list[dict]]:
    """Parse an audience CSV: a `recipient_id` (directory) or `to` (address) column, others are variables.

    Returns (accepted rows, refused rows with their line number and reason). Unknown recipients,
    invalid addresses, recipients reachable on none of the
    `channels` and rows with neither column are refused, not fatal.
    """
    channels = list(channels or [channel])
    channel = channels[0]
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "recipient_id" not in columns and "to" not in columns:
        raise errors.CsvInvalid("The CSV needs a header with a 'recipient_id' or 'to' column.",
                                details={"columns": columns})
    raw_rows: list[tuple[int, dict]] = []
    for line, row in enumerate(reader, start=2):
        if len(raw_rows) >= MAX_CSV_ROWS:
            raise errors.CsvInvalid(f"At most {MAX_CSV_ROWS} rows per upload.")
        raw_rows.append((line, {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}))
        if None in row:
            raw_rows[-1][1]["__extra__"] = "1"
    wanted = {r.get("recipient_id") for _, r in raw_rows if r.get("recipient_id")}
    known = _reach(tenant, wanted, channels)
    accepted: list[dict] = []
    refused: list[dict] = []
    for line, row in raw_rows:
        variables = {k: v for k, v in row.items() if k not in ("recipient_id", "to", "__extra__") and k}
        try:
            if row.get("__extra__"):
                raise errors.CsvInvalid("more fields than the header")
            entry: dict[str, Any] = {}
            if row.get("to"):
                entry["to"] = normalise_address(channel, row["to"])
            if row.get("recipient_id"):
                if row["recipient_id"] not in known:
                    raise errors.RecipientNotFound(f"no recipient '{row['recipient_id']}'")
                if not entry.get("to") and not known[row["recipient_id"]]:
                    kind = errors.NoDevices if channels == ["push"] else errors.InvalidAddress
                    raise kind(f"'{row['recipient_id']}' has no address on {', '.join(channels)}")
                entry["recipient_id"] = row["recipient_id"]
            if not entry:
                raise errors.InvalidAddress("neither recipient_id nor to")
        except errors.CommsError as exc:
            refused.append({"line": line, "code": exc.code, "message": exc.message})
            continue
        if variables:
            entry["variables"] = variables
        accepted.append(entry)
    return accepted, refused


def _reach(tenant, wanted: set, channels: list[str]) -> dict[str, bool]:
    """external_id → reachable on at least one channel, for the directory rows of a CSV."""
    rows = Recipient.objects.filter(tenant=tenant, external_id__in=wanted)
    with_device = set(Device.objects.filter(recipient__in=rows, disabled_at__isnull=True).values_list(
        "recipient_id", flat=True)) if "push" in channels else set()
    reach: dict[str, bool] = {}
    for pk, external_id, email, phone in rows.values_list("pk", "external_id", "email", "phone"):
        reach[external_id] = (("email" in channels and bool(email)) or (bool({"sms", "voice"} & set(channels)) and bool(phone))
                              or "in_app" in channels or pk in with_device)
    return reach


def iter_chunks(queryset: QuerySet, size: int, fields: tuple[str, ...] = ("external_id", "timezone")
                ) -> Iterator[list[tuple]]:
    """Keyset pagination over (pk, *fields): steady cost per chunk at any depth.

    Rows come straight from the driver (no per-row ORM work), with UUIDs as text: a million-row
    campaign reads its audience in a few seconds, and the COPY that follows needs text anyway.
    """
    last = None
    with connection.cursor() as cursor:
        cursor.cursor.adapters.register_loader("uuid", TextLoader)
        while True:
            qs = queryset.order_by("pk")
            if last is not None:
                qs = qs.filter(pk__gt=last)
            sql, params = qs.values_list("pk", *fields)[:size].query.sql_with_params()
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]


def audience_queryset(*, tenant, audience: dict) -> QuerySet:
    """An event's or schedule's audience: {"segment": "<saved name>"} or {"filter": {…}}."""
    if not isinstance(audience, dict) or not (set(audience) & {"segment", "filter"}):
        raise errors.AudienceInvalid("audience is {\"segment\": name} or {\"filter\": {...}}.")
    if "segment" in audience:
        segment = Segment.objects.filter(tenant=tenant, name=audience["segment"]).first()
        if segment is None:
            raise errors.AudienceInvalid(f"No segment '{audience['segment']}'.", details={"segment": audience["segment"]})
        return segment_queryset(tenant=tenant, spec=segment.filter)
    return segment_queryset(tenant=tenant, spec=audience["filter"])


# --- saved segments: the API's and the admin's one way to change them (audited) -------------------------

def _audit(actor, action: str, segment, diff: dict, ip: str | None) -> None:
    audit_record(actor=actor, action=action, target=segment, diff=diff, ip=ip, tenant=segment.tenant)


def segment_save(*, tenant, name: str, spec: Any, description: str = "", actor=None, ip: str | None = None):
    """Create the segment `name`, or replace its filter and description (the filter is validated)."""
    spec = filter_validate(spec)
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(tenant=tenant, name=name).first()
        created = segment is None
        if created:
            segment = Segment(tenant=tenant, name=name)
        before = {} if created else {"filter": segment.filter, "description": segment.description}
        segment.filter, segment.description = spec, description
        try:  # the filter was validated above ({} is a valid filter: everyone); the other fields here
            segment.full_clean(exclude=["tenant", "filter"], validate_unique=False)
        except DjangoValidationError as exc:
            raise errors.ValidationFailed("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()),
                                          details={"fields": exc.message_dict}) from None
        segment.save()
        _audit(actor, "segment.create" if created else "segment.update", segment,
               {"filter": spec, **({"before": before} if before else {})}, ip)
    return segment, created


def segment_delete(*, tenant, name: str, actor=None, ip: str | None = None) -> None:
    """Delete a saved segment; one a campaign still uses is refused (409 COMMS_SEGMENT_IN_USE)."""
    with transaction.atomic():
        segment = Segment.objects.select_for_update().filter(tenant=tenant, name=name).first()
        if segment is None:
            raise errors.NotFound("No such segment.")
        users = list(Campaign.objects.filter(segment=segment).values_list("name", flat=True)[:10])
        if users:
            raise errors.SegmentInUse(f"Campaigns use segment '{name}': {', '.join(users)}.",
                                      details={"campaigns": users})
        _audit(actor, "segment.delete", segment, {"filter": segment.filter}, ip)
        segment.delete()
