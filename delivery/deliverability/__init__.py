"""Deliverability: what makes mail land in the inbox (issue 19). One module per concern; the
console pages and beat tasks call these modules' services."""
