"""Preview images in headless Chromium: three modes per locale, stored with the approval request, no fetches."""

from __future__ import annotations

import io
import os
import socket
import stat
import threading

import pytest
from PIL import Image, ImageStat

from templates_app import previews, services
from templates_app.admin import TemplateVersionAdmin
from templates_app.models import TemplatePreview, TemplateVersion
from templates_app.services.previews import preview_locales, version_preview_image, version_previews
from templates_app.tasks import version_previews_render
from comms.redis import redis_client
from tests.templates_app.rtl_fixtures import rtl_template_data

pytestmark = pytest.mark.django_db
SHOTS = "/tmp/shots-i20-preview"


@pytest.fixture
def version(tenant, editor):
    return services.template_create(tenant=tenant, actor=editor, user=editor, data=rtl_template_data()).versions.get()


def _image(shot: TemplatePreview) -> Image.Image:
    return Image.open(io.BytesIO(bytes(shot.png))).convert("L")


def test_three_modes_per_preview_locale_with_their_widths_and_a_darker_dark_mode(version):
    assert preview_locales(version) == ["en-US", "ar-EG"]  # the default and every right-to-left locale
    shots = version_previews(version=version)
    assert set(shots) == {"en-US", "ar-EG"}
    os.makedirs(SHOTS, exist_ok=True)
    for locale, modes in shots.items():
        assert set(modes) == {"desktop", "mobile", "dark"}
        for mode, shot in modes.items():
            full = TemplatePreview.objects.get(pk=shot.pk)
            image = _image(full)
            assert image.size == (previews.MODES[mode].width, full.height) and full.width == image.width
            assert full.direction == ("rtl" if locale == "ar-EG" else "ltr")
            image.save(f"{SHOTS}/preview-{locale}-{mode}.png")
        light = ImageStat.Stat(_image(TemplatePreview.objects.get(pk=modes["desktop"].pk))).mean[0]
        dark = ImageStat.Stat(_image(TemplatePreview.objects.get(pk=modes["dark"].pk))).mean[0]
        assert light > 200 and dark < 80  # the template's prefers-color-scheme: dark rule took effect


def test_images_are_reused_until_the_draft_changes(version):
    first = version_previews(version=version, locales=["en-US"])["en-US"]["desktop"]
    again = version_previews(version=version, locales=["en-US"])["en-US"]["desktop"]
    assert again.pk == first.pk and again.rendered_at == first.rendered_at  # not screenshot twice
    row = version.locales.get(locale="en-US")
    row.body_html = row.body_html.replace("Hello", "Welcome")
    row.save()
    changed = version_previews(version=version, locales=["en-US"])["en-US"]["desktop"]
    assert changed.pk == first.pk and changed.html_sha256 != first.html_sha256
    assert changed.rendered_at > first.rendered_at


def test_a_template_cannot_make_chromium_fetch_anything(tenant, editor):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    hits: list[bytes] = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.settimeout(1)
            try:
                hits.append(conn.recv(200))
            except OSError:
                hits.append(b"")
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    hostile = (f'<html><head><link rel="stylesheet" href="{base}/s.css"><link rel="preconnect" href="{base}">'
               f'<meta http-equiv="refresh" content="0;url={base}/r"><style>p {{ background: url({base}/bg.png) }}'
               f'@import url({base}/i.css);</style></head><body><p>Hi</p><img src="{base}/pixel.gif" alt="">'
               f'<iframe src="{base}/frame"></iframe><video poster="{base}/poster.png"></video>'
               f'<img src="http://preview-leak.example.com/x.gif" alt=""></body></html>')
    data = rtl_template_data(template_key="hostile")
    data["locales"] = [{"locale": "en-US", "subject": "Hi", "body_html": hostile}]
    version = services.template_create(tenant=tenant, actor=editor, user=editor, data=data).versions.get()
    try:
        shots = version_previews(version=version)
        assert set(shots["en-US"]) == {"desktop", "mobile", "dark"}  # rendered, with the remote parts blank
        assert hits == []
    finally:
        listener.close()


def test_unknown_mode_and_locale_are_typed_errors(version):
    with pytest.raises(previews.PreviewModeUnknown) as mode:
        version_preview_image(version=version, locale="en-US", mode="sepia")
    assert mode.value.code == "COMMS_PREVIEW_MODE" and mode.value.details["modes"] == ["desktop", "mobile", "dark"]
    with pytest.raises(previews.PreviewLocaleUnknown) as locale:
        version_preview_image(version=version, locale="fr-FR", mode="dark")
    assert locale.value.code == "COMMS_PREVIEW_LOCALE" and locale.value.details["locales"] == ["ar-EG", "en-US"]
    assert not TemplatePreview.objects.exists()


def test_missing_chromium_is_a_typed_unavailable_state(version, settings, tmp_path, rf, admin_user):
    settings.COMMS_PREVIEW_CHROMIUM = str(tmp_path / "no-chromium")
    with pytest.raises(previews.PreviewUnavailable) as missing:
        version_previews(version=version)
    assert missing.value.code == "COMMS_PREVIEW_UNAVAILABLE" and missing.value.details["reason"] == "chromium_missing"
    assert previews.availability()["available"] is False
    field = str(TemplateVersionAdmin(TemplateVersion, None).rendered_previews(version))
    assert 'class="comms-shots-unavailable"' in field and "no Chromium at" in field
    assert version_previews_render(version.pk) == 0  # the submit task logs and stores nothing, no crash
    broken = tmp_path / "chromium"  # there, executable, but not a browser: the launch fails
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IXUSR)
    settings.COMMS_PREVIEW_CHROMIUM = str(broken)
    with pytest.raises(previews.PreviewUnavailable) as failed:
        version_previews(version=version)
    assert failed.value.details["reason"] == "chromium_failed"
    assert not TemplatePreview.objects.exists()


def test_submit_queues_the_previews_and_the_task_stores_them(version, editor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.version_submit(version=version, actor=editor, user=editor)
    queued = redis_client().lrange("p3", 0, -1)
    assert len(queued) == 1 and b"templates_app.tasks.version_previews_render" in queued[0]
    assert version_previews_render(version.pk) == 6  # what the worker runs: 2 locales x 3 modes
    assert TemplatePreview.objects.filter(version=version).count() == 6


def test_api_serves_a_png_for_admin_keys_with_typed_errors(version, admin_api, api, settings, tmp_path):
    url = "/api/v1/templates/order_rtl/versions/1/previews/{}/{}"
    response = admin_api.get(url.format("ar-EG", "mobile"))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).width == 360 and response["X-Preview-Direction"] == "rtl"
    assert admin_api.get(url.format("ar-EG", "sepia")).json()["code"] == "COMMS_PREVIEW_MODE"
    unknown = admin_api.get(url.format("xx", "dark"))
    assert unknown.status_code == 404 and unknown.json()["code"] == "COMMS_PREVIEW_LOCALE"
    assert admin_api.get("/api/v1/templates/order_rtl/versions/9/previews/en-US/dark").json()["code"] == \
        "COMMS_NOT_FOUND"
    assert api.get(url.format("ar-EG", "dark")).status_code == 403  # send/read keys do not see drafts' images
    TemplatePreview.objects.all().delete()
    settings.COMMS_PREVIEW_CHROMIUM = str(tmp_path / "none")
    gone = admin_api.get(url.format("en-US", "dark"))
    assert gone.status_code == 503 and gone.json()["code"] == "COMMS_PREVIEW_UNAVAILABLE"
