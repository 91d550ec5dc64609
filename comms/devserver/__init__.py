"""What `make run` runs besides the product itself, owned by the product (the test suite imports from here):
the supervisor (``up``, ``manage.py comms_up``), embedded PostgreSQL/Redis (``embedded``), the SMTP sink
(``smtp_sink`` and its ``manage.py smtp_sink`` command) and the loopback provider stand-ins (``standins``).
An app of its own only so Django finds the sink's management command."""
