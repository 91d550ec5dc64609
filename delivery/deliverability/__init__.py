"""Deliverability: sending domains, DKIM, DNS checks, IP pools / streams, warm-up ladders, probes."""
