"""Deliverability: sending domains and their DKIM keys (domains), DKIM signing (dkim), DNS checks
(dnscheck) and the Gmail/Yahoo bulk-sender readiness summary (readiness)."""
