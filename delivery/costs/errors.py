"""The typed errors of cost tracking (declared here with the kernel's error_class, like conversations)."""

from comms.errors import error_class

PriceInvalid = error_class("COMMS_PRICE_INVALID", 422, "A price must be a number of zero or more.")
EnvelopeBelowSpent = error_class("COMMS_ENVELOPE_BELOW_SPENT", 422,
                                 "The budget is below what this month has already spent.")
PeriodInvalid = error_class("COMMS_PERIOD_INVALID", 400, "The period is reversed, malformed or too long.")
UnknownDimension = error_class("COMMS_UNKNOWN_DIMENSION", 400, "Unknown group_by dimension.")
SmsCategoryNotAllowed = error_class("COMMS_SMS_CATEGORY_NOT_ALLOWED", 422,
                                    "This tenant does not allow SMS for this category.")
BUDGET_EXHAUSTED = "COMMS_BUDGET_EXHAUSTED"
