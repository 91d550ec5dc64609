"""A loopback authoritative DNS stand-in (dnslib) serving zones held in memory.

The DNS checks and DKIM verification talk real DNS (UDP, and TCP for answers over 512 bytes) to it, so
tests exercise dnspython and dkimpy end to end with good and broken zones. ``silent_socket`` is a UDP
port that never answers: a resolver pointed at it times out, like an unreachable nameserver.
"""

from __future__ import annotations

import socket
import threading
from collections import defaultdict

from dnslib import CNAME, MX, QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def _txt(value: str | list[str]) -> TXT:
    strings = value if isinstance(value, list) else [value[i:i + 255] for i in range(0, len(value), 255)]
    return TXT([s.encode() for s in strings])


class Zones(BaseResolver):
    """Records by (name, type); `set_txt` etc. change them while the server runs."""

    def __init__(self):
        self.records: dict[tuple[str, str], list] = defaultdict(list)
        self.lock = threading.Lock()

    @staticmethod
    def _name(name: str) -> str:
        return name.rstrip(".").lower()

    def add(self, name: str, kind: str, rdata) -> None:
        with self.lock:
            self.records[(self._name(name), kind)].append(rdata)

    def add_txt(self, name: str, value: str | list[str]) -> None:
        """A TXT record; a str longer than 255 bytes is split into character-strings."""
        self.add(name, "TXT", _txt(value))

    def add_mx(self, name: str, host: str, preference: int = 10) -> None:
        self.add(name, "MX", MX(host, preference))

    def add_cname(self, name: str, target: str) -> None:
        self.add(name, "CNAME", CNAME(target))

    def remove(self, name: str, kind: str | None = None) -> None:
        with self.lock:
            for key in [k for k in self.records if k[0] == self._name(name) and (kind is None or k[1] == kind)]:
                del self.records[key]

    def clear(self) -> None:
        with self.lock:
            self.records.clear()

    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname)
        kind = QTYPE[request.q.qtype]
        with self.lock:
            found = list(self.records.get((self._name(qname), kind), []))
            cname = list(self.records.get((self._name(qname), "CNAME"), [])) if kind != "CNAME" else []
            exists = any(k[0] == self._name(qname) for k in self.records)
        for rdata in found or cname:
            reply.add_answer(RR(qname, QTYPE.CNAME if cname and not found else getattr(QTYPE, kind), rdata=rdata,
                                ttl=60))
        if not found and not cname and not exists:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class DnsStandIn:
    """UDP and TCP servers on 127.0.0.1:<port> answering from `zones`."""

    def __init__(self, zones: Zones | None = None, port: int = 0):
        self.zones = zones or Zones()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        # A port free for UDP may be taken for TCP by another server: with no port asked for, try
        # fresh ones until both bind.
        for attempt in range(1 if port else 20):
            self.port = port or _free_udp_port()
            udp = DNSServer(self.zones, address="127.0.0.1", port=self.port, logger=quiet)
            try:
                tcp = DNSServer(self.zones, address="127.0.0.1", port=self.port, tcp=True, logger=quiet)
            except OSError:
                udp.server.server_close()
                if port or attempt == 19:
                    raise
                continue
            self.servers = [udp, tcp]
            break

    @property
    def nameserver(self) -> str:
        """The COMMS_DNS_NAMESERVERS entry for this server."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> "DnsStandIn":
        for server in self.servers:
            server.start_thread()
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            server.server.server_close()


def silent_socket() -> tuple[socket.socket, str]:
    """A bound UDP socket nobody reads, and its "127.0.0.1:port": queries to it time out."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock, f"127.0.0.1:{sock.getsockname()[1]}"
