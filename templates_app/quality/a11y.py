"""Accessibility rules that read the structure of the rendered email (WCAG 2.x, as applied to email
by the Email Markup Consortium's accessibility reports)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from templates_app.quality.registry import Email, Hit, rule

SUBJECT_MAX = 78  # RFC 5322 §2.1.1's line length, and about what desktop clients show before cutting
URL = re.compile(r"(?:https?://|www\.|mailto:)\S+", re.I)
# Link text that says nothing out of context: a screen reader's list of links reads only these words
# (WCAG 2.4.4 "Link Purpose (In Context)").
VAGUE_LINKS = {"click here", "here", "click", "read more", "more", "learn more", "link", "this link", "this",
               "go", "continue", "details", "tap here"}
RTL_LANGUAGES = {"ar", "he", "iw", "fa", "ur", "ps", "sd", "ug", "yi", "dv", "ku", "ckb"}


@rule("A11Y_IMG_ALT", "error", "Image without an alt attribute")
def check_img_alt(email: Email) -> Iterator[Hit]:
    # alt="" is the documented way to mark a decorative image (WCAG technique H67); no alt at all
    # makes screen readers read the file name.
    for img in email.doc.elements("img"):
        if "alt" not in img.attrs and not img.hidden:
            yield Hit(img.locator(), "Image has no alt attribute: describe it, or use alt=\"\" if it is decorative.")


@rule("A11Y_TABLE_ROLE", "warning", "Layout table without role=\"presentation\"")
def check_table_role(email: Email) -> Iterator[Hit]:
    # A table without headers or a caption is layout; without role=presentation screen readers
    # announce "table, n rows" for every one of them (WAI-ARIA 1.2, presentation role).
    for table in email.doc.elements("table"):
        if table.attrs.get("role", "").lower() in ("presentation", "none"):
            continue
        if any(n.tag in ("th", "caption", "thead") for n in table.iter()):
            continue  # a data table: headers give it meaning
        yield Hit(table.locator(), "Layout table without role=\"presentation\": screen readers announce its rows "
                                   "and columns. Add the role, or headers (<th>) if it holds data.")


@rule("A11Y_HTML_LANG_DIR", "warning", "Root <html> without lang (or dir for a right-to-left locale)")
def check_lang_dir(email: Email) -> Iterator[Hit]:
    html = email.doc.html
    if html is None:
        yield Hit("html", "The document has no <html> root: screen readers cannot tell its language.")
        return
    # WCAG 3.1.1 "Language of Page": the reader picks its voice from lang.
    if not html.attrs.get("lang", "").strip():
        yield Hit("html", f"<html> has no lang attribute: a screen reader guesses the language (expected "
                          f'lang="{email.locale}").')
    language = email.locale.replace("_", "-").split("-")[0].lower()
    if language in RTL_LANGUAGES and html.attrs.get("dir", "").lower() != "rtl":
        yield Hit("html", f'{email.locale} is written right to left but <html> lacks dir="rtl": punctuation and '
                          "alignment come out mirrored wrongly.")


@rule("A11Y_LINK_TEXT", "warning", "Link text that says nothing out of context")
def check_link_text(email: Email) -> Iterator[Hit]:
    for link in email.doc.elements("a"):
        if link.hidden or "href" not in link.attrs:
            continue
        text = (link.attrs.get("aria-label") or link.text()).strip()
        words = re.sub(r"[^\w\s]", "", text.lower()).strip()
        if not text:
            yield Hit(link.locator(), "Link has no text (an image inside needs an alt): a screen reader reads "
                                      "out the URL.")
        elif words in VAGUE_LINKS:
            yield Hit(link.locator(), f'Link text "{text}" says nothing out of context: name where it goes '
                                      '("Track your order").')
        elif URL.fullmatch(text):
            yield Hit(link.locator(), f'Link text is a bare URL ("{text[:60]}"): a screen reader spells it out; '
                                      "name where it goes instead.")


@rule("A11Y_TEXT_PART", "warning", "Plain-text part empty or only URLs")
def check_text_part(email: Email) -> Iterator[Hit]:
    # Text-only clients, screen readers in text mode and spam filters read this part (RFC 2046 §5.1.4).
    text = email.text.strip()
    if not re.sub(r"[\s\W_]+", "", text):  # nothing, or only the table rules the HTML-to-text step leaves
        yield Hit("text/plain", "The plain-text part is empty: text-only readers get nothing.")
    elif not re.sub(r"[\s\W_]+", "", URL.sub("", text)):
        yield Hit("text/plain", "The plain-text part holds only URLs: write the message, not just its links.")


@rule("A11Y_SUBJECT_LENGTH", "warning", f"Subject longer than mail clients show ({SUBJECT_MAX} characters)")
def check_subject(email: Email) -> Iterator[Hit]:
    if len(email.subject) > SUBJECT_MAX:
        yield Hit("subject", f"The subject has {len(email.subject)} characters with the sample variables; clients "
                             f"cut it near {SUBJECT_MAX} (phones near 40): put what matters first.")


@rule("CSS_UNPARSEABLE", "warning", "CSS the lint could not read")
def check_css(email: Email) -> Iterator[Hit]:
    # Contrast and dark-mode checks skip what they cannot read; say so rather than pass in silence.
    for problem in email.doc.css_problems:
        yield Hit(problem.where.locator() if problem.where.tag != "#root" else "style",
                  f"CSS could not be read ({problem.reason}: {problem.text!r}); contrast was not checked there.")
