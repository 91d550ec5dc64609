"""Template rendering throughput: the order-confirmation MJML template, cold vs cached, one core.

    python bench/render.py

Cold = every render compiles MJML, inlines CSS, generates the text part and compiles Handlebars;
cached = what a worker does for the 2nd..10,000th recipient of a batch. Prints figures only.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from comms.devserver.embedded import start_for_tests  # noqa: E402


def main() -> None:
    pg, redis, root = start_for_tests()
    os.environ.update(DATABASE_URL=pg.url, REDIS_URL=redis.url, DJANGO_SETTINGS_MODULE="config.settings",
                      COMMS_VAR_DIR=str(root / "var"), LOG_LEVEL="WARNING", COMMS_ASSET_CHECK="false")
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from comms.services import tenant_get_default
        from templates_app import rendering, services
        from templates_app.services.render import RenderContext, pick_locale, render_channel
        from tests.templates_app.fixtures import order_template_data, variables

        User = get_user_model()
        editor = User.objects.create_user("editor")
        approver = User.objects.create_superuser("approver", "a@example.com", "x")
        template = services.template_create(tenant=tenant_get_default(), actor=editor, user=editor,
                                            data=order_template_data())
        version = template.versions.get()
        services.version_submit(version=version, actor=editor, user=editor)
        services.version_approve(version=version, user=approver)
        version.refresh_from_db()
        row = pick_locale(version, "en-US")
        data = variables(n_items=10)
        leaves = 1 + 6 + 1 + 10 * 3
        print(f"template: MJML order confirmation, {leaves} variable values incl. a 10-item loop; one process")

        def run(n: int, cold: bool) -> float:
            started = time.perf_counter()
            for _ in range(n):
                if cold:
                    rendering.compiled.clear()
                    rendering.by_source.clear()
                out = render_channel(RenderContext(version, row, None, data), "email")
            elapsed = time.perf_counter() - started
            assert "Item 9" in out.body_html and out.body
            return n / elapsed

        run(20, cold=False)
        cold = run(100, cold=True)
        cached = run(3000, cold=False)
        sms_started = time.perf_counter()
        for _ in range(3000):
            render_channel(RenderContext(version, row, None, data), "sms")
        sms = 3000 / (time.perf_counter() - sms_started)
        print(f"email cold:   {cold:,.0f} renders/s")
        print(f"email cached: {cached:,.0f} renders/s  ({cached / cold:.0f}x)")
        print(f"sms cached:   {sms:,.0f} renders/s")
    finally:
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    main()
