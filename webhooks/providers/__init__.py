"""One module per inbound provider; PARSERS maps a stored row's provider to its normaliser."""

import functools
from collections.abc import Callable
from typing import Any

from anymail.exceptions import AnymailError

from webhooks.intake import Malformed
from webhooks.providers.esp import MailgunIntake, PostmarkIntake, SendGridIntake
from webhooks.providers.push import PushFeedbackIntake
from webhooks.providers.ses import SesIntake
from webhooks.providers.twilio import TwilioInboundIntake, TwilioStatusIntake



def _typed(provider: str, parse: Callable[[Any], list]) -> Callable[[Any], list]:
    """A body that is not in the provider's format ends as Malformed (typed), whatever the parser
    (ours or anymail's) tripped over: found by fuzzing (tests/security/test_fuzz.py)."""

    @functools.wraps(parse)
    def parse_typed(row: Any) -> list:
        try:
            return parse(row)
        except (AnymailError, Malformed):
            raise
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError) as exc:
            raise Malformed(f"{provider} payload not understood: {type(exc).__name__}: {exc}"[:500]) from exc

    return parse_typed


PARSERS = {
    "sendgrid": _typed("sendgrid", SendGridIntake.parse),
    "mailgun": _typed("mailgun", MailgunIntake.parse),
    "postmark": _typed("postmark", PostmarkIntake.parse),
    "ses": _typed("ses", SesIntake.parse),
    "twilio": _typed("twilio", TwilioStatusIntake.parse),
}

__all__ = ["PARSERS", "MailgunIntake", "PostmarkIntake", "PushFeedbackIntake", "SendGridIntake", "SesIntake",
           "TwilioInboundIntake", "TwilioStatusIntake"]
