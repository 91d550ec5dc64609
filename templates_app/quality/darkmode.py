"""Dark-mode rules: colours that vanish or invert badly when a client switches to a dark scheme.

Clients do one of three things (Litmus, "The Ultimate Guide to Dark Mode for Email Marketers"): leave
the email alone (Apple Mail without a color-scheme meta), invert only the colours that were not set
(Gmail app, Outlook.com: "partial inversion"), or invert everything (Outlook for Windows, Gmail iOS:
"full inversion"). What breaks in all of them can be read from the HTML/CSS alone:
- text given a dark colour but no background: partial inversion paints the canvas dark under text that
  stays dark;
- pure #000 on pure #fff: full inversion swaps exactly these values and some clients single them out,
  so the result differs per client (an off-black on an off-white stays predictable);
- a transparent image (PNG/GIF/SVG logo) with no background behind it: dark lettering vanishes on the
  dark canvas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tinycss2.color3 import RGBA

from templates_app.quality import contrast
from templates_app.quality.registry import Email, Hit, rule

DARK_CANVAS = RGBA(0x12 / 255, 0x12 / 255, 0x12 / 255, 1.0)  # Material dark surface #121212, as Gmail paints
TRANSPARENT_FORMATS = re.compile(r"\.(png|gif|svg|webp)$", re.I)


def _pure(color: RGBA | None, value: float) -> bool:
    return color is not None and color.alpha >= 1 and color.red == color.green == color.blue == value


@rule("DARK_TEXT_NO_BACKGROUND", "warning", "Dark text on a transparent background")
def check_dark_text(email: Email) -> Iterator[Hit]:
    for node in contrast.text_nodes(email.doc):
        if node.color is None or node.nearest_background() is not None:
            continue  # the client's own text colour follows its scheme; a set background travels with the text
        ratio = contrast.contrast_ratio(node.color, DARK_CANVAS)
        if ratio < contrast.NORMAL_MIN:
            yield Hit(node.locator(), f'"{node.own_text()[:40]}" is {contrast.hex_color(node.color)} with no '
                                      f"background: on a dark-mode canvas it has {ratio:.2f}:1. Set a background "
                                      "colour on its container (or the body).")


@rule("DARK_PURE_BLACK_WHITE", "warning", "Pure black on pure white (or the reverse)")
def check_pure_pair(email: Email) -> Iterator[Hit]:
    for node in contrast.text_nodes(email.doc):
        background = node.nearest_background()
        if (_pure(node.color, 0.0) and _pure(background, 1.0)) or (_pure(node.color, 1.0) and _pure(background, 0.0)):
            yield Hit(node.locator(), f'"{node.own_text()[:40]}" is {contrast.hex_color(node.color)} on '
                                      f"{contrast.hex_color(background)}: dark-mode clients invert this exact pair "
                                      "differently; use an off-black on an off-white (e.g. #1a1a1a on #fefefe).")


@rule("DARK_TRANSPARENT_IMAGE", "warning", "Transparent-capable image with no background behind it")
def check_transparent_image(email: Email) -> Iterator[Hit]:
    for img in email.doc.elements("img"):
        path = img.attrs.get("src", "").split("?", 1)[0].split("#", 1)[0]
        if img.hidden or not TRANSPARENT_FORMATS.search(path) or img.nearest_background() is not None:
            continue
        yield Hit(img.locator(), "A PNG/GIF/SVG image (a logo?) sits on no background: if it is transparent, dark "
                                 "parts vanish on a dark-mode canvas. Give its cell a background colour or add a "
                                 "light outline to the image.")
