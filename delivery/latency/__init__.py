"""Outcome statistics kept where outcomes are written: counts per error code and latency histograms.

``models.OutcomeHour`` (one row per UTC hour, tenant, channel, provider, priority, outcome and code),
``buckets`` (the fixed log-spaced histogram and percentiles read from it), ``recording`` (the one
upsert per outcome flush, and the pruning of old hours).
"""
