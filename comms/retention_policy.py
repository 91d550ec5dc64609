"""The kinds of data retention knows, their default and minimum periods, the one validation, and the
registry of pruners.

Model-free, apart from ``comms.retention`` (the run, which needs the models): the kernel's models
use it, and each app imports it at the top of its apps.py to register how its own kind is pruned
(``pruner_register`` in ``AppConfig.ready()``, like the erasers in ``comms.erasure``).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import TextChoices

from comms.errors import RetentionBelowMinimum, RetentionNotAllowed, RetentionUnknownKind


class Kind(TextChoices):
    MESSAGES = "messages", "Messages and their delivery logs"
    WEBHOOKS = "webhooks", "Raw provider webhooks"
    TRACKING = "tracking", "Tracking events"
    IN_APP = "in_app", "In-app inbox items"
    CONVERSATIONS = "conversations", "Closed conversations"
    AUDIT = "audit", "Audit log"
    CONSENT = "consent", "Consent ledger (never deleted)"


# Defaults. Seed 003 guessed 30 days of messages; 90 keeps a quarter for support and disputes.
# Seed 001: send decisions "stored 400 days for compliance" → the audit log's 400.
DEFAULT_DAYS = {Kind.MESSAGES: 90, Kind.WEBHOOKS: 30, Kind.TRACKING: 180, Kind.IN_APP: 90,
                Kind.CONVERSATIONS: 365, Kind.AUDIT: 400}
# Below these a setting is refused: a week of messages for support, three days of raw webhooks to
# re-process after a bad deploy, a year of audit trail.
MINIMUM_DAYS = {Kind.MESSAGES: 7, Kind.WEBHOOKS: 3, Kind.TRACKING: 7, Kind.IN_APP: 7,
                Kind.CONVERSATIONS: 30, Kind.AUDIT: 365}
# The consent ledger is proof of consent (GDPR art. 7(1)): only an erasure anonymises it.
NEVER_DELETED = frozenset({Kind.CONSENT})


def retention_days_validate(*, kind: str, days: object) -> None:
    """Raise the typed error a policy of `days` for `kind` deserves (consent: never; below the minimum)."""
    if kind in NEVER_DELETED:
        raise RetentionNotAllowed(details={"kind": kind})
    if kind not in Kind.values:
        raise RetentionUnknownKind(details={"kind": kind, "known": [k for k in Kind.values if k not in NEVER_DELETED]})
    minimum = MINIMUM_DAYS[Kind(kind)]
    if isinstance(days, bool) or not isinstance(days, int) or days < minimum:
        raise RetentionBelowMinimum(f"{kind}: at least {minimum} days.",
                                    details={"kind": kind, "days": days, "minimum": minimum})


@dataclass(frozen=True)
class Child:
    """Rows that go with a pruned row: `table`.`column` holds the parent's key, or, with `via`, the key
    of a `via` row whose `via_column` holds the parent's key (a conversation's message revisions)."""

    table: str
    column: str
    via: str = ""
    via_column: str = ""

    def parent(self) -> str:
        return f"v.{self.via_column}" if self.via else f"c.{self.column}"

    def join(self) -> str:
        return f"JOIN {self.via} v ON v.id = c.{self.column}" if self.via else ""

    def using(self) -> str:
        """The DELETE … USING form of join(); its condition is link()."""
        return f"USING {self.via} v" if self.via else ""

    def link(self) -> str:
        return f"v.id = c.{self.column} AND " if self.via else ""


@dataclass(frozen=True)
class Pruner:
    """How one kind is pruned, in SQL over its own table (alias ``t``).

    `time_sql` ages a row (e.g. the latest of created/sent/delivered); `removable_sql` says which
    rows may go at all (terminal statuses); `children` are rows archived and deleted with their
    parent, before it (``Child``). Keys are uuid7 (their time is
    their prefix) or bigint (bounded by a binary search over the key, see ``_key_bound``).
    `delete_flag` is a transaction-local setting the table's append-only trigger requires to allow
    DELETE (the audit log)."""

    kind: str
    table: str
    time_sql: str
    key: str = "id"
    key_is_uuid7: bool = False
    key_is_ordered: bool = True  # False (uuid4 keys): no key bound, the walk reads the whole table
    tenant_column: str | None = "tenant_id"
    removable_sql: str = "TRUE"
    children: tuple[Child, ...] = ()
    delete_flag: str = ""


_pruners: dict[str, Pruner] = {}


def pruner_register(pruner: Pruner) -> Pruner:
    """Called by the app owning `pruner.kind` in its ready(); consent can never be registered."""
    if pruner.kind in NEVER_DELETED:
        raise RetentionNotAllowed(details={"kind": pruner.kind})
    _pruners[pruner.kind] = pruner
    return pruner


def pruners() -> list[Pruner]:
    return [_pruners[k] for k in Kind.values if k in _pruners]
