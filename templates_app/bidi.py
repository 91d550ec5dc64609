"""Writing direction per locale: ``dir``/``lang`` on email, direction marks on short text channels.

Email (HTML): every rendered email names its language and direction on the root (``<html lang dir>``,
WCAG 3.1.1 and the HTML ``dir`` attribute). For a right-to-left locale (ar, he, fa, ur, … and their
region variants such as ar-EG; Babel's CLDR ``character_order`` decides) the MJML is also mirrored
where the author kept MJML's defaults: ``<mj-attributes>`` are put *first* in ``<mj-head>`` so any
attribute the author sets still wins (MJML applies element attribute > mj-class > later
mj-attributes > earlier ones). Sections flow right to left (column order mirrored), columns carry
``direction: rtl`` inline (survives Gmail, which drops ``<html>``/``<body>`` attributes) and text and
tables default to ``align="right"``. Images, buttons and dividers keep their centred default.

Text channels (SMS, push, in-app title/body, email subject): a client shows a paragraph in the
direction of its first strong character (Unicode Bidirectional Algorithm, UAX #9 rules P2/P3). An
Arabic SMS that starts with a Latin brand ("Acme: …") would otherwise be laid out left to right. So
for an RTL locale, a RIGHT-TO-LEFT MARK (U+200F) is put before each paragraph whose first strong
character is left-to-right, and nowhere else. SMS: the mark is not in the GSM 03.38 alphabet, so it
is only added to text that is UCS-2 already (Arabic/Hebrew letters are); a GSM-7 text keeps its
160/153-septet segments rather than being pushed to 70/67 UCS-2 units by one invisible character.
Segments are counted after the mark is added, so the counts shown and enforced include it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from babel import Locale, UnknownLocaleError

from templates_app.sms_encoding import sms_segments

RLM = "\u200f"
# Used when Babel does not know the tag (it knows all of these; kept for odd tags like "ar-XX-foo").
_RTL_LANGUAGES = {"ar", "he", "iw", "fa", "ur", "yi", "ps", "sd", "ug", "dv", "ckb", "syr"}
_LANG_TAG = re.compile(r"[^A-Za-z0-9-]")


@lru_cache(maxsize=512)
def is_rtl(locale: str) -> bool:
    """True for locales written right to left (CLDR character order), region variants included."""
    tag = (locale or "").replace("-", "_")
    try:
        return Locale.parse(tag).character_order == "right-to-left"
    except (UnknownLocaleError, ValueError, TypeError):
        return tag.split("_")[0].lower() in _RTL_LANGUAGES


def direction(locale: str) -> str:
    return "rtl" if is_rtl(locale) else "ltr"


def lang_tag(locale: str) -> str:
    """BCP 47 spelling (hyphens) with anything that is not a tag character dropped (it lands in HTML)."""
    return _LANG_TAG.sub("", (locale or "").replace("_", "-")) or "und"


# --- email --------------------------------------------------------------------------------------------

_MJML_ROOT = re.compile(r"<mjml\b([^>]*)>", re.I)
_MJ_HEAD = re.compile(r"<mj-head\b[^>]*>", re.I)
_RTL_ATTRIBUTES = ('<mj-attributes><mj-section direction="rtl" /><mj-column direction="rtl" />'
                   '<mj-text align="right" /><mj-table align="right" /></mj-attributes>')


_ROOT_DIR = re.compile(r"<(?:mjml|html)\b[^>]*?\sdir\s*=\s*[\"']?(rtl|ltr)", re.I)


def email_direction(source: str, locale: str) -> str:
    """The direction an email is laid out in: the author's ``<mjml dir>``/``<html dir>``, else the locale's."""
    match = _ROOT_DIR.search(source[:2000])
    return match.group(1).lower() if match else direction(locale)


def mjml_direction(source: str, locale: str) -> str:
    """The author's MJML with ``lang`` on the root and, for RTL locales, mirrored defaults."""
    match = _MJML_ROOT.search(source)
    if match is None or not source.lstrip().lower().startswith("<mjml"):
        return source  # plain HTML: only the root attributes (html_direction) apply
    attrs = match.group(1)
    if not re.search(r"\slang\s*=", attrs):
        attrs += f' lang="{lang_tag(locale)}"'
    source = source[:match.start()] + f"<mjml{attrs}>" + source[match.end():]
    if email_direction(source, locale) != "rtl":
        return source
    head = _MJ_HEAD.search(source)
    if head is not None:
        return source[:head.end()] + _RTL_ATTRIBUTES + source[head.end():]
    root = _MJML_ROOT.search(source)
    return source[:root.end()] + f"<mj-head>{_RTL_ATTRIBUTES}</mj-head>" + source[root.end():]


_HTML_ROOT = re.compile(r"<html\b([^>]*)>", re.I)
_BODY = re.compile(r"<body\b([^>]*)>", re.I)
_COLUMN_ALIGN = re.compile(r"(text-align:\s*)left(;\s*direction:\s*rtl)", re.I)


def _with_attrs(tag: str, attrs: str, wanted: dict[str, str]) -> str:
    for name, value in wanted.items():
        if not re.search(rf"\s{name}\s*=", attrs, re.I):  # the author's own lang/dir wins
            attrs += f' {name}="{value}"'
    return f"<{tag}{attrs}>"


def html_direction(html: str, locale: str, *, source: str = "") -> str:
    """``lang`` and ``dir`` on ``<html>`` (and ``dir`` on ``<body>`` for RTL) of compiled email HTML.

    ``source`` is the author's template: a ``dir`` on its root (which mrml drops) decides over the locale.
    """
    match = _HTML_ROOT.search(html)
    if match is None:
        return html
    chosen = email_direction(source, locale) if source else direction(locale)
    html = html[:match.start()] + _with_attrs("html", match.group(1), {"lang": lang_tag(locale),
                                                                        "dir": chosen}) + html[match.end():]
    if chosen == "rtl":
        # MJML hard-codes ``text-align:left`` next to a column's direction (inline-block columns line
        # up by it): mirrored with the direction we set, so column content starts on the right.
        html = _COLUMN_ALIGN.sub(r"\1right\2", html)
        body = _BODY.search(html)
        if body is not None:
            html = html[:body.start()] + _with_attrs("body", body.group(1), {"dir": "rtl"}) + html[body.end():]
    return html


# --- text channels --------------------------------------------------------------------------------------

def _first_strong(paragraph: str) -> str:
    for char in paragraph:
        kind = unicodedata.bidirectional(char)
        if kind in ("L", "R", "AL"):
            return kind
    return ""


def mark_text(text: str, locale: str) -> str:
    """An RLM before each paragraph that would otherwise be laid out left to right (UAX #9 P2/P3)."""
    if not text or not is_rtl(locale):
        return text
    return "\n".join(RLM + line if _first_strong(line) == "L" else line for line in text.split("\n"))


def mark_sms(text: str, locale: str) -> str:
    """As mark_text, but only for a text that is UCS-2 already: the mark would turn GSM-7 into UCS-2."""
    if not text or not is_rtl(locale) or sms_segments(text).encoding != "UCS-2":
        return text  # LTR locales (nearly every SMS) pay one cached look-up, not a second encoding scan
    return mark_text(text, locale)
