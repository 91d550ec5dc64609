"""Security headers, CSP on our pages (and that the pages still work under it), CSRF, cookies,
and `manage.py check --deploy` clean under production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.browser import SCREENSHOTS, browser_page
from tests.conftest import ROOT

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
pytestmark = pytest.mark.django_db(transaction=True)


def test_html_pages_carry_csp_and_security_headers(client):
    page = client.get("/admin/login/")
    assert page.status_code == 200
    csp = page["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Referrer-Policy"] == "same-origin"
    assert page["Cross-Origin-Opener-Policy"] == "same-origin"
    api = client.get("/api/v1/messages")
    assert "Content-Security-Policy" not in api and api["X-Content-Type-Options"] == "nosniff"


def test_forms_refuse_posts_without_a_csrf_token_and_cookies_are_flagged(settings):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    strict = Client(enforce_csrf_checks=True)
    refused = strict.post("/admin/login/", {"username": "ops", "password": "correct horse battery"})
    assert refused.status_code == 403
    form = strict.get("/admin/login/")
    token = form.cookies["csrftoken"].value
    ok = strict.post("/admin/login/?next=/admin/", {"username": "ops", "password": "correct horse battery",
                                                    "csrfmiddlewaretoken": token})
    assert ok.status_code == 302
    session = ok.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"
    assert settings.SESSION_COOKIE_AGE <= 8 * 3600


def test_deploy_check_is_clean_under_production_settings():
    env = {**os.environ, "DEBUG": "false", "COMMS_HTTPS": "true", "SECRET_KEY": secrets.token_urlsafe(50),
           "ALLOWED_HOSTS": "comms.example.com"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests of this process, never in production
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    env.pop("COMMS_HTTPS")  # without TLS settings the same check must complain: it is really checking
    plain = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode != 0 and "SESSION_COOKIE_SECURE" in plain.stdout + plain.stderr


def test_admin_and_console_work_under_the_csp(live_server, tenant, other_tenant):
    get_user_model().objects.create_superuser("ops", "ops@example.com", "correct horse battery")
    violations: list[str] = []
    with browser_page() as page:
        page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "ops")
        page.fill("#id_password", "correct horse battery")
        page.click("input[type=submit]")
        page.wait_for_selector("text=Site administration")
        page.goto(f"{live_server.url}/admin/delivery/message/")
        page.wait_for_selector("#changelist")
        page.goto(f"{live_server.url}/console/")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(SCREENSHOTS / "console-under-csp.png"), full_page=True)
        assert "Server Error" not in page.content()
        # The tenant selector works under the CSP: choosing a tenant reloads the console for it.
        with page.expect_navigation(url=f"**/console/?tenant={other_tenant.pk}"):
            page.select_option("#tenant-select", label=other_tenant.slug)
        assert page.locator("#tenant-select option:checked").inner_text() == other_tenant.slug
        with page.expect_navigation(url="**/console/?tenant="):
            page.select_option("#tenant-select", label="all tenants")
        assert page.locator("#tenant-select option:checked").inner_text() == "all tenants"
    assert violations == []
