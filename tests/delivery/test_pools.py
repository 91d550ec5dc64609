"""IP pools / streams: a category's mail takes its pool's relay and sending IP; admins may choose a
pool per message; everyone else is refused (delivery.deliverability.pools, delivery.routing)."""

from __future__ import annotations

import pytest

from comms import errors
from comms.devserver.embedded import free_port
from comms.devserver.smtp_sink import SinkHandler, start_sink
from comms.enums import Status
from comms.models import AuditEntry
from delivery import routing
from delivery.deliverability import pools
from delivery.models import ChannelProvider, Message, Pool
from delivery.services import drain_all

pytestmark = pytest.mark.django_db
SMTP = "delivery.providers.smtp.SmtpProvider"


class PeerSink(SinkHandler):
    """The dev sink, also noting the client address each message came from (the sending IP)."""

    def __init__(self):
        super().__init__(maildir=None)
        self.peers: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.peers.append(session.peer[0])
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def relays():
    """Two loopback relays: 'relay-tx' (the primary) and 'relay-mkt'; and the two pools over them."""
    sinks = {}
    controllers = []
    for name in ("relay-tx", "relay-mkt"):
        port = free_port()
        sink = PeerSink()
        controllers.append(start_sink(sink, port=port))
        ChannelProvider.objects.create(channel="email", name=name, provider_class=SMTP, is_primary=name == "relay-tx",
                                       options={"host": "127.0.0.1", "port": port})
        sinks[name] = sink
    pools.pool_create(name="transactional", providers=["relay-tx"], categories=["transactional", "security"])
    # The marketing stream: its own relay, from its own sending IP (127.0.0.3 is loopback on Linux).
    pools.pool_create(name="marketing", providers=["relay-mkt"], source_address="127.0.0.3",
                      categories=["marketing", "promotions"])
    yield sinks
    for controller in controllers:
        controller.stop()


def _send(client, category, **extra):
    return client.post("/api/v1/messages", {"channel": "email", "to": "ada@example.com", "subject": category,
                                            "body": "b", "category": category, **extra}, format="json")


def test_each_category_takes_its_pools_relay_and_sending_ip(api, tenant, relays):
    # (promotions, the pool's other category, needs double opt-in consent: marketing stands for both)
    receipt, promo, news = (_send(api, c).json() for c in ("transactional", "marketing", "marketing"))
    assert (receipt["pool"], promo["pool"], news["pool"]) == ("transactional", "marketing", "marketing")
    assert drain_all().sent == 3
    assert [m["Subject"] for m in relays["relay-tx"].messages] == ["transactional"]
    assert [m["Subject"] for m in relays["relay-mkt"].messages] == ["marketing", "marketing"]
    # The marketing relay saw the pool's source address; the transactional one the default.
    assert relays["relay-mkt"].peers == ["127.0.0.3", "127.0.0.3"]
    assert relays["relay-tx"].peers == ["127.0.0.1"]
    sent = Message.objects.get(id=news["id"])
    assert (sent.status, sent.pool, sent.provider) == (Status.SENT, "marketing", "relay-mkt@marketing")


def test_a_category_without_a_pool_routes_as_before(api, tenant, relays):
    body = _send(api, "operational").json()
    assert body["pool"] == ""
    drain_all()
    # No pool: the usual chain (primary first), not filtered.
    assert Message.objects.get(id=body["id"]).provider == "relay-tx"


def test_an_admin_key_may_send_one_message_through_another_pool(admin_api, tenant, relays):
    response = _send(admin_api, "transactional", pool="marketing")
    assert response.status_code == 202, response.content
    assert response.json()["pool"] == "marketing"
    drain_all()
    assert [m["Subject"] for m in relays["relay-mkt"].messages] == ["transactional"]
    assert relays["relay-tx"].messages == []


def test_a_non_admin_key_may_not_choose_a_pool(api, relays):
    response = _send(api, "transactional", pool="marketing")
    assert response.status_code == 403
    assert response.json()["code"] == "COMMS_POOL_FORBIDDEN"
    assert not Message.objects.exists()


def test_an_unknown_pool_is_refused(admin_api, relays):
    response = _send(admin_api, "transactional", pool="nope")
    assert response.status_code == 422
    assert response.json()["code"] == "COMMS_POOL_UNKNOWN"
    # A pool of another channel is not a pool of this one.
    pools.pool_create(name="sms-bulk", channel="sms")
    assert _send(admin_api, "transactional", pool="sms-bulk").json()["code"] == "COMMS_POOL_UNKNOWN"
    assert not Message.objects.exists()


def test_a_tenant_pool_comes_before_a_global_one(tenant, other_tenant, relays):
    pools.pool_create(name="marketing", tenant=tenant, providers=["relay-tx"], categories=["marketing"])
    mine = routing.provider_specs(tenant_id=tenant.id, channel="email", category="marketing", pool="marketing")
    theirs = routing.provider_specs(tenant_id=other_tenant.id, channel="email", category="marketing",
                                    pool="marketing")
    assert [s.name for s in mine] == ["relay-tx"]
    assert [s.name for s in theirs] == ["relay-mkt@marketing"]
    assert theirs[0].config["source_address"] == "127.0.0.3"


def test_a_pool_whose_providers_are_all_disabled_does_not_leak_onto_another_route(api, relays):
    ChannelProvider.objects.filter(name="relay-mkt").update(status=ChannelProvider.State.DISABLED)
    routing.clear_cache()
    response = _send(api, "marketing")
    # The channel has providers, but none in the pool: accepted, and it waits rather than leaking
    # marketing onto the transactional relay.
    assert response.status_code == 202
    drain_all()
    assert relays["relay-tx"].messages == []
    assert Message.objects.get(id=response.json()["id"]).status != Status.SENT


def test_bad_pools_are_typed_errors(tenant):
    with pytest.raises(errors.ValidationFailed):
        pools.pool_create(name="has space")
    with pytest.raises(errors.ValidationFailed):
        pools.pool_create(name="x", source_address="not-an-ip")
    with pytest.raises(errors.ValidationFailed):
        pools.pool_create(name="x", categories=["no-such-category"])
    pools.pool_create(name="x", actor="ops")
    with pytest.raises(errors.ValidationFailed):
        pools.pool_create(name="x")
    assert Pool.objects.count() == 1
    assert AuditEntry.objects.filter(action="pool.create").count() == 1


def test_the_pool_is_part_of_the_idempotent_request(admin_api, relays):
    first = _send(admin_api, "transactional", idempotency_key="k1")
    assert first.status_code == 202 and first.json()["pool"] == "transactional"
    assert _send(admin_api, "transactional", idempotency_key="k1").status_code == 200  # replay
    other = _send(admin_api, "transactional", idempotency_key="k1", pool="marketing")
    assert other.status_code == 409 and other.json()["code"] == "COMMS_IDEMPOTENCY_CONFLICT"
