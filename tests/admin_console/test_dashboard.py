"""The /console/ page, the stats API, /metrics and /readyz on a seeded data set."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from admin_console import stats, workers
from admin_console.roles import roles_ensure
from comms.models import Scope
from tests.admin_console.seed import seed

pytestmark = pytest.mark.django_db
N = 12_000


def sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


@pytest.fixture
def seeded(tenant, other_tenant):
    now = timezone.now()
    seed(n=N, tenant=tenant, other_tenant=other_tenant, now=now)
    return now


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("ops", "ops@example.com", "pw", is_staff=True)
    user.groups.add(roles_ensure()["CommsViewer"])
    client.force_login(user)
    return client


def cell(html: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert match, table_id
    return match.group(1)


def test_dashboard_numbers_equal_sql_and_every_number_links(seeded, staff_client):
    response = staff_client.get("/console/")
    assert response.status_code == 200
    html = response.content.decode()
    queue = cell(html, "queue-depth")
    rows = re.findall(r"<tr><td>(P\d)[^<]*</td>(.*?)</tr>", queue, re.S)
    assert [r[0] for r in rows] == ["P0", "P1", "P2", "P3", "P4"]
    columns = re.findall(r"<th>([a-z]+)</th>", queue.split("</thead>")[0])[1:]
    for label, body in rows:
        numbers = [int(n) for n in re.findall(r'<a href="[^"]*status__exact=[a-z]+">(\d+)</a>', body)]
        expected = dict(sql("SELECT status, count(*) FROM delivery_message WHERE priority = %s GROUP BY 1",
                            [int(label[1])]))
        assert numbers == [expected.get(status, 0) for status in columns]
    # Every figure in every table is a link to the filtered message list (percentages with nothing
    # to filter on, like open %, are plain; '—' means no data).
    for table_id in ("queue-depth", "send-rates", "reasons", "quality-channel", "quality-provider", "quality-template"):
        body = cell(html, table_id).split("</thead>")[-1]
        bare = re.findall(r"<td[^>]*>\s*(\d[\d,.]*)\s*</td>", body)
        assert bare == [], (table_id, bare[:5])
    blocked = dict(sql("SELECT failure_code, count(*) FROM delivery_message WHERE status = 'blocked' GROUP BY 1"))
    for reason, n in blocked.items():
        assert re.search(rf"<td>blocked</td><td><code>{reason}</code></td><td><a href=\"[^\"]*failure_code__exact={reason}\">{n}</a>",
                         html)
    assert "<svg" in html and 'class="threshold"' in html
    # The links open the admin list filtered accordingly.
    link = re.search(r'href="(/admin/delivery/message/\?priority__exact=0&amp;status__exact=queued)"', html).group(1)
    page = staff_client.get(link.replace("&amp;", "&"))
    assert page.status_code == 200


def test_dashboard_is_staff_only(client, seeded):
    assert client.get("/console/").status_code == 302
    staff = get_user_model().objects.create_user("staff", "s@example.com", "pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/console/").status_code == 403  # staff, but no role that may read messages
    user = get_user_model().objects.create_user("nobody", "n@example.com", "pw", is_staff=False)
    client.force_login(user)
    assert client.get("/console/").status_code == 302


def test_stats_api_same_figures_scoped_to_the_key_tenant(seeded, tenant, make_client):
    api = make_client(tenant, [Scope.MESSAGES_READ])
    body = api.get("/api/v1/stats/queue").json()
    expected = dict(sql("SELECT status, count(*) FROM delivery_message WHERE tenant_id = %s AND priority = 2 "
                        "GROUP BY 1", [str(tenant.pk)]))
    p2 = body["priorities"][2]
    assert {k: v for k, v in p2["by_status"].items() if v} == expected
    channels = api.get("/api/v1/stats/channels").json()
    email = next(q for q in channels["quality"]["channel"] if q["channel"] == "email")
    assert email["counts"] == next(q for q in stats.quality(by="channel", tenant_id=tenant.pk)
                                   if q.key == ("email",)).as_dict()["counts"]
    templates = api.get("/api/v1/stats/templates?days=3").json()
    assert templates["days"] == 3 and templates["results"]
    bad = api.get("/api/v1/stats/templates?days=99")
    assert bad.status_code == 400 and bad.json()["code"] == "COMMS_VALIDATION_ERROR"
    no_scope = make_client(tenant, [Scope.MESSAGES_SEND]).get("/api/v1/stats/queue")
    assert no_scope.status_code == 403 and no_scope.json()["code"] == "COMMS_FORBIDDEN"


def test_metrics_and_readyz(seeded, client, settings):
    text = client.get("/metrics").content.decode()
    queued = sql("SELECT count(*) FROM delivery_message WHERE priority = 1 AND channel = 'email' AND status = 'queued'")
    assert f'comms_queue_messages{{channel="email",priority="P1",status="queued"}} {float(queued[0][0])}' in text
    assert "comms_queue_oldest_age_seconds" in text and "comms_quality_ratio" in text
    settings.COMMS_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200

    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["workers"].startswith("error")
    workers.beat(hostname="celery@test", queues=["p0"])
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok", "workers": "ok"}
