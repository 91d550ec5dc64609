"""Loopback SMTP stand-in: the dev sink plus scripted replies, for the delivery tests.

Scripts are keyed by recipient address: each RCPT to a scripted address consumes the next reply
("451 …", "550 …"); once the script is used up the address is accepted. `rcpt_delay` slows each
message down before the server holds its content, so a test can kill a worker mid-batch;
`data_delay` holds the final DATA reply back (the RFC 1047 window where the server has the mail
but the client has no answer yet); `latency_ms` (SinkHandler) answers each DATA that much later,
before taking the message, as a relay's processing time.
"""

from __future__ import annotations

import asyncio
import collections
from email.message import Message

from comms.devserver.smtp_sink import SinkHandler


class ScriptedSink(SinkHandler):
    def __init__(self, latency_ms: float = 0.0):
        super().__init__(maildir=None, latency_ms=latency_ms)
        self.initial_latency_ms = latency_ms
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages = []
            self.raw = []
            self.scripts: dict[str, collections.deque] = {}
            self.rcpt_attempts: collections.Counter = collections.Counter()
            self.data_delay = 0.0
            self.rcpt_delay = 0.0
            self.sessions = 0
            self.in_data = self.max_in_data = 0  # DATA transactions open at once (concurrent sends)
            self.latency_ms = getattr(self, "initial_latency_ms", 0.0)

    def script(self, address: str, *replies: str) -> None:
        self.scripts[address.lower()] = collections.deque(replies)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts[address.lower()] += 1
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        queue = self.scripts.get(address.lower())
        if queue:
            return queue.popleft()
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        self.in_data += 1  # one event loop: no lock needed
        self.max_in_data = max(self.max_in_data, self.in_data)
        try:
            if self.data_delay:
                await asyncio.sleep(self.data_delay)
            return await super().handle_DATA(server, session, envelope)
        finally:
            self.in_data -= 1


    def by_comms_id(self) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = collections.defaultdict(list)
        with self.lock:
            for message in self.messages:
                out[message["X-Comms-Message-Id"]].append(message)
        return out
