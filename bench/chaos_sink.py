"""Recording SMTP sink for bench/chaos.py, in its own process.

Appends the X-Comms-Message-Id of every message it accepts (one line each, flushed) to --log, so
the bench counts lost and duplicated messages after the fact. With --fault-rate, a message seen
for the first time is, at that rate each, (a) held back longer than the client timeout after the
server has the whole message, or (b) answered by a TCP reset after the server has it: the two
ways a provider can take a message while the client believes it failed. With --latency-ms, every DATA
is answered that much later, after the id is on disk, as a real relay commits before it replies
(30-150 ms): a worker killed in that wait leaves a message the receiver has and comms does not know was taken.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import socket
import struct
import sys
from email.parser import BytesHeaderParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiosmtpd.controller import Controller  # noqa: E402


class RecordingSink:
    def __init__(self, log: Path, fault_rate: float, delay: float, latency_ms: float = 0.0):
        self.out = log.open("a", buffering=1)
        self.fault_rate, self.delay, self.latency_ms = fault_rate, delay, latency_ms
        self.seen: set[str] = set()
        self.faults = {"delay": 0, "reset": 0}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        comms_id = BytesHeaderParser().parsebytes(raw).get("X-Comms-Message-Id", "unknown")
        self.out.write(comms_id + "\n")
        first = comms_id not in self.seen
        self.seen.add(comms_id)
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)  # an asyncio sleep: other connections go on
        if first and self.fault_rate:
            roll = int(hashlib.sha256(comms_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
            if roll < self.fault_rate:
                self.faults["delay"] += 1
                await asyncio.sleep(self.delay)  # the client has given up by now
            elif roll < 2 * self.fault_rate:
                self.faults["reset"] += 1
                sock = server.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                server.transport.abort()  # RST after the message was taken
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer every DATA this much later")
    args = parser.parse_args()
    controller = Controller(RecordingSink(args.log, args.fault_rate, args.delay, args.latency_ms), hostname="127.0.0.1",
                            port=args.port, data_size_limit=32 * 1024 * 1024)
    controller.start()
    import signal

    signal.pause()  # SIGTERM ends the process; every id is already on disk (line-buffered)


if __name__ == "__main__":
    main()
