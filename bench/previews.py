"""Template preview images: what one Chromium launch costs for a version's previews (no database).

    python bench/previews.py [runs]

Each run is what the admin page or the submit task does for a version with an en-US and an ar-EG
locale: one launch, 2 locales x 3 modes = 6 screenshots. Prints the median wall time per run and the
CPU time of this process plus its children (Playwright's driver and Chromium) per image.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(runs: int = 5) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DATABASE_URL", "postgres://x@127.0.0.1:1/x")  # never connected to
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    import django

    django.setup()
    from templates_app import bidi, previews, rendering
    from tests.templates_app.rtl_fixtures import AR_MJML, EN_MJML

    pages = {loc: bidi.html_direction(rendering.compile_mjml(bidi.mjml_direction(src, loc)), loc, source=src)
             for loc, src in (("en-US", EN_MJML), ("ar-EG", AR_MJML))}
    walls, cpus, images = [], [], 0
    for _ in range(runs):
        wall, cpu = time.perf_counter(), _cpu()
        shots = previews.screenshots(pages)
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu() - cpu)
        images = len(shots)
    print(f"preview images: {runs} runs of 1 launch x {images} screenshots")
    print(f"  wall per run   median {statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"  CPU per image  median {statistics.median(cpus) / images * 1000:.0f} ms (driver + Chromium included)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
