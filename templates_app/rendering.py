"""Rendering: Handlebars (pybars3) with locale-aware helpers, MJML → inlined HTML, per-channel output.

Safety rules (EC-COM-005): every ``{{variable}}`` in HTML is escaped; ``{{{…}}}``/``{{& …}}`` and the
``raw`` helper are refused unless the template is marked trusted; after rendering, every
``href``/``src`` must be http(s), mailto, tel, cid or an anchor, anything else becomes ``#``. Text
channels (subject, text part, SMS, push) are rendered without HTML escaping, since they are not HTML.
Templates read plain data only: dict keys and list items, never attributes (templates_app/sandbox.py).

Speed: MJML compilation, CSS inlining, the generated text part and the Handlebars compilation
happen once per (version, locale, part); a batch of 10,000 recipients only runs the compiled
functions.
"""

from __future__ import annotations

import html
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable

import css_inline
import html2text
import pybars

from templates_app import sandbox
from templates_app.helpers import (  # noqa: F401  (re-exported: callers import them from rendering)
    SAFE_SCHEMES as _SAFE_SCHEMES,
    babel_locale,
    fast_currency,
    make_helpers,
    moment_to_ldml,
    safe_url,
)
from templates_app.sms_encoding import SmsInfo

# --- compile-time checks ------------------------------------------------------------------------------


class TemplateSyntaxError(ValueError):
    """Handlebars or MJML that cannot be compiled; carries line and column when known."""

    def __init__(self, message: str, *, part: str = "", line: int | None = None, column: int | None = None):
        self.part, self.line, self.column = part, line, column
        where = f" (line {line}, column {column})" if line else ""
        super().__init__(f"{part + ': ' if part else ''}{message}{where}")


_UNESCAPED = re.compile(r"\{\{\{|\{\{&")
_RAW_HELPER = re.compile(r"\{\{\s*raw\b")


def check_trusted_syntax(source: str, *, trusted: bool, part: str) -> None:
    if trusted:
        return
    for pattern in (_UNESCAPED, _RAW_HELPER):
        match = pattern.search(source)
        if match:
            line, column = _position(source, match.start())
            raise TemplateSyntaxError(
                "unescaped output ({{{…}}}, {{&…}} or raw) needs a trusted template", part=part, line=line, column=column
            )


def _position(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


_compiler_lock = threading.Lock()
_compiler = pybars.Compiler()


_TAG = re.compile(r"\{\{(\{?)(.*?)\}?\}\}", re.S)


def check_structure(source: str, *, part: str) -> None:
    """What pybars lets through: unclosed ``{{``, and blocks that are never (or wrongly) closed."""
    stack: list[tuple[str, int]] = []
    position = 0
    for match in _TAG.finditer(source):
        stray = source.find("{{", position, match.start())
        if stray != -1:
            raise TemplateSyntaxError("'{{' is never closed", part=part, line=_position(source, stray)[0],
                                      column=_position(source, stray)[1])
        position = match.end()
        inner = match.group(2).strip().lstrip("~").strip()
        if inner.startswith("!"):
            continue
        if inner.startswith(">"):  # no partials are registered: it could only fail when rendered
            line, column = _position(source, match.start())
            raise TemplateSyntaxError("partials ({{> name}}) are not supported", part=part, line=line, column=column)
        if inner[:1] in "#^":
            name = inner[1:].split()[0] if inner[1:].split() else ""
            stack.append((name, match.start()))
        elif inner.startswith("/"):
            name = inner[1:].strip()
            if not stack:
                line, column = _position(source, match.start())
                raise TemplateSyntaxError(f"{{{{/{name}}}}} closes nothing", part=part, line=line, column=column)
            opened, at = stack.pop()
            if opened != name:
                line, column = _position(source, match.start())
                raise TemplateSyntaxError(f"{{{{/{name}}}}} closes {{{{#{opened}}}}}", part=part, line=line,
                                          column=column)
    stray = source.find("{{", position)
    if stray != -1:
        line, column = _position(source, stray)
        raise TemplateSyntaxError("'{{' is never closed", part=part, line=line, column=column)
    if stack:
        name, at = stack[-1]
        line, column = _position(source, at)
        raise TemplateSyntaxError(f"{{{{#{name}}}}} is never closed", part=part, line=line, column=column)


def compile_handlebars(source: str, *, part: str) -> Callable:
    """Compile, refusing names that reach Python internals; the function reads plain data only.

    Keyed by the source text: the result depends on nothing else, and parsing is the costly part (two
    passes of pybars' PEG grammar, ~50 ms for an order email). Versions and drafts sharing a part — a
    resubmission, a new locale, every preview of an unchanged draft — compile it once per process.
    """
    return by_source.get(source, lambda: _compile_handlebars(source, part=part))


def _compile_handlebars(source: str, *, part: str) -> Callable:
    check_structure(source, part=part)
    check_names(source, part=part)
    try:
        with _compiler_lock:  # pybars' compiler keeps state while it works
            return sandbox.harden(_compiler.compile(source))
    except Exception as exc:  # pybars raises PybarsError or a grammar error with a position in its text
        text = str(exc)
        match = re.search(r"line (\d+)(?:, column (\d+))?", text) or re.search(r"at (\d+):(\d+)", text)
        line, column = (int(match.group(1)), int(match.group(2) or 0)) if match else (None, None)
        if line is None and "at character" in text:
            pos = int(re.search(r"at character (\d+)", text).group(1))
            line, column = _position(source, pos)
        raise TemplateSyntaxError(text.splitlines()[0] if text else "invalid Handlebars", part=part,
                                  line=line, column=column) from None


def check_names(source: str, *, part: str) -> None:
    """Refuse names starting with '_' (they only reach Python internals), at their line and column.

    Run on the author's source (MJML included), so the position is the one they typed.
    """
    try:
        with _compiler_lock:
            tree, _ = _compiler._handlebars(_compiler.whitespace_control(source)).apply("template")
    except Exception:  # not Handlebars: compiling reports it with its position
        return
    name = sandbox.unsafe_name(tree)
    if name is not None:
        line, column = _name_position(source, name)
        raise TemplateSyntaxError(f"'{name}' is not a variable: names starting with '_' are not allowed",
                                  part=part, line=line, column=column)


def _name_position(source: str, name: str) -> tuple[int | None, int | None]:
    for match in _TAG.finditer(source):
        at = match.group(0).find(name)
        if at != -1:
            return _position(source, match.start() + at)
    return None, None


# In text channels nothing is HTML: turn every escaped mustache into an unescaped one.
_DOUBLE = re.compile(r"(?<!\{)\{\{(?![{#/!>^&~]|else\b|\s*else\s*\}\})(.*?)\}\}(?!\})", re.S)


def as_text_source(source: str) -> str:
    return _DOUBLE.sub(r"{{{\1}}}", source)


_BLOCK_TAG = re.compile(r"\{\{~?\s*(?:[#/^]|else\b)[^}]*\}\}")
_PROTECTED = re.compile(r"<!--hb(\{\{.*?\}\})-->", re.S)
# Never fetch stylesheets while rendering; keep @media rules so MJML's responsive layout survives.
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


# mrml and css-inline are Rust: a panic there surfaces as pyo3's PanicException, which derives from
# BaseException, not Exception (found by tests/security/test_fuzz.py). Catch it as a template error.
_NATIVE_ERRORS = BaseException


def _reraise_interrupts(exc: BaseException) -> None:
    if isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)):
        raise exc


def compile_mjml(source: str) -> str:
    """MJML → HTML with CSS inlined; plain HTML only gets its CSS inlined."""
    from mjml import mjml2html

    if source.lstrip().startswith("<mjml"):
        try:
            # No web-font links: they cost a fetch per open and leak the reader to a third party.
            source = mjml2html(source, disable_comments=True, fonts={})
        except _NATIVE_ERRORS as exc:  # mrml reports the position in its message
            _reraise_interrupts(exc)
            text = str(exc)
            match = re.search(r"(\d+):(\d+)|position (\d+)", text)
            line = column = None
            if match and match.group(1):
                line, column = int(match.group(1)), int(match.group(2))
            raise TemplateSyntaxError(f"invalid MJML: {text}", part="body_html", line=line, column=column) from None
    # The inliner parses HTML5, which moves stray text out of <table> ("foster parenting"): a
    # {{#each}} around <tr> rows would end up before the table. Comments stay where they are, so
    # block tags travel through the inliner as comments.
    protected = _BLOCK_TAG.sub(lambda m: f"<!--hb{m.group(0)}-->", source)
    try:
        inlined = _INLINER.inline(protected)
    except _NATIVE_ERRORS as exc:
        _reraise_interrupts(exc)
        raise TemplateSyntaxError(f"CSS could not be inlined: {exc}", part="body_html") from None
    return _PROTECTED.sub(lambda m: m.group(1), inlined)


def html_to_text_source(html_source: str) -> str:
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = True
    return converter.handle(html_source).strip() + "\n"


# --- variables the template reads ------------------------------------------------------------------------

_MUSTACHE = re.compile(r"\{\{\{?[#^/&]?\s*([^}]*?)\s*\}?\}\}")
_HELPERS = {"if", "unless", "each", "with", "else", "eq", "raw", "default", "pluralize", "formatCurrency",
            "formatDate", "formatNumber", "lookup", "log", "safeUrl", "plural"}


def referenced_variables(source: str, *, paths: bool = False) -> set[str]:
    """Root names read outside loops: what the variable schema must declare.

    Inside ``{{#each}}``/``{{#with}}`` names are relative to the item and are not checked.
    With ``paths`` the whole dotted path is kept (``order.url``), which is what a translation can drop.
    """
    names: set[str] = set()
    depth = 0
    for match in _MUSTACHE.finditer(source):
        token = match.group(0)
        inner = match.group(1)
        if token.startswith("{{!"):
            continue
        opener = token.lstrip("{")[:1]
        # A hash argument (one="# items") is one word even when its quoted value has spaces.
        words = re.findall(r'[\w-]+=(?:"[^"]*"|\'[^\']*\')|"[^"]*"|\'[^\']*\'|\(|\)|[^\s()]+', inner)
        if opener == "/":
            if words and words[0] in ("each", "with"):
                depth = max(0, depth - 1)
            continue
        candidates = words
        if opener in ("#", "^") and words:
            candidates = words[1:] if words[0] in _HELPERS else words
        elif words and words[0] in _HELPERS:
            candidates = words[1:]
        if depth == 0:
            for word in candidates:
                if word[0] in "\"'()" or word.startswith("@") or word in _HELPERS or word in ("this", "true", "false"):
                    continue
                if re.fullmatch(r"-?\d+(\.\d+)?", word) or "=" in word:
                    continue
                word = re.sub(r"^(?:this[./]|\./)", "", word)  # {{this.items}} at the root reads `items`
                names.add(word.replace("/", ".") if paths else word.split(".")[0].split("/")[0].split("[")[0])
        if opener == "#" and words and words[0] in ("each", "with"):
            depth += 1
    return names


# --- after rendering ----------------------------------------------------------------------------------

_URL_ATTR = re.compile(r"""(\b(?:href|src)\s*=\s*)(["'])(.*?)\2""", re.I | re.S)


def sanitise_urls(rendered_html: str, problems: list[str] | None = None) -> str:
    """Neutralise href/src values that are not http(s)/mailto/tel/cid or an anchor."""

    def fix(match: re.Match) -> str:
        value = match.group(3)
        probe = re.sub(r"[\x00-\x20]+", "", html.unescape(value)).lower()
        if not probe or probe.startswith(_SAFE_SCHEMES) or probe.startswith("#"):
            return match.group(0)
        if problems is not None:
            problems.append(f"unsafe URL removed: {value[:60]}")
        return f"{match.group(1)}{match.group(2)}#{match.group(2)}"

    return _URL_ATTR.sub(fix, rendered_html)


_SINGLE_TOKEN = re.compile(r"^\s*\{\{\s*([^{}#/^!>&]+?)\s*\}\}\s*$")


def guard_urls(html_source: str) -> tuple[str, bool]:
    """Make URL attributes safe once, at compile time, instead of scanning every rendered email.

    Static values are sanitised now. A value that is one variable (``href="{{order.url}}"``) is
    routed through the ``safeUrl`` helper. A value with a fixed safe scheme before its first
    variable (``https://x/{{path}}``) cannot change scheme. Anything else is checked after each
    render (the returned flag).
    """
    needs_runtime = False

    def fix(match: re.Match) -> str:
        nonlocal needs_runtime
        value = match.group(3)
        if "{{" not in value:
            return sanitise_urls(match.group(0))
        single = _SINGLE_TOKEN.match(value)
        if single:
            return f"{match.group(1)}{match.group(2)}{{{{safeUrl {single.group(1)}}}}}{match.group(2)}"
        head = html.unescape(value.split("{{", 1)[0]).strip().lower()
        if not (":" in head and head.startswith(_SAFE_SCHEMES)):
            needs_runtime = True
        return match.group(0)

    return _URL_ATTR.sub(fix, html_source), needs_runtime


# --- compiled-template cache ---------------------------------------------------------------------------

class _Cache:
    def __init__(self, size: int = 4096):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key, build: Callable[[], Any]):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = build()
        with self.lock:
            self.items[key] = value
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


compiled = _Cache()
# compile_handlebars by source text (errors are raised, never cached).
by_source = _Cache(1024)


@dataclass
class Rendered:
    """One channel's output plus everything that went wrong or looks risky."""

    subject: str = ""
    body: str = ""
    body_html: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    sms: SmsInfo | None = None


def render_part(compiled_fn: Callable, context: dict, helpers: dict, problems: list[str] | None = None) -> str:
    """Render one compiled part; a failure inside pybars is a typed render error, never a crash.

    Reads that found no plain data (a field of a string, an object printed as text) rendered empty;
    they are added to `problems` once each.
    """
    try:
        with sandbox.collecting() as found:
            text = str(compiled_fn(context, helpers=helpers))
    except pybars.PybarsError as exc:
        from comms import errors

        raise errors.TemplateRenderFailed(f"The template could not be rendered: {exc}") from None
    if problems is not None:
        problems.extend(p for p in found if p not in problems)
    return text


def render_json(value: Any, render: Callable[[str, str], str], key: str = "") -> Any:
    """In-app content is JSON: render every string in it, told the key it sits under (a list item
    inherits its list's key), so links and text can follow their own policy."""
    if isinstance(value, str):
        return render(value, key)
    if isinstance(value, list):
        return [render_json(v, render, key) for v in value]
    if isinstance(value, dict):
        return {k: render_json(v, render, str(k)) for k, v in value.items()}
    return value
