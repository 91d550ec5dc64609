"""Tenant fairness inside the claim: one tenant's backlog cannot starve another's same-priority rows."""

from __future__ import annotations

import random

import pytest
from django.utils import timezone

from comms.enums import Priority, Status
from comms.models import Tenant, TenantQuota
from delivery.models import Message
from delivery.services import SendSpec, claim_batch, message_bulk_enqueue
from delivery.services.fairness import due_tenants, shares
from tests.conftest import claim_in_threads


def _bulk(tenant, n, priority=Priority.P2, prefix="u"):
    spec = SendSpec(channel="email", subject="s", body="b", priority=priority)
    return message_bulk_enqueue(tenant=tenant, spec=spec,
                                recipients=[{"to": f"{prefix}{i}@example.com"} for i in range(n)])


def _tenant(slug):
    return Tenant.objects.create(slug=slug, name=slug)


@pytest.mark.django_db
def test_a_later_tenants_rows_share_the_first_claim_with_a_backlog(tenant, settings):
    """B enqueued after A's 300-row backlog: B's rows are in the very next claim (oldest-first alone
    would make them wait for all of A's)."""
    b = _tenant("b")
    _bulk(tenant, 300, prefix="a")
    _bulk(b, 5, prefix="b")
    batch = claim_batch(max_priority=2, limit=20, owner="w")
    by_tenant = {t: sum(1 for m in batch if m.tenant_id == t) for t in (tenant.id, b.id)}
    assert by_tenant == {tenant.id: 15, b.id: 5}  # B's 5, A's share of 10 and the 5 B left over
    assert batch[1].tenant_id == b.id  # round-robin: B's first row is started second, not after A's share


@pytest.mark.django_db
def test_with_fairness_off_the_backlog_goes_first(tenant, settings):
    settings.COMMS_TENANT_FAIRNESS = False
    b = _tenant("b")
    _bulk(tenant, 300, prefix="a")
    _bulk(b, 5, prefix="b")
    batch = claim_batch(max_priority=2, limit=20, owner="w")
    assert {m.tenant_id for m in batch} == {tenant.id}


@pytest.mark.django_db
def test_two_backlogs_interleave_claim_after_claim(tenant):
    b = _tenant("b")
    _bulk(tenant, 100, prefix="a")
    _bulk(b, 100, prefix="b")
    for _ in range(4):
        batch = claim_batch(max_priority=2, limit=10, owner="w")
        assert sorted(str(m.tenant_id) for m in batch) == sorted([str(tenant.id)] * 5 + [str(b.id)] * 5)


@pytest.mark.django_db
def test_weights_split_the_batch(tenant):
    b = _tenant("b")
    TenantQuota.objects.create(tenant=tenant, weight=3)
    _bulk(tenant, 100, prefix="a")
    _bulk(b, 100, prefix="b")
    batch = claim_batch(max_priority=2, limit=40, owner="w")
    assert sum(1 for m in batch if m.tenant_id == tenant.id) == 30
    assert sum(1 for m in batch if m.tenant_id == b.id) == 10


@pytest.mark.django_db
def test_p0_of_any_tenant_comes_before_every_p2(tenant):
    b, c = _tenant("b"), _tenant("c")
    _bulk(tenant, 50, prefix="a")
    _bulk(b, 50, prefix="b")
    _bulk(c, 2, priority=Priority.P0, prefix="c0-")
    _bulk(tenant, 1, priority=Priority.P0, prefix="a0-")
    batch = claim_batch(max_priority=2, limit=10, owner="w")
    assert [m.priority for m in batch[:3]] == [0, 0, 0]
    assert {m.tenant_id for m in batch[:3]} == {c.id, tenant.id}
    assert all(m.priority == 2 for m in batch[3:]) and len(batch) == 10


@pytest.mark.django_db
def test_only_tenants_with_due_rows_are_found(tenant):
    b = _tenant("b")
    _bulk(tenant, 3, prefix="a")
    _bulk(b, 3, prefix="b")
    Message.objects.filter(tenant=b).update(next_attempt_at=timezone.now() + timezone.timedelta(hours=1))
    assert due_tenants(priority=2, now=timezone.now()) == [tenant.id]
    assert due_tenants(priority=1, now=timezone.now()) == []


def test_shares_never_pass_the_batch_and_rotate_over_many_tenants():
    tenants = list(range(50))
    seen = set()
    rng = random.Random(7)
    for _ in range(200):
        got = shares(tenants, limit=10, weight=lambda t: 1, rng=rng)
        assert sum(got.values()) == 10 and set(got.values()) == {1}
        seen.update(got)
    assert seen == set(tenants)  # nobody is always left out
    assert shares(["a", "b"], limit=7, weight=lambda t: 1) in ({"a": 3, "b": 3}, {"b": 3, "a": 3})


@pytest.mark.django_db(transaction=True)
def test_concurrent_fair_claimers_never_share_a_row(tenant):
    b = _tenant("b")
    _bulk(tenant, 300, prefix="a")
    _bulk(b, 300, prefix="b")
    claimed = claim_in_threads()
    everything = [i for ids in claimed.values() for i in ids]
    assert len(everything) == 600 and len(set(everything)) == 600
    assert Message.objects.filter(status=Status.SENDING).count() == 600
