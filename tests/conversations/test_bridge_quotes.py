"""Quoted history and signatures stripped from email replies, as Gmail, Outlook and Apple Mail write them."""

from __future__ import annotations

import pytest

from comms.conversations.quotes import html_to_text, strip_quoted

GMAIL = """Thanks, Tuesday works for me.

On Sat, Dec 5, 2026 at 10:02 AM Ada <conv+Tk3n@reply.comms.localhost> wrote:

> Your parcel left the warehouse.
> Can we deliver on Tuesday?
"""

GMAIL_WRAPPED = """Great, thank you!

On Sat, Dec 5, 2026 at 10:02 AM Ada Lovelace via comms support <
conv+Tk3n@reply.comms.localhost> wrote:

> Your parcel left the warehouse.
"""

OUTLOOK_WEB = """Please call me instead.

Get Outlook for iOS<https://aka.ms/o0ukef>
________________________________
From: Ada <conv+Tk3n@reply.comms.localhost>
Sent: Saturday, December 5, 2026 10:02 AM
To: Cy Young <cy@example.net>
Subject: Re: Order 1042

Your parcel left the warehouse.
"""

OUTLOOK_DESKTOP = """Fine by me.

Regards

-----Original Message-----
From: Ada [mailto:conv+Tk3n@reply.comms.localhost]
Sent: 05 December 2026 10:02
To: Cy Young
Subject: Order 1042

Your parcel left the warehouse.
"""

OUTLOOK_HEADER_ONLY = """Noted.

From: Ada <conv+Tk3n@reply.comms.localhost>
Date: Saturday, 5 December 2026 at 10:02
To: Cy Young <cy@example.net>
Subject: Re: Order 1042

Your parcel left the warehouse.
"""

APPLE_MAIL = """Sounds good!

Sent from my iPhone

> On 5 Dec 2026, at 10:02, Ada <conv+Tk3n@reply.comms.localhost> wrote:
>
> Your parcel left the warehouse.
"""

APPLE_MAIL_DESKTOP = """See you then.

> On 5 Dec 2026, at 10:02, Ada <conv+Tk3n@reply.comms.localhost> wrote:
> 
> Your parcel left the warehouse.
"""

SIGNATURE = """See you then.
-- 
Cy Young
ACME Corp | +1 415 555 0111
"""

INLINE_GREATER_THAN = """The total was 5 > 3 items, is that right?

On Sat, Dec 5, 2026 at 10:02 AM Ada <ada@example.com> wrote:
> Your parcel left.
"""


@pytest.mark.parametrize("body, expected", [
    (GMAIL, "Thanks, Tuesday works for me."),
    (GMAIL_WRAPPED, "Great, thank you!"),
    (OUTLOOK_WEB, "Please call me instead."),
    (OUTLOOK_DESKTOP, "Fine by me.\n\nRegards"),
    (OUTLOOK_HEADER_ONLY, "Noted."),
    (APPLE_MAIL, "Sounds good!"),
    (APPLE_MAIL_DESKTOP, "See you then."),
    (SIGNATURE, "See you then."),
    (INLINE_GREATER_THAN, "The total was 5 > 3 items, is that right?"),
    ("Just a reply with no history.\nTwo lines.", "Just a reply with no history.\nTwo lines."),
    (GMAIL.replace("\n", "\r\n"), "Thanks, Tuesday works for me."),
], ids=["gmail", "gmail-wrapped", "outlook-web", "outlook-desktop", "outlook-header", "apple-mail-iphone",
        "apple-mail-desktop", "signature", "greater-than-inline", "no-history", "crlf"])
def test_reply_keeps_only_what_the_person_wrote(body, expected):
    assert strip_quoted(body) == expected


def test_html_only_reply_drops_the_gmail_quote():
    html = ('<div dir="ltr">Works for me &amp; thanks<br></div><br><div class="gmail_quote">'
            '<div class="gmail_attr">On Sat, Dec 5 Ada wrote:<br></div><blockquote>Your parcel</blockquote></div>')
    assert strip_quoted(html_to_text(html)) == "Works for me & thanks"
