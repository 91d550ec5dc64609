"""Every ops console page shares one <head> and one stylesheet: it extends admin_console/base.html,
which links console.css (served from the app's static files, allowed by the CSP's style-src 'self'),
and keeps its own rules in a static file, not in a <style> block copied from its neighbours."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders

from admin_console.roles import roles_ensure
from tests.conftest import ROOT

PAGES = ROOT / "admin_console" / "templates" / "admin_console"
# The page templates (partials start with "_"; quality_table.html is an include).
PAGE_NAMES = sorted(p.name for p in PAGES.glob("*.html")
                    if not p.name.startswith("_") and p.name not in ("base.html", "quality_table.html"))
URLS = ["/console/", "/console/deliverability/", "/console/pools/", "/console/probes/", "/console/anomalies/",
        "/console/analytics/", "/console/compliance/", "/console/engagement/"]
STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+)">')


def test_every_console_page_template_extends_the_base_and_has_no_style_block():
    assert len(PAGE_NAMES) >= 7  # really walking the pages
    for name in PAGE_NAMES:
        text = (PAGES / name).read_text()
        assert text.startswith('{% extends "admin_console/base.html" %}'), name
        assert "<style" not in text and "<head" not in text, name


def test_the_stylesheets_are_static_files():
    for path in ("admin_console/console.css", "admin_console/console.js"):
        assert finders.find(path), path
    for page in ("dashboard", "deliverability", "pools", "probes", "anomalies", "reports"):
        assert finders.find(f"admin_console/pages/{page}.css"), page


@pytest.mark.django_db
def test_each_console_page_links_the_shared_stylesheet_then_its_own(client):
    user = get_user_model().objects.create_user("ops", "ops@example.com", "pw", is_staff=True)
    user.groups.add(roles_ensure()["CommsViewer"])
    client.force_login(user)
    for url in URLS:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        sheets = STYLESHEET.findall(html)
        assert sheets[0] == "/static/admin_console/console.css", url
        assert len(sheets) == 2 and sheets[1].startswith("/static/admin_console/pages/"), url
        assert html.count("<head>") == 1 and "<style" not in html, url
        assert 'src="/static/admin_console/console.js"' in html, url
        assert html.count("<h1>") == 1 and "</main>" in html, url
