"""Compliance self-test (seed 001's QA matrix): take a sample of today's outgoing mail and SMS and
check what comms actually emits for them, rule by rule.

Each sampled row is rebuilt through the same channel policy the vendors use (``build_email`` for
mail, the SMS footer for texts), so the test sees the headers and footers a mailbox provider or
carrier sees, not what a template author meant. Rules:

* ``list_unsubscribe`` — non-critical mail carries RFC 2369 List-Unsubscribe with an https URI and
  RFC 8058 ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (Gmail/Yahoo bulk-sender rules, 2024).
* ``dkim_alignment`` — a DKIM-Signature's ``d=`` is the From domain or its parent/child (DMARC relaxed
  alignment, RFC 7489 section 3.1.1); a message without one is reported ``unsigned``.
* ``sms_stop_help`` — marketing texts say STOP and HELP (CTIA Messaging Principles, TCPA).
* ``postal_address`` — marketing mail shows the sender's postal address (CAN-SPAM, 15 U.S.C. 7704(a)(5)),
  COMMS_POSTAL_ADDRESS, in its text or HTML part.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, time as dtime, timezone as dt_timezone
from email import message_from_bytes
from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.module_loading import import_string

from comms.enums import Status
from delivery import channels
from delivery.channels.email import build_email
from delivery.models import Message
from delivery.services.content import Unrenderable, content_for
from preferences import catalogue

PASS, FAIL, UNSIGNED, SKIPPED = "pass", "fail", "unsigned", "skipped"
ONE_CLICK = "List-Unsubscribe=One-Click"
_EXCLUDED = (Status.BLOCKED, Status.CANCELLED, Status.SCHEDULED)
_EXAMPLES = 5


@dataclass
class RuleReport:
    rule: str
    description: str
    checked: int = 0
    failed: int = 0
    unsigned: int = 0
    examples: list[dict] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.failed:
            return FAIL
        if not self.checked:
            return SKIPPED
        return UNSIGNED if self.unsigned == self.checked else PASS

    def add(self, message: Message, problem: str | None, *, unsigned: bool = False) -> None:
        self.checked += 1
        self.unsigned += unsigned
        if problem is None:
            return
        if not unsigned:
            self.failed += 1
        if len(self.examples) < _EXAMPLES:
            self.examples.append({"message_id": str(message.id), "to": message.recipient_address,
                                  "problem": problem})


def _sample(channel: str, *, since: datetime, size: int, tenant_id: Any = None) -> list[Message]:
    # uuid7 ids are time-ordered: the newest rows of the day, without a random sort over the table.
    rows = Message.objects.filter(channel=channel, created_at__gte=since)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    rows = (rows.exclude(status__in=_EXCLUDED)
            .select_related("batch__template_version__template", "recipient").order_by("-id")[:size])
    return list(rows)


def _org(domain: str) -> str:
    """The registrable part of a domain, approximated by its last two labels (no public-suffix list here)."""
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])


def dkim_problem(raw_headers: dict[str, str], from_header: str) -> tuple[str | None, bool]:
    """(problem or None, unsigned?) for one message's DKIM-Signature against its From domain."""
    signature = raw_headers.get("DKIM-Signature", "")
    if not signature:
        return "no DKIM-Signature header", True
    tags = dict(part.strip().split("=", 1) for part in signature.split(";") if "=" in part)
    d = re.sub(r"\s+", "", tags.get("d", "")).lower()
    from_domain = parseaddr(from_header)[1].rpartition("@")[2].lower()
    if not d:
        return "DKIM-Signature without d=", False
    if _org(d) != _org(from_domain):
        return f"d={d} is not aligned with the From domain {from_domain}", False
    return None, False


def _email_headers(message: Message, raw) -> dict[str, str]:
    signer = getattr(settings, "COMMS_DKIM_SIGNER", "")  # the signing step, when one is configured
    data = raw.message().as_bytes()
    if signer:
        data = import_string(signer)(data, message=message)
    parsed = message_from_bytes(data)
    return {k: str(v) for k, v in parsed.items()}


def _check_email(message: Message, content, reports: dict[str, RuleReport]) -> None:
    cat = catalogue.category(message.tenant_id, message.category)
    email = build_email(message, content, {})
    headers = _email_headers(message, email)
    if not cat.critical:
        unsub, post = headers.get("List-Unsubscribe", ""), headers.get("List-Unsubscribe-Post", "")
        problem = None
        if "<https://" not in unsub:
            problem = "List-Unsubscribe missing or without an https URI" if not unsub else \
                f"List-Unsubscribe has no https URI: {unsub[:120]}"
        elif post.strip() != ONE_CLICK:
            problem = f"List-Unsubscribe-Post is {post!r}, not {ONE_CLICK!r}"
        reports["list_unsubscribe"].add(message, problem)
    problem, unsigned = dkim_problem(headers, headers.get("From", ""))
    reports["dkim_alignment"].add(message, problem, unsigned=unsigned)
    if cat.marketing:
        address = " ".join(settings.COMMS_POSTAL_ADDRESS.split())
        html = email.alternatives[0][0] if email.alternatives else ""
        shown = " ".join(f"{email.body}\n{strip_tags(html)}".split())
        if not address:
            reports["postal_address"].add(message, "COMMS_POSTAL_ADDRESS is not configured")
        else:
            reports["postal_address"].add(message, None if address in shown else "no postal address in the footer")


def _check_sms(message: Message, content, reports: dict[str, RuleReport]) -> None:
    if not catalogue.category(message.tenant_id, message.category).marketing:
        return
    body = channels.prepare_content(message, content).body
    missing = [word for word in ("STOP", "HELP") if not re.search(rf"\b{word}\b", body)]
    reports["sms_stop_help"].add(message, f"no {' or '.join(missing)} wording" if missing else None)


def compliance_selftest(*, sample: int | None = None, now: datetime | None = None,
                        tenant_id: Any = None) -> dict[str, Any]:
    """Check today's (UTC) sample and report pass/fail per rule with examples; ``ok`` is False on any failure."""
    now = now or timezone.now()
    since = datetime.combine(now.astimezone(dt_timezone.utc).date(), dtime.min, tzinfo=dt_timezone.utc)
    size = sample or settings.COMMS_SELFTEST_SAMPLE
    reports = {
        "list_unsubscribe": RuleReport("list_unsubscribe", "List-Unsubscribe (https) and one-click "
                                       "List-Unsubscribe-Post on non-critical mail (RFC 2369, RFC 8058)"),
        "dkim_alignment": RuleReport("dkim_alignment", "DKIM-Signature d= aligned with the From domain (RFC 7489)"),
        "sms_stop_help": RuleReport("sms_stop_help", "STOP and HELP wording in marketing SMS (CTIA, TCPA)"),
        "postal_address": RuleReport("postal_address", "Physical postal address in marketing mail (CAN-SPAM)"),
    }
    sampled = {}
    unrenderable = []
    for channel, check in (("email", _check_email), ("sms", _check_sms)):
        rows = _sample(channel, since=since, size=size, tenant_id=tenant_id)
        sampled[channel] = len(rows)
        batches = {m.batch_id: m.batch for m in rows if m.batch_id}
        for message in rows:
            try:
                content = content_for(message, batches)
            except Unrenderable as exc:
                unrenderable.append({"message_id": str(message.id), "problem": exc.error.message})
                continue
            check(message, content, reports)
    rules = [{**{k: v for k, v in asdict(r).items()}, "status": r.status} for r in reports.values()]
    return {"date": since.date().isoformat(), "sampled": sampled, "unrenderable": unrenderable[:_EXAMPLES],
            "ok": not any(r["status"] == FAIL for r in rules), "rules": rules}
