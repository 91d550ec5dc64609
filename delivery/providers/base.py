"""The provider contract: every vendor adapter in this package implements ``Provider``.

A vendor module speaks its vendor's wire format only. What a channel requires of every vendor (SMS
footers, email compliance headers, push device targeting and pruning) is the channel layer's
(``delivery.channels``): the engine applies it to the content before a vendor sees it and to the
answer after; a vendor imports this module and its own channel's helpers, never another vendor.

Subclasses must implement at least ``send()``. Instances live for the whole worker process (see
``routing.provider_for``); each claimed batch runs inside ``with provider:``, which calls
``open()`` and then ``release()``. Connection-oriented transports keep their session across
batches in ``release()`` (a P0 message should not pay a TCP and TLS handshake) and only
``close()`` it when asked to.
Every failure is classified: ``transient`` is retried with backoff, ``permanent`` never is.

Concurrency: the engine keeps many sends in flight per process (delivery.services.inflight), so
``send()`` runs on a sending thread, many at once on one instance: a provider keeps a pool of
sessions, never one shared connection. A send on such a thread must not use the database (Django's
connections are per thread, and the engine keeps every write on its own thread): what a provider
must read first goes in ``prepare()``, what it must write after in ``settle()``, both on the
engine's thread. A provider that cannot send without the database says ``concurrent = False`` and
is sent on the engine's thread, one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from comms.enums import Channel

ErrorClass = Literal["transient", "permanent"]


@dataclass(frozen=True)
class Content:
    """What to send, already rendered for the channel."""

    subject: str = ""
    body: str = ""
    body_html: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    provider_ref: str = ""
    error_class: ErrorClass | None = None
    code: str = ""
    detail: str = ""
    # True when the provider may have taken the message despite the error (a timeout after the
    # data was sent): such a message is retried on the same provider later, never failed over,
    # because failover must not send twice what the primary accepted.
    maybe_accepted: bool = False
    # Extra facts for the delivery log (e.g. per-device outcomes of a push fan-out).
    data: dict[str, Any] = field(default_factory=dict, compare=False)
    # A sent fan-out that some of its targets refused for now (a push reached the phone, the
    # tablet answered 503): the engine sends those addresses a follow-up later. Never logged.
    retry_addresses: tuple[str, ...] = field(default=(), compare=False)
    # (address, the vendor's code) for each target the vendor said is gone for good (FCM's
    # UNREGISTERED token): the channel layer acts on it (delivery.channels.push disables the device).
    dead_addresses: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @classmethod
    def sent(cls, provider_ref: str, detail: str = "") -> "SendResult":
        return cls(ok=True, provider_ref=provider_ref, detail=detail)

    # DeliveryLog.status_code holds 32 characters: a vendor's longer code
    # (Postal's "UnauthenticatedFromAddress" with a prefix) must not fail the outcome write.
    @classmethod
    def transient(cls, code: str, detail: str, *, maybe_accepted: bool = False) -> "SendResult":
        return cls(ok=False, error_class="transient", code=code[:32], detail=detail, maybe_accepted=maybe_accepted)

    @classmethod
    def permanent(cls, code: str, detail: str) -> "SendResult":
        return cls(ok=False, error_class="permanent", code=code[:32], detail=detail)


class Provider:
    """Base class. ``config`` holds non-secret options merged with decrypted credentials."""

    name: ClassVar[str] = "base"
    channel: ClassVar[Channel]
    concurrent: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None):
        self.config = config or {}

    def open(self) -> None:
        """Start a session for a batch; the default transport needs none."""

    def close(self) -> None:
        """End the session for good."""

    def release(self) -> None:
        """A batch is done; by default that ends the session."""
        self.close()

    def __enter__(self) -> "Provider":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        """What a configuration lacks for this provider to work (the start-up system check)."""
        return []

    def send(self, message: Any, content: Content) -> SendResult:  # pragma: no cover - contract
        raise NotImplementedError

    # -- the engine's three steps (see the module docstring); the defaults are ``send()`` alone ------
    def prepare(self, message: Any, content: Content) -> Any:
        """On the engine's thread, before the send: the database reads the send needs."""
        return None

    def send_prepared(self, message: Any, content: Content, prepared: Any) -> SendResult:
        """On a sending thread: the provider call itself (no database)."""
        return self.send(message, content)

    def settle(self, message: Any, result: SendResult, prepared: Any) -> None:
        """On the engine's thread, after the send: the database writes its answer implies."""
