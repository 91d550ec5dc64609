"""SMS encoding and segment count (GSM 03.38 / 3GPP TS 23.038): what a text costs to send.

Split from rendering.py: the render pipeline reports a rendered SMS's segments with it, and the SMS
providers, the price list and the assist's shortener count segments the same way, without the
Handlebars/MJML machinery.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsInfo:
    """How a text is encoded, its length in that encoding's units, and the segments it is sent as."""

    encoding: str
    units: int
    segments: int


def sms_segments(text: str) -> SmsInfo:
    """GSM 03.38: 160 septets in one segment, 153 per part when concatenated; UCS-2: 70 / 67."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text):
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        return SmsInfo("GSM-7", units, 1 if units <= 160 else math.ceil(units / 153))
    units = len(text.encode("utf-16-le")) // 2
    return SmsInfo("UCS-2", units, 1 if units <= 70 else math.ceil(units / 67))


def truncate_sms(text: str, max_segments: int) -> str:
    """The longest prefix (with an ellipsis) that fits `max_segments`."""
    if sms_segments(text).segments <= max_segments:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if sms_segments(text[:mid] + "…").segments <= max_segments:
            low = mid
        else:
            high = mid - 1
    return text[:low] + "…"
