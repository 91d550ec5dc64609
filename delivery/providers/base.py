"""The provider contract: every channel adapter in this package implements ``Provider``.

Subclasses must implement at least ``send()``. Instances live for the whole worker process (see
``routing.provider_for``); each claimed batch runs inside ``with provider:``, which calls
``open()`` and then ``release()``. Connection-oriented transports keep their session across
batches in ``release()`` (a P0 message should not pay a TCP and TLS handshake) and only
``close()`` it when asked to.
Every failure is classified: ``transient`` is retried with backoff, ``permanent`` never is.
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

    @classmethod
    def sent(cls, provider_ref: str, detail: str = "") -> "SendResult":
        return cls(ok=True, provider_ref=provider_ref, detail=detail)

    @classmethod
    def transient(cls, code: str, detail: str, *, maybe_accepted: bool = False) -> "SendResult":
        return cls(ok=False, error_class="transient", code=code, detail=detail, maybe_accepted=maybe_accepted)

    @classmethod
    def permanent(cls, code: str, detail: str) -> "SendResult":
        return cls(ok=False, error_class="permanent", code=code, detail=detail)


class Provider:
    """Base class. ``config`` holds non-secret options merged with decrypted credentials."""

    name: ClassVar[str] = "base"
    channel: ClassVar[Channel]

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
