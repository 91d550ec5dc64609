"""The engagement console page in headless Chromium at 1280 and 360 px: the score histogram, the
best-channel mix and the re-engagement candidates of the picked tenant, nothing overflowing sideways,
no inline script (CSP)."""

from __future__ import annotations

import os
import random

import pytest
from django.utils import timezone

from comms.models import Recipient, Tenant
from tests.admin_console.test_layout_e2e import OVERFLOW_JS
from tests.browser import SCREENSHOTS, admin_staff, browser_page
from tracking.models import RecipientEngagement

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def _population(tenant: Tenant, n: int, *, seed: int) -> None:
    rng = random.Random(seed)
    channels = ["email", "email", "sms", "push", "in_app", ""]
    for i in range(n):
        r = Recipient.objects.create(tenant=tenant, external_id=f"{tenant.slug}-{i:03d}", email=f"{tenant.slug}{i}@example.com")
        score = round(rng.betavariate(2, 4), 4)
        RecipientEngagement.objects.create(
            tenant_id=tenant.id, recipient_id=r.id, score=score, best_channel=rng.choice(channels),
            reengagement=round(rng.random() * 0.8 if score < 0.3 else 0.02, 4),
            last_engaged_at=timezone.now() - timezone.timedelta(days=rng.randint(1, 120)))


def test_engagement_page_shows_distribution_mix_and_candidates(live_server):
    mine, _ = Tenant.objects.get_or_create(slug="acme", defaults={"name": "Acme"})
    theirs, _ = Tenant.objects.get_or_create(slug="zeta", defaults={"name": "Zeta"})
    _population(mine, 60, seed=1)
    _population(theirs, 15, seed=2)
    admin_staff("viewer", "CommsViewer")  # the read-only role sees it
    shots = SCREENSHOTS
    with browser_page() as page:
        page.goto(f"{live_server.url}/admin/login/?next=/console/engagement/")
        page.fill("#id_username", "viewer")
        page.fill("#id_password", "viewer-secret-pw")
        page.click("input[type=submit]")
        page.wait_for_selector("#engagement-histogram svg")
        assert "75 recipients scored" in page.locator("#engagement-summary").inner_text()
        assert page.locator("#engagement-histogram svg rect").count() == 10
        page.select_option("#tenant-select", label="acme")  # console.js submits the filter
        page.wait_for_url(lambda url: "tenant=" in url)
        assert "60 recipients scored" in page.locator("#engagement-summary").inner_text()
        rows = page.locator("#engagement-candidates tbody tr")
        assert rows.count() > 3
        first = rows.first.locator("td")
        assert first.nth(0).inner_text().startswith("acme-")
        values = [float(rows.nth(i).locator("td").nth(1).inner_text()) for i in range(rows.count())]
        assert values == sorted(values, reverse=True) and values[-1] >= 0.3
        mix = dict((r.locator("td").nth(0).inner_text(), int(r.locator("td").nth(1).inner_text()))
                   for r in page.locator("#engagement-channels tbody tr").all())
        assert sum(mix.values()) == 60 and "none yet" in mix
        assert page.locator("script:not([src])").count() == 0 and page.locator("[onclick],[onchange]").count() == 0
        for width in (1280, 360):
            page.set_viewport_size({"width": width, "height": 900})
            page.reload()
            assert page.evaluate(OVERFLOW_JS) <= 0, f"overflows at {width}px"
            page.screenshot(path=str(shots / f"engagement-{width}.png"), full_page=True)
