"""Request parsing: JSON with the request-size cap and the nesting bound enforced; ids in URLs.

DRF's JSONParser reads the raw stream, which bypasses Django's DATA_UPLOAD_MAX_MEMORY_SIZE check
(that only guards ``request.body``/``POST``); this parser applies the cap before reading, and
comms.jsonlimits' depth bound before parsing (deep nesting is a RecursionError, i.e. a 500, in
json.loads and in everything that walks the result).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from comms import errors, jsonlimits


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        if limit and declared > limit:
            raise errors.PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit}.",
                                         details={"limit_bytes": limit})
        if stream is None:
            raise ParseError("Empty body.")
        raw = stream.read(limit + 1) if limit else stream.read()
        if limit and len(raw) > limit:
            raise errors.PayloadTooLarge(f"The body is larger than {limit} bytes.", details={"limit_bytes": limit})
        try:
            return jsonlimits.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def uuid_or_404(raw: str, message: str = "No such message.") -> uuid.UUID:
    """Ids in URLs: a malformed one is simply not found."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise errors.NotFound(message) from None
