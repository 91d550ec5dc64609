"""Strings stored in the database or in code enums that the pages translate at render time
(``{% translate value %}``): listed here so makemessages extracts them."""

from django.utils.translation import gettext_noop

BUILT_IN = [
    # categories (migration 0002)
    gettext_noop("Security"), gettext_noop("Legal notices"), gettext_noop("Receipts"), gettext_noop("Bookings"), gettext_noop("Messages"), gettext_noop("Reviews"),
    gettext_noop("Payments and payouts"), gettext_noop("Promotions and news"), gettext_noop("Account activity"), gettext_noop("Service updates"),
    gettext_noop("System"), gettext_noop("Marketing"),
    # channels
    gettext_noop("Email"), gettext_noop("SMS"), gettext_noop("Push"), gettext_noop("In-app"),
    # frequencies
    gettext_noop("Real time"), gettext_noop("Daily digest"), gettext_noop("Weekly digest"), gettext_noop("Never"),
]
