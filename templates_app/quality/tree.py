"""The rendered email as an element tree with the few computed styles the lint needs.

The rendered MJML has its CSS inlined already (rendering.compile_mjml), so every colour a mail
client honours sits in a ``style`` attribute or a legacy attribute (``bgcolor``, ``<font color>``).
We resolve what CSS inheritance gives each element: ``color`` and ``font-size`` inherit, the
background does not, so text sits on the nearest ancestor that paints one. Conditional comments
(``<!--[if mso]>``) are Outlook-only copies of the same layout and are skipped with all comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import tinycss2
from tinycss2.color3 import RGBA, parse_color

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
SKIP_TEXT = {"style", "script", "title", "head", "template"}
BOLD_TAGS = {"b", "strong", "h1", "h2", "h3", "h4", "h5", "h6", "th"}
DEFAULT_FONT_PX = 16.0  # the browser default a client starts from when nothing sets a size
# h1–h6 user-agent sizes (HTML Living Standard, "Rendering: sections and headings"), relative to the parent.
HEADING_EM = {"h1": 2.0, "h2": 1.5, "h3": 1.17, "h4": 1.0, "h5": 0.83, "h6": 0.67}
ABS_UNITS_PX = {"px": 1.0, "pt": 4 / 3, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4}


@dataclass
class CssProblem:
    """CSS the lint could not read; reported as a warning, never raised."""

    where: "Node"
    text: str
    reason: str


@dataclass(eq=False)
class Node:
    tag: str
    attrs: dict[str, str]
    parent: "Node | None" = None
    children: list["Node"] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # direct text children, in order
    # Computed values (filled by compute()):
    color: RGBA | None = None  # inherited text colour; None = the client's default (unspecified)
    background: RGBA | None = None  # this element's own painted background, if any
    font_px: float = DEFAULT_FONT_PX
    bold: bool = False
    hidden: bool = False
    ordinal: int = 0  # 1-based position among the document's elements with this tag

    def iter(self):
        yield self
        for child in self.children:
            yield from child.iter()

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def text(self) -> str:
        """All visible text below this element, whitespace collapsed (image alts count, as for a screen reader)."""
        parts = list(self.texts)
        for child in self.children:
            if child.tag == "img":
                parts.append(child.attrs.get("alt", ""))
            elif not child.hidden and child.tag not in SKIP_TEXT:
                parts.append(child.text())
        return " ".join(" ".join(parts).split())

    def own_text(self) -> str:
        return " ".join(" ".join(self.texts).replace("\xa0", " ").split())

    def nearest_background(self) -> RGBA | None:
        """The colour text of this element is drawn on: its own or the nearest ancestor's background
        (alpha composited down the chain), None when nothing in the chain paints one."""
        layers = [n.background for n in (self, *self.ancestors()) if n.background is not None]
        if not layers:
            return None
        base = None
        for layer in reversed(layers):  # from the root down
            base = layer if base is None else blend(layer, base)
        return base

    def locator(self) -> str:
        """A short path a reviewer can find in the HTML, e.g. ``body > div > table > … > img[src=logo.png]``."""
        chain = [n for n in (self, *self.ancestors()) if n.tag not in ("#root",)]
        names = [n.tag for n in reversed(chain)]
        if len(names) > 6:
            names = names[:2] + ["…"] + names[-3:]
        label = self.tag
        for key in ("id", "class", "src", "href"):
            if self.attrs.get(key):
                value = self.attrs[key]
                label += f'[{key}="{value[:60]}{"…" if len(value) > 60 else ""}"]'
                break
        return " > ".join(names[:-1] + [label]) + f" ({self.tag} #{self.ordinal})"


def blend(top: RGBA, bottom: RGBA) -> RGBA:
    """Source-over compositing of a translucent colour on an opaque one (CSS Compositing §5.1)."""
    a = top.alpha
    return RGBA(top.red * a + bottom.red * (1 - a), top.green * a + bottom.green * (1 - a),
                top.blue * a + bottom.blue * (1 - a), 1.0)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {})
        self.stack = [self.root]
        self.styles: list[str] = []

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k.lower(): (v or "") for k, v in attrs}, parent=self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.stack[-1].tag == tag:
            self.stack.pop()

    def handle_endtag(self, tag):
        # Tolerate sloppy HTML: close up to the matching open tag, ignore a stray end tag.
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        node = self.stack[-1]
        if node.tag == "style":
            self.styles.append(data)
        elif data.strip():
            node.texts.append(data)


@dataclass
class Document:
    root: Node
    html: Node | None
    styles: list[str]
    css_problems: list[CssProblem]

    def elements(self, tag: str | None = None):
        return (n for n in self.root.iter() if n.tag != "#root" and (tag is None or n.tag == tag))


def parse(html: str) -> Document:
    """Parse rendered HTML and compute colours, sizes and visibility; bad CSS becomes a CssProblem."""
    builder = _Builder()
    builder.feed(html)
    builder.close()
    problems: list[CssProblem] = []
    for child in builder.root.children:
        _compute(child, problems)
    counts: dict[str, int] = {}
    for node in builder.root.iter():
        counts[node.tag] = node.ordinal = counts.get(node.tag, 0) + 1
    html_node = next((n for n in builder.root.children if n.tag == "html"), None)
    for sheet in builder.styles:  # <style> blocks the inliner kept (media queries): parse to report garbage
        for rule in tinycss2.parse_stylesheet(sheet, skip_comments=True, skip_whitespace=True):
            if rule.type == "error":
                problems.append(CssProblem(html_node or builder.root, sheet.strip()[:120], rule.message))
    return Document(builder.root, html_node, builder.styles, problems)


def _compute(node: Node, problems: list[CssProblem]) -> None:
    parent = node.parent
    node.color = parent.color
    node.font_px = parent.font_px
    node.bold = parent.bold or node.tag in BOLD_TAGS
    node.hidden = parent.hidden
    if node.tag in HEADING_EM:
        node.font_px = parent.font_px * HEADING_EM[node.tag]
    # Presentational attributes first: CSS in style="" overrides them (HTML §15.3.1 "presentational hints").
    if node.attrs.get("bgcolor"):
        node.background = _color(node.attrs["bgcolor"]) or node.background
    if node.tag == "font" and node.attrs.get("color"):
        node.color = _color(node.attrs["color"]) or node.color
    if "hidden" in node.attrs:
        node.hidden = True
    style = node.attrs.get("style", "")
    if style:
        _apply_style(node, style, problems)
    for child in node.children:
        _compute(child, problems)


def _color(text: str) -> RGBA | None:
    value = parse_color(text.strip())
    return value if isinstance(value, RGBA) else None


def _apply_style(node: Node, style: str, problems: list[CssProblem]) -> None:
    for decl in tinycss2.parse_declaration_list(style, skip_comments=True, skip_whitespace=True):
        if decl.type == "error":
            problems.append(CssProblem(node, style[:120], decl.message))
            continue
        if decl.type != "declaration":
            continue
        tokens = [t for t in decl.value if t.type not in ("whitespace", "comment")]
        name = decl.lower_name
        if name == "color":
            value = parse_color(tokens[0]) if len(tokens) == 1 else None
            if isinstance(value, RGBA):
                node.color = value
            elif value == "currentColor" or _keyword(tokens) in ("inherit", "unset"):
                pass
            elif _keyword(tokens) == "initial":
                node.color = None
            else:
                problems.append(CssProblem(node, tinycss2.serialize(decl.value).strip(), "unreadable color"))
        elif name in ("background", "background-color"):
            found = [c for c in (parse_color(t) for t in tokens) if isinstance(c, RGBA)]
            if found:
                node.background = found[-1] if found[-1].alpha > 0 else None
            elif name == "background-color" and _keyword(tokens) not in ("inherit", "initial", "unset", "none"):
                problems.append(CssProblem(node, tinycss2.serialize(decl.value).strip(), "unreadable background"))
        elif name == "font-size":
            size = _font_px(tokens, node.parent.font_px if node.parent else DEFAULT_FONT_PX)
            if size is None:
                problems.append(CssProblem(node, tinycss2.serialize(decl.value).strip(), "unreadable font-size"))
            else:
                node.font_px = size
        elif name == "font-weight":
            kw = _keyword(tokens)
            if kw in ("bold", "bolder"):
                node.bold = True
            elif kw in ("normal", "lighter"):
                node.bold = False
            elif tokens and tokens[0].type == "number":
                node.bold = tokens[0].value >= 700  # WCAG "bold" is 700 (Understanding SC 1.4.3)
        elif name == "display" and _keyword(tokens) == "none":
            node.hidden = True
        elif name == "visibility" and _keyword(tokens) in ("hidden", "collapse"):
            node.hidden = True
        elif name == "opacity" and tokens and tokens[0].type in ("number", "percentage") and tokens[0].value == 0:
            node.hidden = True
        elif name in ("max-height", "height") and tokens and tokens[0].type in ("dimension", "number") \
                and tokens[0].value == 0 and "overflow:hidden" in style.replace(" ", "").lower():
            node.hidden = True  # the preheader trick: present for the inbox list, invisible in the body


def _keyword(tokens) -> str:
    return tokens[0].lower_value if len(tokens) == 1 and tokens[0].type == "ident" else ""


_KEYWORD_PX = {"xx-small": 9, "x-small": 10, "small": 13, "medium": 16, "large": 18, "x-large": 24,
               "xx-large": 32, "xxx-large": 48}


def _font_px(tokens, parent_px: float) -> float | None:
    if len(tokens) != 1:
        return None
    token = tokens[0]
    if token.type == "dimension":
        unit = token.lower_unit
        if unit in ABS_UNITS_PX:
            return token.value * ABS_UNITS_PX[unit]
        if unit == "em":
            return token.value * parent_px
        if unit == "rem":
            return token.value * DEFAULT_FONT_PX
        return None
    if token.type == "percentage":
        return token.value / 100 * parent_px
    if token.type == "number" and token.value == 0:
        return 0.0
    if token.type == "ident":
        if token.lower_value in _KEYWORD_PX:
            return float(_KEYWORD_PX[token.lower_value])
        if token.lower_value in ("inherit", "unset"):
            return parent_px
        if token.lower_value == "larger":
            return parent_px * 1.2
        if token.lower_value == "smaller":
            return parent_px / 1.2
    return None
