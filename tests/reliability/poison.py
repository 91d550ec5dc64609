"""A stand-in for a message that takes its worker down (a native crash in a renderer or SDK).

It is the real SMTP provider, except that a message whose subject starts with "POISON" kills the
process with SIGKILL before anything reaches the wire: no exception handler can see it, exactly
like a segfault. Used by the R5 test and by bench/chaos.py.
"""

from __future__ import annotations

import os
import signal

from delivery.providers.smtp import SmtpProvider


class PoisonSmtpProvider(SmtpProvider):
    name = "smtp"

    # The engine's sending threads call send_prepared (the SMTP provider prepares DKIM keys first);
    # send is the serial path. Both die on a poison pill.
    def send_prepared(self, message, content, prepared):
        _maybe_die(content)
        return super().send_prepared(message, content, prepared)

    def send(self, message, content):
        _maybe_die(content)
        return super().send(message, content)


def _maybe_die(content) -> None:
    if (content.subject or "").startswith("POISON"):
        os.kill(os.getpid(), signal.SIGKILL)
