"""Outcome statistics kept where outcomes are written: counts per error code and latency histograms.

``models.OutcomeDay`` (one row per UTC day, tenant, channel, provider, priority, outcome and code),
``buckets`` (the fixed log-spaced histogram and percentiles read from it), ``recording`` (the one
upsert per outcome flush, and the pruning of old days).
"""
