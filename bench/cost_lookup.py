"""CPU per message of pricing a sent outcome (delivery.costs.prices.price_of) from the cached table.

Run (from the repository root): PYTHONPATH=. DATABASE_URL=postgres://x@127.0.0.1:1/x REDIS_URL=redis://127.0.0.1:1/0 .venv/bin/python bench/cost_lookup.py
(no database needed: the snapshot is filled in memory, as after the first read in a worker).
"""

import os
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()
from decimal import Decimal  # noqa: E402

from delivery.costs import prices  # noqa: E402
from delivery.costs.models import PriceEntry  # noqa: E402

N = 20_000
entry = PriceEntry(provider="twilio", channel="sms", country="US", unit="segment", price=Decimal("0.0079"))
prices._snapshot = (time.monotonic() + 3600, {("", "twilio", "sms", "US"): entry})


def run(**kw) -> float:
    runs = []
    for _ in range(5):
        t = time.process_time()
        for _ in range(N):
            prices.price_of(tenant_id="t", **kw)
        runs.append((time.process_time() - t) / N * 1e6)
    return statistics.median(runs)


print(f"sms, priced (country + segments): {run(provider='twilio', channel='sms', address='+14155550100', body='Your code is 123456'):.1f} µs CPU/msg (median of 5)")
print(f"email, no price:                  {run(provider='relay', channel='email', address='a@b.c', body='x'):.1f} µs CPU/msg (median of 5)")
