"""Strip the quoted history and signature from an email reply, keeping only what the person wrote.

Mail clients quote differently: '>'-prefixed lines (RFC 3676 section 4.5), an attribution line
("On Tue, 3 Dec 2026 at 10:02, Ada <ada@example.com> wrote:" — Gmail and Apple Mail; Gmail wraps it
over two lines when long), Outlook's "-----Original Message-----" or its header block
("From: … Sent: … To: … Subject: …") after a rule, and the RFC 3676 signature separator "-- ".
Everything from the first such marker on is history; text before it is the reply.
"""

from __future__ import annotations

import html as html_lib
import re

_ATTRIBUTION = re.compile(
    r"^\s*(on\s.{0,200}?\bwrote\s*:|le\s.{0,200}?\ba écrit\s*:|am\s.{0,200}?\bschrieb\s.{0,80}:|"
    r"el\s.{0,200}?\bescribió\s*:)\s*$", re.IGNORECASE | re.DOTALL)
_SEPARATORS = (
    re.compile(r"^\s*-{2,}\s*original message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*forwarded message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule before the quoted header block
    re.compile(r"^\s*begin forwarded message\s*:\s*$", re.IGNORECASE),  # Apple Mail forwards
)
_OUTLOOK_HEADER = re.compile(r"^\s*\*?(from|de|von)\s*:\*?\s", re.IGNORECASE)
_OUTLOOK_FOLLOW = re.compile(r"^\s*\*?(sent|date|envoyé|gesendet|to|subject|cc)\s*:", re.IGNORECASE)
_MOBILE_SIGNATURES = re.compile(r"^\s*(sent from my \w+|get outlook for \w+|sent from mail for windows)",
                                re.IGNORECASE)


def strip_quoted(text: str) -> str:
    """The new part of a plain-text reply (quoted history, signature and mobile footers removed)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for i, line in enumerate(lines):
        if line.startswith(">"):
            # A '>' line is history; so is the attribution just above it if it was not caught below.
            cut = i
            break
        if line == "-- " or line.rstrip() == "--":
            cut = i
            break
        if any(p.match(line) for p in _SEPARATORS) or _MOBILE_SIGNATURES.match(line):
            cut = i
            break
        if _ATTRIBUTION.match(line):
            cut = i
            break
        # Gmail wraps a long attribution: "On Tue, … Ada Lovelace <\nada@example.com> wrote:"
        if i + 1 < len(lines) and _ATTRIBUTION.match(line + " " + lines[i + 1]) and line.lower().lstrip().startswith(
                ("on ", "le ", "am ", "el ")):
            cut = i
            break
        if _OUTLOOK_HEADER.match(line) and any(_OUTLOOK_FOLLOW.match(n) for n in lines[i + 1:i + 4]):
            cut = i
            break
    kept = lines[:cut]
    while kept and not kept[-1].strip():
        kept.pop()
    while kept and not kept[0].strip():
        kept.pop(0)
    return "\n".join(kept).strip()


def html_to_text(html: str) -> str:
    """A plain-text rendering of an HTML-only reply (quoted blocks dropped first)."""
    html = re.sub(r"(?is)<(blockquote|style|script|head)\b.*?</\1\s*>", "", html)
    html = re.sub(r"(?is)<div[^>]*class=\"?gmail_quote.*", "", html)
    html = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", html)
    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))
