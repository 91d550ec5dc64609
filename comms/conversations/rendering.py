"""Message bodies: a safe Markdown subset rendered to HTML and sanitised server-side.

Markdown is rendered without its raw-HTML and image rules (so `<b>` and `![x](u)` stay text), then
nh3 (ammonia) keeps only the tags below, links only to http/https/mailto, with rel="nofollow noopener"
(a conversation's links come from other people: no SEO credit, no window.opener access).
"""

from __future__ import annotations

import re

import markdown
import nh3

from comms.conversations import errors

MAX_BODY_CHARS = 8000
# Markdown nests blockquotes and lists recursively; past this depth its parser can exhaust the stack.
MAX_NESTING = 20
TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr", "del"}
ATTRIBUTES = {"a": {"href", "title"}}
SCHEMES = {"http", "https", "mailto"}
_QUOTE_RUN = re.compile(r"^[ \t]*((?:>[ \t]*)+)", re.M)
_INDENT = re.compile(r"^([ \t]*)[-*+]|^([ \t]*)\d+\.", re.M)


def _nesting(body: str) -> int:
    quotes = max((m.group(1).count(">") for m in _QUOTE_RUN.finditer(body)), default=0)
    indents = max((len((m.group(1) or m.group(2) or "").expandtabs(4)) // 2 for m in _INDENT.finditer(body)),
                  default=0)
    return max(quotes, indents)


def _markdown() -> markdown.Markdown:
    md = markdown.Markdown(extensions=[], output_format="html")
    md.preprocessors.deregister("html_block")
    for name in ("html", "image_link", "image_reference", "short_image_ref"):
        if name in md.inlinePatterns:
            md.inlinePatterns.deregister(name)
    return md


def body_check(body: str) -> str:
    """The body as stored (stripped); typed errors for what cannot be rendered safely."""
    if not isinstance(body, str):
        raise errors.BodyTooLarge("body must be a string.")
    body = body.replace("\x00", "").strip()
    if len(body) > MAX_BODY_CHARS:
        raise errors.BodyTooLarge(f"The body has {len(body)} characters; the limit is {MAX_BODY_CHARS}.",
                                  details={"limit_chars": MAX_BODY_CHARS})
    if _nesting(body) > MAX_NESTING:
        raise errors.BodyTooLarge(f"The body nests quotes or lists deeper than {MAX_NESTING} levels.",
                                  details={"limit_depth": MAX_NESTING})
    return body


def render(body: str) -> str:
    """Sanitised HTML for a checked body."""
    try:
        html = _markdown().convert(body)
    except RecursionError:
        raise errors.BodyTooLarge("The body nests too deeply to render.") from None
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, url_schemes=SCHEMES, link_rel="nofollow noopener",
                     strip_comments=True)
