"""Template data is plain data: a compiled Handlebars template only indexes dicts and lists.

pybars3 0.9.7 resolves ``{{a.b}}`` with ``a[b]`` and, when that fails, ``getattr(a, b)``; whatever it
finds is *called* when callable (``pybars/_compiler.py``: ``pick``, ``resolve``, ``Scope.get`` and
``find_lookup``). So ``{{name.upper}}`` called ``str.upper`` with a Scope (a 500), ``{{this.items}}``
called ``dict.items``, and ``{{name.__class__}}`` called ``str(scope)``, printing every variable
(unsubscribe and preference-center URLs included). Its ``prepare`` prints a dict or a list as Python's
repr, and its ``each``/``with``/``lookup`` helpers build scopes that resolve the same way.

Every compiled template gets this module's resolver, printer, scope and default helpers in its
globals (:func:`harden`), so every part of every channel (subject, HTML, text, SMS, push, in-app
JSON) and every helper argument reads data the same way: a key of a mapping, an index (or
``length``) of a list, nothing else. A read that cannot mean anything (a field of a string, an
object printed as text) renders empty, like a missing variable, and is reported through
:func:`collecting` so preview, submit and send can name it. Names starting with ``_`` are refused
when the template is compiled (:func:`unsafe_name`).
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

import pybars
from pybars import Scope, strlist
from pybars._compiler import escape

_SCALARS = (str, int, float, Decimal, date, datetime)
MAX_PROBLEMS = 10
_problems: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("template_problems", default=None)


class collecting:  # noqa: N801  (used as a context manager; a class is cheaper than @contextmanager)
    """Collect what a render read or printed that is not plain data (deduplicated, at most 10)."""

    __slots__ = ("found", "token")

    def __enter__(self) -> list[str]:
        self.found: list[str] = []
        self.token = _problems.set(self.found)
        return self.found

    def __exit__(self, *exc: Any) -> None:
        _problems.reset(self.token)


def _note(message: str) -> None:
    found = _problems.get()
    if found is not None and message not in found and len(found) < MAX_PROBLEMS:
        found.append(message)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "text"
    return "non-data"


_DATA_TYPES = frozenset({str, int, float, bool, dict, list, type(None)})  # JSON: the fast path


def plain(value: Any) -> Any:
    """The value if it is data a template may see, else None (never an object, never a callable)."""
    if type(value) in _DATA_TYPES or isinstance(value, (*_SCALARS, Mapping, list, tuple, SafeScope)):
        return value
    return None


def lookup(container: Any, key: Any) -> Any:
    """``container[key]`` for a mapping, a list index (or ``length``) for a list; nothing else."""
    if type(container) is dict:  # the usual case, kept cheap: this runs for every {{name}} rendered
        try:
            value = container.get(key)
        except TypeError:
            return None
        return value if type(value) in _DATA_TYPES else plain(value)
    if isinstance(container, SafeScope):
        return container.get(key)
    if container is None:
        return None
    if isinstance(container, Mapping):
        try:
            return plain(container.get(key))
        except TypeError:  # an unhashable key
            return None
    if isinstance(container, (list, tuple)):
        if key == "length":
            return len(container)
        if isinstance(key, bool):
            return None
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
            index = int(key)
            return plain(container[index]) if 0 <= index < len(container) else None
        _note(f"'{key}' is read from a list; lists have items ({{{{#each}}}}, .0, .1 …) and length")
        return None
    _note(f"'{key}' is read from a {_kind(container)} value; only objects have fields")
    return None


class SafeScope(Scope):
    """pybars' Scope whose names resolve with :func:`lookup` (its own ``get`` falls back to getattr)."""

    def get(self, name: Any, default: Any = None) -> Any:
        if name == "@root":
            return self.root
        if name == "@_parent":
            return self.parent
        if name == "@index" and self.index is not None:
            return self.index
        if name == "@key" and self.key is not None:
            return self.key
        if name == "@first" and self.first is not None:
            return self.first
        if name == "@last" and self.last is not None:
            return self.last
        if name == "this":
            return self.context
        if self.overrides and name in self.overrides:
            return self.overrides[name]
        return lookup(self.context, name)

    __getitem__ = get


def resolve(context: Any, *segments: str) -> Any:
    """pybars' ``resolve`` (``{{a.b.0}}``, ``../``, ``@root``) with :func:`lookup` for every step."""
    if segments == ("",) and isinstance(context, Scope):
        return context.get("this")
    carryover = False
    for segment in segments:
        if carryover:
            carryover, segment = False, f"@{segment}"
        if len(segment) > 1 and segment[:2] == "@@":
            segment, carryover = segment[1:], True
        if context is None:
            return None
        if segment in (None, ""):
            continue
        context = lookup(context, segment)
    return context


def prepare(value: Any, should_escape: bool) -> Any:
    """Text for the output: strings, numbers and dates print; an object or a list prints nothing."""
    if type(value) is str:
        return escape(value) if should_escape else value
    if value is None:
        return ""
    if type(value) is strlist:  # a helper's already-rendered output (`raw`, block helpers)
        return value
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, _SCALARS):
        value = str(value)
    else:
        if isinstance(value, SafeScope):
            value = value.context
        if value is not None:
            _note(f"{'an object' if isinstance(value, Mapping) else 'a list'} is printed as text; "
                  "print one of its fields (or loop over it with {{#each}})")
        return ""
    return escape(value) if should_escape else value


def ensure_scope(context: Any, root: Any) -> SafeScope:
    return context if isinstance(context, SafeScope) else SafeScope(context, context, root)


# --- the built-in helpers, over SafeScope ------------------------------------------------------------

def _each(this: Any, options: dict, context: Any) -> Any:
    context = context.context if isinstance(context, SafeScope) else context
    if isinstance(context, Mapping):
        pairs = [(key, plain(value)) for key, value in context.items()]
    elif isinstance(context, (list, tuple)):
        pairs = [(None, plain(value)) for value in context]
    else:
        if context not in (None, "", 0, False):
            _note(f"{{{{#each}}}} loops over a {_kind(context)} value; it loops over lists and objects")
        return options["inverse"](this)
    if not pairs:
        return options["inverse"](this)
    result = strlist()
    last = len(pairs) - 1
    for index, (key, value) in enumerate(pairs):
        extra = {"key": key} if key is not None else {}
        scope = SafeScope(value, this, options["root"], index=index, first=index == 0, last=index == last, **extra)
        rendered = options["fn"](scope)
        if rendered:  # {{^each}} has no fn: it renders None
            result.grow(rendered)
    return result


def _if(this: Any, options: dict, context: Any) -> Any:
    return options["fn"](this) if context else options["inverse"](this)


def _unless(this: Any, options: dict, context: Any) -> Any:
    return options["fn"](this) if not context else None


def _with(this: Any, options: dict, context: Any) -> Any:
    return options["fn"](context)


def _lookup(this: Any, context: Any, key: Any) -> Any:
    return lookup(context, key)


def _block_helper_missing(this: Any, options: dict, context: Any) -> Any:
    """``{{#name}}…{{/name}}`` on data: a section over a list, a truthy value or an object."""
    if context != "" and not context:
        return options["inverse"](this)
    if isinstance(context, (list, tuple)):
        return _each(this, options, context)
    return options["fn"](this if context is True else context)


def _helper_missing(scope: Any, name: str, *args: Any) -> Any:
    if not args:
        return None
    raise pybars.PybarsError(f"Could not find property {name}")


def _log(this: Any, *args: Any) -> None:
    return None


_RUNTIME = {
    "resolve": resolve, "prepare": prepare, "ensure_scope": ensure_scope, "Scope": SafeScope,
    "_pybars_": {"helpers": {"each": _each, "if": _if, "unless": _unless, "with": _with, "lookup": _lookup,
                             "blockHelperMissing": _block_helper_missing, "helperMissing": _helper_missing,
                             "log": _log}},
}


def harden(fn: Callable) -> Callable:
    """Point a template compiled by pybars at this module's runtime (its blocks share the globals).

    pybars also registers each compiled template as a module in ``sys.modules``, forever: a draft is
    compiled on every preview, so a long-running web process grew without bound. The function keeps
    its globals; the registry entry is dropped.
    """
    namespace = fn.__globals__
    namespace.update(_RUNTIME)
    sys.modules.pop(namespace.get("__name__", ""), None)
    return fn


# --- compile-time check -----------------------------------------------------------------------------

_INTERNAL = {"@_parent", "@@_parent"}  # what pybars' grammar makes of ``../``


def unsafe_name(tree: Any) -> str | None:
    """The first path segment (or block name) in a parsed template that starts with ``_``.

    Such names only ever reach Python internals (``__class__``, ``_meta``); variables are JSON keys.
    """
    if isinstance(tree, tuple) and tree and tree[0] == "path":
        for segment in tree[1]:
            if isinstance(segment, str) and segment not in _INTERNAL and segment.lstrip("@").startswith("_"):
                return segment
        return None
    if isinstance(tree, tuple) and tree and tree[0] in ("block", "invertedblock", "rawblock"):
        name = tree[1]
        if isinstance(name, str) and name.lstrip("@").startswith("_"):
            return name
    if isinstance(tree, (list, tuple)):
        for node in tree:
            found = unsafe_name(node)
            if found:
                return found
    return None
