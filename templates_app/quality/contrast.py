"""Text/background contrast (WCAG 2.x success criterion 1.4.3, "Contrast (Minimum)").

Relative luminance and the contrast ratio follow the WCAG 2.2 definitions (sRGB channel
linearisation with the 0.04045 threshold of IEC 61966-2-1). Text needs 4.5:1, large text 3:1;
large is ≥ 18 pt (24 px) or ≥ 14 pt (18.66 px) bold. Text with no background anywhere in its chain
is measured against white, the canvas a light-mode client paints; dark mode is darkmode.py's job.
"""

from __future__ import annotations

from collections.abc import Iterator

from tinycss2.color3 import RGBA

from templates_app.quality import tree
from templates_app.quality.registry import Email, Hit, rule

WHITE = RGBA(1.0, 1.0, 1.0, 1.0)
BLACK = RGBA(0.0, 0.0, 0.0, 1.0)
NORMAL_MIN, LARGE_MIN = 4.5, 3.0
LARGE_PX, LARGE_BOLD_PX = 24.0, 18.66


def _linear(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def luminance(color: RGBA) -> float:
    """WCAG relative luminance: 0 for black, 1 for white."""
    return 0.2126 * _linear(color.red) + 0.7152 * _linear(color.green) + 0.0722 * _linear(color.blue)


def contrast_ratio(a: RGBA, b: RGBA) -> float:
    """(L1 + 0.05) / (L2 + 0.05) with L1 the lighter: 1 (same) … 21 (black on white)."""
    la, lb = luminance(a), luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def hex_color(color: RGBA | None) -> str:
    if color is None:
        return "unspecified"
    return "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (color.red, color.green, color.blue)))


def is_large(node: tree.Node) -> bool:
    return node.font_px >= LARGE_PX or (node.bold and node.font_px >= LARGE_BOLD_PX)


def text_nodes(doc: tree.Document) -> Iterator[tree.Node]:
    """Elements that draw text of their own, visible and at a readable size (font-size 0 hides
    the whitespace MJML leaves between inline-block columns)."""
    for node in doc.elements():
        if node.texts and not node.hidden and node.font_px > 0 and node.tag not in tree.SKIP_TEXT \
                and node.own_text() and not any(a.tag in tree.SKIP_TEXT for a in node.ancestors()):
            yield node


def colours(node: tree.Node) -> tuple[RGBA, RGBA]:
    """The text colour (alpha blended) and the opaque background it is drawn on, light mode."""
    background = node.nearest_background()
    background = WHITE if background is None else (background if background.alpha >= 1 else tree.blend(background, WHITE))
    text = node.color or BLACK
    if text.alpha < 1:
        text = tree.blend(text, background)
    return text, background


@rule("A11Y_CONTRAST", "error", "Text contrast below WCAG 2.x AA (4.5:1, 3:1 for large text)")
def check_contrast(email: Email) -> Iterator[Hit]:
    for node in text_nodes(email.doc):
        text, background = colours(node)
        ratio = contrast_ratio(text, background)
        needed = LARGE_MIN if is_large(node) else NORMAL_MIN
        if ratio < needed:
            sample = node.own_text()[:40]
            yield Hit(node.locator(), f'"{sample}" is {hex_color(text)} on {hex_color(background)}: contrast '
                                      f"{ratio:.2f}:1, needs {needed:g}:1 "
                                      f"({'large' if needed == LARGE_MIN else 'normal'} text, {node.font_px:g}px"
                                      f"{' bold' if node.bold else ''}).")
