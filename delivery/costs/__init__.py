"""Cost tracking and envelopes (issue 22 item 2).

* ``models``: PriceEntry (a provider's price per message / SMS segment by destination country / voice
  minute), CostEnvelope (a tenant's monthly budget per channel, and which categories may use SMS) and
  CostDaily (the roll-up maintained as outcomes are written).
* ``prices``: the cached price lookup the outcome path uses (no query per message).
* ``envelopes``: the send-time check hosted by delivery.services.quota_gate (80 % alert once, 100 %
  defers non-critical rows as ``COMMS_BUDGET_EXHAUSTED``).
* ``services``/``selectors``/``api``: editing prices and envelopes, reading the roll-up.
"""
