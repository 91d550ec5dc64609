"""SMS compression: a suggestion that fits the text into one (or two) segments, never applied silently.

One non-GSM character turns the whole message into UCS-2, cutting a segment from 160 to 70 characters
(GSM 03.38 / 3GPP TS 23.038; 153 and 67 per part once concatenated, the UDH takes the rest). So the
cheapest fixes come first: typographic characters with GSM equivalents (smart quotes, dashes, ellipsis,
non-breaking spaces), then emoji and other symbols, then whitespace, and only then wording (abbreviations,
filler phrases), one rule at a time, stopping as soon as the text fits. Handlebars placeholders
(``{{…}}``/``{{{…}}}``) are never touched: only the literal text between them is rewritten. The words
STOP, HELP, START and the opt-out sentence are never matched by a rule (carriers require them verbatim).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from templates_app.sms_encoding import GSM7_BASIC, GSM7_EXTENDED, sms_segments

_PLACEHOLDER = re.compile(r"\{\{\{?.*?\}?\}\}", re.S)

# Typographic characters a word processor or phone keyboard inserts, and their GSM-7 equivalents.
CHARACTER_MAP: dict[str, str] = {
    **dict.fromkeys("‘’‚‛′`´", "'"), **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"), "…": "...", "•": "-", "·": "-", "×": "x", "÷": "/",
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t",
                    " "),
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad\ufe0f\ufe0e", ""),
    "©": "(c)", "®": "(R)", "™": "TM", "°": " deg", "½": "1/2", "¼": "1/4", "¾": "3/4",
    "→": "->", "←": "<-", "✓": "OK", "✔": "OK", "❤": "<3", "♥": "<3", "₹": "Rs", "₽": "RUB", "¢": "c",
}

# (pattern, replacement, description): wording rules, tried in this order only while the text is too long.
WORDING_RULES: list[tuple[str, str, str]] = [
    (r"\bplease note that\s+", "", "removed 'Please note that'"),
    (r"\bkindly\s+", "", "removed 'kindly'"),
    (r"\bin order to\b", "to", "'in order to' -> 'to'"),
    (r"\bat this (?:point in )?time\b", "now", "'at this time' -> 'now'"),
    (r"\bas soon as possible\b", "ASAP", "'as soon as possible' -> 'ASAP'"),
    (r"\bthank you\b", "thanks", "'thank you' -> 'thanks'"),
    (r"\bdo not\b", "don't", "'do not' -> 'don't'"),
    (r"\bcannot\b", "can't", "'cannot' -> 'can't'"),
    (r"\bwill not\b", "won't", "'will not' -> 'won't'"),
    (r"\byou are\b", "you're", "'you are' -> 'you're'"),
    (r"\bwe are\b", "we're", "'we are' -> 'we're'"),
    (r"\bit is\b", "it's", "'it is' -> 'it's'"),
    (r"\binformation\b", "info", "'information' -> 'info'"),
    (r"\bapproximately\b", "approx.", "'approximately' -> 'approx.'"),
    (r"\bminutes\b", "min", "'minutes' -> 'min'"),
    (r"\bappointment\b", "appt", "'appointment' -> 'appt'"),
    (r"\breference\b", "ref", "'reference' -> 'ref'"),
    (r"\bnumber\b", "no.", "'number' -> 'no.'"),
    (r"\band\b", "&", "'and' -> '&'"),
    (r"\bplease\s+", "", "removed 'please'"),
]
_PROTECTED = re.compile(r"\b(?:STOP|HELP|START|UNSTOP|unsubscribe|opt[- ]out)\b", re.I)


@dataclass
class Compression:
    original: str
    suggestion: str
    target_segments: int
    changes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        before, after = sms_segments(self.original), sms_segments(self.suggestion)
        return {
            "original": self.original, "suggestion": self.suggestion, "changed": self.suggestion != self.original,
            "target_segments": self.target_segments, "fits": after.segments <= self.target_segments,
            "before": {"encoding": before.encoding, "units": before.units, "segments": before.segments},
            "after": {"encoding": after.encoding, "units": after.units, "segments": after.segments},
            "changes": self.changes,
            "non_gsm_left": sorted({c for c in self.suggestion if not _gsm(c)})[:20],
            "note": "Counted on the source as written: a placeholder's rendered value may be longer or shorter.",
        }


def _gsm(char: str) -> bool:
    return char in GSM7_BASIC or char in GSM7_EXTENDED


def _literals(text: str, fn) -> str:
    """Apply `fn` to the text between placeholders only; placeholders come back byte for byte."""
    out, last = [], 0
    for match in _PLACEHOLDER.finditer(text):
        out.append(fn(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(fn(text[last:]))
    return "".join(out)


def _to_gsm(chunk: str) -> str:
    result = []
    for char in chunk:
        if _gsm(char):
            result.append(char)
        elif char in CHARACTER_MAP:
            result.append(CHARACTER_MAP[char])
        else:
            # Accented Latin letters outside GSM (á, ç, ł…) → their base letter when that is GSM.
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            if base and all(_gsm(c) for c in base):
                result.append(base)
            elif unicodedata.category(char) in ("So", "Sk", "Cs", "Co", "Mn", "Me", "Cf"):
                result.append("")  # emoji and pictographs: no GSM equivalent, dropped
            else:
                result.append(char)  # a letter of another script: kept (the message stays UCS-2)
    return "".join(result)


def _squeeze(chunk: str) -> str:
    chunk = re.sub(r"[ ]{2,}", " ", chunk)
    chunk = re.sub(r" +([,.!?;:])", r"\1", chunk)
    chunk = re.sub(r" *\n *", "\n", chunk)
    chunk = re.sub(r"\n{2,}", "\n", chunk)
    return re.sub(r"([!?.])\1{1,}", r"\1", chunk)  # "!!!" -> "!" ("..." from an ellipsis is kept as one ".")


def _wording(pattern: str, replacement: str):
    def apply(chunk: str) -> str:
        def repl(match: re.Match) -> str:
            if _PROTECTED.search(match.group(0)):
                return match.group(0)
            word = replacement
            if word and match.group(0)[:1].isupper() and word[:1].islower():
                word = word[0].upper() + word[1:]
            return word
        return re.sub(pattern, repl, chunk, flags=re.I)
    return apply


def _capitalise_sentences(text: str) -> str:
    """After removing a leading filler ("Please note that your…"), the sentence starts upper-case again.
    Applied to literal chunks: a chunk's start is a sentence start only at the very start of the text."""
    upper = lambda m: m.group(1) + m.group(2).upper()  # noqa: E731
    text = _literals(text, lambda chunk: re.sub(r"([.!?]\s+)([a-z])", upper, chunk))
    return re.sub(r"\A()([a-z])", upper, text)  # a text starting with "{{" does not match [a-z]


def sms_compress(text: str, *, max_segments: int = 1) -> Compression:
    """The shortest-change suggestion that fits `max_segments` (or the best found, with ``fits`` false)."""
    result = Compression(original=text, suggestion=text, target_segments=max_segments)

    def fits(candidate: str) -> bool:
        return sms_segments(candidate).segments <= max_segments

    if fits(text) and sms_segments(text).encoding == "GSM-7":
        return result  # already short and already GSM-7: nothing to suggest
    current = text
    for stage, fn, label in (
        ("characters", lambda c: re.sub(r"(?<=\S) {2,}(?=\S)", " ", _to_gsm(c)) if _to_gsm(c) != c else c,
         "replaced characters outside GSM-7 (quotes, dashes, emoji…)"),
        ("whitespace", _squeeze, "collapsed whitespace and repeated punctuation"),
    ):
        candidate = _literals(current, fn)
        if not text.endswith((" ", "\n")):
            candidate = candidate.rstrip(" \n")  # a trailing emoji leaves its space behind
        if candidate != current:
            current = candidate
            result.changes.append(label)
        if fits(current):
            result.suggestion = current
            return result
    for pattern, replacement, label in WORDING_RULES:
        candidate = _literals(current, _wording(pattern, replacement))
        if candidate != current:
            current = _literals(candidate, _squeeze) if replacement == "" else candidate
            if replacement == "":
                current = _capitalise_sentences(current)
            result.changes.append(label)
            if fits(current):
                break
    result.suggestion = current
    return result
