"""JSON from outside, parsed with a bound on nesting depth.

CPython's json module recurses once per nesting level, and so does any code that walks the result
(our idempotency fingerprint, Django's JSONField, PostgreSQL's jsonb input); a body of a few
hundred nested arrays — a few kilobytes — ends in RecursionError, i.e. a 500. So depth is checked
on the raw text *before* json.loads, and everything that parses JSON from a client, a provider or
an admin form goes through here. The bound (COMMS_JSON_MAX_DEPTH, default 100) is the default
``max_nesting`` of Ruby's JSON parser; real payloads need a handful of levels.
"""

from __future__ import annotations

import json
import math
from itertools import accumulate
from typing import Any

from django import forms
from django.conf import settings

from comms import errors

# Keep only brackets, and fold objects onto arrays: only the depth matters here.
_FOLD = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("]"): -1}


def max_depth() -> int:
    return int(getattr(settings, "COMMS_JSON_MAX_DEPTH", 100))


def check_depth(raw: bytes | str, limit: int | None = None) -> None:
    """Raise JsonTooDeep if `raw` nests arrays/objects more than `limit` levels deep.

    Brackets inside strings are data, not structure: escapes are dropped first (a backslash only
    occurs inside strings in JSON, RFC 8259 section 7), then every other quote-delimited segment
    is a string. All of it runs at C speed except the final running sum over the brackets.
    """
    limit = max_depth() if limit is None else limit
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if data.count(b"[") + data.count(b"{") <= limit:
        return  # cannot nest deeper than it has openers (the common case: no scan at all)
    outside = b"".join(data.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[0::2])
    skeleton = outside.translate(_FOLD, _NOT_BRACKETS)
    if max(accumulate(map(_STEP.__getitem__, skeleton)), default=0) > limit:
        raise errors.JsonTooDeep(f"The JSON nests more than {limit} levels deep.", details={"max_depth": limit})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 section 6)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999: PostgreSQL's jsonb cannot store it, and RFC 8259 says so
        raise ValueError(f"number {text[:40]} is out of range (RFC 8259 section 6)")
    return value


def loads(raw: bytes | str, limit: int | None = None) -> Any:
    """json.loads with the depth bound: JsonTooDeep, or ValueError for a syntax error as json.loads.

    NaN, Infinity and numbers that overflow to infinity are refused as RFC 8259 requires (Python
    accepts them; PostgreSQL then fails on them, which surfaced as a misleading storage error)."""
    check_depth(raw, limit)
    try:
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # unbalanced openers the scan could not pair up: still too deep to parse
        limit = max_depth() if limit is None else limit
        raise errors.JsonTooDeep(f"The JSON nests more than {limit} levels deep.",
                                 details={"max_depth": limit}) from None


class BoundedJSONField(forms.JSONField):
    """forms.JSONField with the depth bound: a too-deep value is a form error, not a 500."""

    def to_python(self, value: Any) -> Any:
        if isinstance(value, (str, bytes)) and not self.disabled:
            try:
                check_depth(value)
            except errors.JsonTooDeep as exc:
                raise forms.ValidationError(exc.message, code="json_too_deep") from None
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        if isinstance(data, str):
            try:
                check_depth(data)
            except errors.JsonTooDeep:
                return forms.fields.InvalidJSONInput(data)  # redisplayed as typed, like a syntax error
        return super().bound_data(data, initial)

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return super().has_changed(initial, data)
        except forms.ValidationError:  # formsets ask before validating: a too-deep value is a change
            return True
