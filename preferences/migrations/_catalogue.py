"""The built-in category catalogue: migration 0002 writes these rows, and preferences.catalogue uses
the same list as the base under the database rows (one list, so the two cannot drift)."""

ALL = {"email": True, "sms": True, "push": True, "in_app": True, "webhook": True}
# Seed 001: email all but promotions; push booking/messages/reviews; SMS only security; in-app always.
# The kernel's coarse categories (seed 000) keep working for callers that do not use the catalogue.
# Transactional/operational mail answers something the person just did (a reset link, an order):
# it is opt-out-able but not held for quiet hours, or a 2 a.m. password reset would wait until 8.
CATALOGUE = [
    # key, name, critical, marketing, double opt-in, defaults, respects quiet hours, quiet override
    ("security", "Security", True, False, False, ALL, False, None),
    ("legal", "Legal notices", True, False, False, {**ALL, "sms": False, "push": False}, False, None),
    ("receipts", "Receipts", True, False, False, {**ALL, "sms": False, "push": False}, False, None),
    ("booking", "Bookings", False, False, False, {**ALL, "sms": False}, True, ("23:00", "07:00")),
    ("messages", "Messages", False, False, False, {**ALL, "sms": False}, True, None),
    ("reviews", "Reviews", False, False, False, {**ALL, "sms": False}, True, None),
    ("finance", "Payments and payouts", False, False, False, {**ALL, "sms": False, "push": False}, True, None),
    ("promotions", "Promotions and news", False, True, True,
     {"email": False, "sms": False, "push": False, "in_app": True, "webhook": True}, True, None),
    ("transactional", "Account activity", False, False, False, ALL, False, None),
    ("operational", "Service updates", False, False, False, ALL, False, None),
    ("system", "System", True, False, False, ALL, False, None),
    ("marketing", "Marketing", False, True, False,
     {"email": True, "sms": False, "push": False, "in_app": True, "webhook": True}, True, None),
]
