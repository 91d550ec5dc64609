"""Deliverability: what makes mail land in the inbox (issue 19). One module per concern: sending domains
and their DKIM keys (domains), DKIM signing (dkim), DNS checks (dnscheck, monitor), the Gmail/Yahoo
bulk-sender readiness summary (readiness), spam scoring (spam), synthetic probes (probes), pools and
warm-up ladders (pools, warmup), ESP suppression sync (suppression_sync) and the compliance self-test
(selftest). Console pages and beat tasks call them."""
