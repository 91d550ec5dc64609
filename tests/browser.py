"""Headless Chromium for end-to-end page tests (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

SCREENSHOTS = Path(os.environ.get("COMMS_SCREENSHOTS", "/tmp/comms-screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@contextlib.contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            yield page
        finally:
            browser.close()


# --- Django admin steps shared by the admin e2e tests ---------------------------------------------
def admin_staff(name: str, group: str):
    """A staff user in one of the comms roles; the password is ``<name>-secret-pw``."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from admin_console.roles import roles_ensure

    roles_ensure()  # transactional tests truncate tables, migration-made groups included
    user = get_user_model().objects.create_user(name, f"{name}@example.com", f"{name}-secret-pw", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def admin_login(page, base: str, name: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", f"{name}-secret-pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def admin_logout(page) -> None:
    with page.expect_navigation(url="**/admin/logout/"):
        page.evaluate("document.querySelector('#logout-form').submit()")


def admin_template_add(page, base: str, *, key: str, name: str, channels: str, screenshot: str = "") -> None:
    """Add a template; the admin lands on its new draft version."""
    page.goto(f"{base}/admin/templates_app/template/add/")
    page.fill("#id_template_key", key)
    page.fill("#id_name", name)
    for channel in channels.split(","):  # a checkbox per channel of the enum
        page.check(f"input[name=channels][value={channel.strip()}]")
    page.click("input[name=_save]")
    if screenshot:
        page.screenshot(path=str(SCREENSHOTS / screenshot), full_page=True)
    page.wait_for_selector("#workflow")


def admin_draft_save(page, *, subject: str, body_html: str, schema: dict | None = None, sample: dict | None = None,
                     sms_text: str = "") -> None:
    """Fill the draft version's fields (schema and sample variables when given) and save-and-continue."""
    import json

    if schema is not None:
        page.fill("#id_variables_schema", json.dumps(schema))
    if sample is not None:
        page.fill("#id_sample_variables", json.dumps(sample))
    page.fill("#id_locales-0-subject", subject)
    page.fill("#id_locales-0-body_html", body_html)
    if sms_text:
        page.fill("#id_locales-0-sms_text", sms_text)
    page.click("input[name=_continue]")


def admin_submit_for_review(page) -> None:
    page.click("button[name=submit_for_review]")
    assert "submitted for review" in page.locator(".messagelist").inner_text()


def admin_approve_as(page, base: str, name: str, *, key: str, notes: str):
    """Log out, log in as the approver ``name``, approve the template's only version; returns it."""
    from templates_app.models import Template

    admin_logout(page)
    admin_login(page, base, name)
    version = Template.objects.get(template_key=key).versions.get()
    page.goto(f"{base}/admin/templates_app/templateversion/{version.pk}/change/")
    page.fill("textarea[name=approve_notes]", notes)
    page.click("button[name=approve]")
    assert "approved and live" in page.locator(".messagelist").inner_text()
    return version
