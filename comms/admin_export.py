"""CSV exports from admin change lists (audit log, suppressions): streamed, and safe to open in a spreadsheet.

In the kernel so every app's admin.py can export without importing the console (imports run downward)."""

from __future__ import annotations

import csv
import json
from typing import Iterable

from django.http import StreamingHttpResponse


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(*, filename: str, header: list[str], rows: Iterable) -> StreamingHttpResponse:
    """Stream rows as CSV (an export of a million audit rows never sits in memory)."""
    writer = csv.writer(_Echo())
    body = (writer.writerow(row) for row in _prefixed(header, rows))
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _prefixed(header, rows):
    yield header
    for row in rows:
        yield [_cell(v) for v in row]


def _cell(value) -> str:
    """Values as text; a leading =, +, - or @ is quoted so spreadsheets never run it as a formula."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
