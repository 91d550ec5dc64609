"""One module per inbound provider; PARSERS maps a stored row's provider to its normaliser."""

from webhooks.providers.esp import MailgunIntake, PostmarkIntake, SendGridIntake
from webhooks.providers.push import PushFeedbackIntake
from webhooks.providers.ses import SesIntake
from webhooks.providers.twilio import TwilioInboundIntake, TwilioStatusIntake

PARSERS = {
    "sendgrid": SendGridIntake.parse,
    "mailgun": MailgunIntake.parse,
    "postmark": PostmarkIntake.parse,
    "ses": SesIntake.parse,
    "twilio": TwilioStatusIntake.parse,
}

__all__ = ["PARSERS", "MailgunIntake", "PostmarkIntake", "PushFeedbackIntake", "SendGridIntake", "SesIntake",
           "TwilioInboundIntake", "TwilioStatusIntake"]
