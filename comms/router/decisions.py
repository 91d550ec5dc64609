"""The router's view of the preference decision (issue 5's ``preferences.services.send_decision``).

The router asks per recipient and channel before it produces a message, so that a blocked channel
falls through to the next, a digest preference collects instead of sending, and a dry run can say
why each recipient is allowed, deferred or blocked. The send-time check in the engine still runs:
preferences may change between routing and sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from preferences.services import send_decision

ALLOW, DEFER, BLOCK, DIGEST = "allow", "defer", "block", "digest"


@dataclass(frozen=True)
class Decision:
    verdict: str
    code: str = ""
    reason: str = ""
    until: datetime | None = None
    cadence: str = ""  # for DIGEST: hourly | daily | weekly


def _field(result: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        if isinstance(result, dict) and name in result:
            return result[name]
        if hasattr(result, name):
            return getattr(result, name)
    return default


_VERDICTS = {"allow": ALLOW, "allowed": ALLOW, "send": ALLOW, "defer": DEFER, "deferred": DEFER,
             "block": BLOCK, "blocked": BLOCK, "digest": DIGEST}


def decide(*, recipient: Any, channel: str, category: str, address: str, now: datetime) -> Decision:
    """allow / defer (quiet hours, with `until`) / block (with a COMMS_* code) / digest (with cadence)."""
    result = send_decision(recipient=recipient, channel=channel, category=category, address=address, now=now)
    raw = _field(result, "verdict", "outcome", "decision", "action", "status", default="allow")
    raw = getattr(raw, "value", raw)
    verdict = _VERDICTS.get(str(raw).lower(), ALLOW)
    cadence = str(_field(result, "cadence", "frequency", default="") or "")
    cadence = cadence.replace("_digest", "").replace("digest_", "")
    return Decision(
        verdict=verdict, code=str(_field(result, "code", "reason_code", default="") or ""),
        reason=str(_field(result, "reason", "message", "detail", default="") or ""),
        until=_field(result, "until", "resume_at", "defer_until", default=None), cadence=cadence,
    )
