"""Two "machines" against one PostgreSQL (through PgBouncer) and one Redis.

Each node is its own process group with its own hostname (a UTS namespace where we may make one), var
dir, COMMS_PROCESS_NAME and SMTP relay, running a Celery worker and a beat, as `make run` would on
each host. Together they drain one backlog: every message goes out exactly once, both nodes send, and
only one beat sends scheduled tasks at a time (comms.beat's leader lease), the other taking over when
the leader dies.
"""

from __future__ import annotations

import os
import re

import pytest

from admin_console.workers import alive
from comms.beat import beat_leader
from comms.devserver.embedded import free_port
from comms.devserver.smtp_sink import start_sink
from comms.devserver.standins.smtp import ScriptedSink
from comms.enums import Status
from delivery.models import Message
from delivery.services import SendSpec, message_bulk_enqueue
from tests.conftest import wait_for
from tests.reliability.nodes import Node, can_set_hostname, pooled_env

pytestmark = pytest.mark.django_db(transaction=True)

SENDING = re.compile(r"Scheduler: Sending due task")


@pytest.fixture
def second_relay():
    handler = ScriptedSink()
    port = free_port()
    controller = start_sink(handler, port=port)
    yield handler, port
    controller.stop()


def test_two_nodes_share_one_backlog_exactly_once_and_one_beat_leads(tenant, smtp_sink, second_relay, pgbouncer,
                                                                     tmp_path):
    relay_b, port_b = second_relay
    common = {**pooled_env(pgbouncer), "COMMS_P2_BATCH": "20", "COMMS_SEND_CONCURRENCY": "4",
              "COMMS_BEAT_LOCK_SECONDS": "2", "COMMS_HOUSEKEEPING_SECONDS": "0.5",
              "COMMS_WORKER_HEARTBEAT_SECONDS": "1"}
    nodes = [Node("node-a", tmp_path, {**common, "EMAIL_PORT": os.environ["EMAIL_PORT"]}),
             Node("node-b", tmp_path, {**common, "EMAIL_PORT": str(port_b)})]
    relays = {"node-a": smtp_sink, "node-b": relay_b}
    for relay in relays.values():
        relay.rcpt_delay = 0.02  # a relay's round trip: long enough for the two nodes to overlap
    try:
        for node in nodes:
            node.worker("p0,p1,p2")
            node.beat()
        wait_for(lambda: len(alive()) == 2, timeout=90, message="both nodes' workers to be ready")
        if can_set_hostname():  # each worker reports its own machine's name (-n node@%h)
            assert [w["hostname"] for w in alive()] == ["node-a@node-a", "node-b@node-b"]

        n = 400
        message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="Shared", body="b", priority=2),
                             recipients=[{"to": f"shared{i}@example.com"} for i in range(n)])
        wait_for(lambda: Message.objects.filter(status=Status.SENT).count() == n, timeout=90,
                 message=f"{n} messages sent by the two nodes")

        by_node = {name: relay.by_comms_id() for name, relay in relays.items()}
        everything = [cid for seen in by_node.values() for cid, copies in seen.items() for _ in copies]
        assert len(everything) == n and len(set(everything)) == n  # exactly once across both machines
        assert all(by_node.values()), {name: len(seen) for name, seen in by_node.items()}  # both did work

        # One beat leads: only its log shows scheduled sends; the other has been waiting.
        wait_for(lambda: any(SENDING.search(node.log("beat")) for node in nodes), message="a beat to send")
        leader_id = beat_leader()
        leaders = [node for node in nodes if SENDING.search(node.log("beat"))]
        assert len(leaders) == 1, [node.log("beat")[-800:] for node in nodes]
        leader, follower = leaders[0], next(node for node in nodes if node is not leaders[0])
        if can_set_hostname():
            assert leader_id.startswith(f"{leader.name}:")

        leader.kill("beat")  # no clean release: the follower must wait out the lease, then take over
        wait_for(lambda: SENDING.search(follower.log("beat")), timeout=30, message="the follower beat to take over")
        wait_for(lambda: beat_leader() and beat_leader() != leader_id, timeout=10, message="a new lease holder")
    finally:
        for node in nodes:
            node.stop()
