"""Email screenshots in headless Chromium: desktop, mobile (360 px) and dark mode, as PNG bytes.

Pure: HTML in, images out, no database (Django refuses ORM calls while Playwright's event loop runs in
the thread). The HTML is the recipient's email rendered from sample data, i.e. author-controlled, so
Chromium is locked down: JavaScript off, the context offline, every request aborted (only ``data:``
URIs, which never reach the network layer, still load) and DNS resolution disabled, so a template can
never make the server fetch anything (no SSRF, no tracking pixel fired by a preview). What the
approver sees is therefore the email as a client that blocks remote images shows it.

Chromium is optional at run time: under ``make run`` on a machine without it, or without the Playwright
package, ``PreviewUnavailable`` says why and the admin shows "previews unavailable" instead of failing.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass

from django.conf import settings

from comms.errors import error_class

PreviewUnavailable = error_class("COMMS_PREVIEW_UNAVAILABLE", 503,
                                 "Preview images are unavailable: Chromium cannot be started on this server.")
PreviewModeUnknown = error_class("COMMS_PREVIEW_MODE", 400, "Unknown preview mode; use desktop, mobile or dark.")
PreviewLocaleUnknown = error_class("COMMS_PREVIEW_LOCALE", 404, "The version has no content in that locale.")


@dataclass(frozen=True)
class Mode:
    name: str
    label: str
    width: int
    color_scheme: str


# Desktop: a mail client's reading pane around MJML's 600 px body. Mobile: the narrowest common phone
# (MJML's responsive breakpoint is 480 px, so columns stack). Dark: the desktop view with
# prefers-color-scheme: dark emulated, which is what clients that honour the media query show.
MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("desktop", "Desktop (800 px)", 800, "light"),
    Mode("mobile", "Mobile (360 px)", 360, "light"),
    Mode("dark", "Dark mode (800 px)", 800, "dark"),
)}
MAX_HEIGHT = 4000  # a runaway template (10,000 rows) is cut, not rendered into a 100 MB PNG

_LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND"]


def mode_get(name: str) -> Mode:
    try:
        return MODES[name]
    except KeyError:
        raise PreviewModeUnknown(details={"mode": str(name)[:40], "modes": list(MODES)}) from None


def chromium_path() -> str:
    """The Chromium binary to drive, or PreviewUnavailable naming what is missing."""
    configured = settings.COMMS_PREVIEW_CHROMIUM or shutil.which("chromium") or shutil.which("chromium-browser") \
        or "/usr/bin/chromium"
    if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
        raise PreviewUnavailable(f"Preview images are unavailable: no Chromium at {configured} "
                                 "(install Debian's chromium or set COMMS_PREVIEW_CHROMIUM).",
                                 details={"reason": "chromium_missing", "path": configured})
    return configured


def availability() -> dict:
    """``{"available": bool, "reason": str}`` for pages that say why there are no images."""
    try:
        chromium_path()
        import playwright.sync_api  # noqa: F401
    except PreviewUnavailable as exc:
        return {"available": False, "reason": exc.message}
    except ImportError:
        return {"available": False, "reason": "Preview images are unavailable: the playwright package is missing."}
    return {"available": True, "reason": ""}


@dataclass(frozen=True)
class Shot:
    png: bytes
    width: int
    height: int


def _crop(png: bytes) -> Shot:
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    if image.height > MAX_HEIGHT:
        image = image.crop((0, 0, image.width, MAX_HEIGHT))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
        png = buffer.getvalue()
    return Shot(png=png, width=image.width, height=image.height)


def _block(route) -> None:
    route.abort("blockedbyclient")


def screenshots(pages: dict[str, str], modes: list[str] | None = None) -> dict[tuple[str, str], Shot]:
    """Screenshot each HTML (keyed by the caller, e.g. locale) in each mode, in one Chromium launch.

    Returns ``{(key, mode): Shot}``. Raises PreviewUnavailable when Chromium or Playwright is missing or
    Chromium fails to start or to render within COMMS_PREVIEW_TIMEOUT seconds.
    """
    wanted = [mode_get(m) for m in (modes or list(MODES))]
    executable = chromium_path()
    try:
        from playwright.sync_api import Error as PlaywrightError, sync_playwright
    except ImportError:
        raise PreviewUnavailable("Preview images are unavailable: the playwright package is missing.",
                                 details={"reason": "playwright_missing"}) from None
    timeout_ms = settings.COMMS_PREVIEW_TIMEOUT * 1000
    raw: dict[tuple[str, str], bytes] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, headless=True, args=_LAUNCH_ARGS,
                                        timeout=timeout_ms)
            try:
                for mode in wanted:
                    # A short viewport: the full-page screenshot grows to the email's own height.
                    context = browser.new_context(
                        viewport={"width": mode.width, "height": 100}, device_scale_factor=1,
                        color_scheme=mode.color_scheme, java_script_enabled=False, offline=True,
                        service_workers="block", accept_downloads=False)
                    try:
                        context.route("**/*", _block)
                        page = context.new_page()
                        page.set_default_timeout(timeout_ms)
                        for key, html in pages.items():
                            page.set_content(html, wait_until="load")
                            raw[(key, mode.name)] = page.screenshot(full_page=True, type="png", animations="disabled")
                    finally:
                        context.close()
            finally:
                browser.close()
    except PlaywrightError as exc:
        first = (str(exc).strip().splitlines() or ["Chromium failed"])[0][:300]
        raise PreviewUnavailable(f"Preview images are unavailable: {first}",
                                 details={"reason": "chromium_failed"}) from None
    return {key: _crop(png) for key, png in raw.items()}  # Pillow after the event loop is gone
