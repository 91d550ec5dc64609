"""One policy for links in rendered content, whatever the channel (email href/src, in-app deep links).

Email allows http(s), mailto, tel, cid and anchors; anything else becomes ``#`` (EC-COM-005). A link an
app opens (an in-app ``deep_link``, an action's ``url``) may also be app-relative (``/orders/1``) or use
the app's own scheme (``myapp://orders/1``, as docs/api.md shows), but never a scheme a browser or web
view executes or reads local data with (``javascript:``, ``data:``, ``file:`` …): the inbox UI that
shows the item may well be a web view.

Values are probed as a browser reads them: HTML entities decoded and ASCII whitespace/control
characters removed (``java&#x09;script:`` is ``javascript:`` to an HTML parser, WHATWG URL §4.4).
"""

from __future__ import annotations

import html
import re
from typing import Any

SAFE_SCHEMES = ("http:", "https:", "mailto:", "tel:", "cid:")
# Script-capable or local-data schemes (WHATWG Fetch "scheme fetch", browsers' own pseudo-schemes).
SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "livescript", "data", "file", "blob", "filesystem", "about",
                            "jar", "view-source", "intent", "chrome", "resource", "ms-appx", "ms-appdata"})
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
# Keys of in-app JSON whose values are links: link, deep_link, url, action_url, href, image, icon_url …
LINK_KEY = re.compile(r"(?:^|[_\-])(?:url|uri|link|href|src|image|icon)$", re.I)


def _probe(text: str) -> str:
    return re.sub(r"[\x00-\x20]+", "", html.unescape(text)).lower()


def safe_url(value: Any) -> str:
    """The email policy: the value, or ``#`` when it is not http(s)/mailto/tel/cid or an anchor."""
    text = "" if value is None else str(value)
    probe = _probe(text)
    return text if not probe or probe.startswith(SAFE_SCHEMES) or probe.startswith("#") else "#"


def safe_link(value: Any) -> str:
    """The app-link policy: email's, plus app-relative paths and app schemes; a script scheme is ``#``."""
    text = "" if value is None else str(value)
    probe = _probe(text)
    scheme = _SCHEME.match(probe)
    if scheme is None:  # no scheme: an anchor or a relative path (":" only after a "/", "?" or "#")
        head = re.split(r"[/?#]", probe, maxsplit=1)[0]
        return text if ":" not in head else "#"
    return "#" if scheme.group(1) in SCRIPT_SCHEMES else text


def is_link_key(key: Any) -> bool:
    return isinstance(key, str) and bool(LINK_KEY.search(key))
