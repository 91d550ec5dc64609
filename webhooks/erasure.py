"""Erasure of raw provider requests about a person (GDPR art. 17), run by the kernel's eraser registry.

Raw bodies are kept for audit and replay; those that concern the person are emptied, found by
message id, or by the identifier in the body or URL (an inbound SMS names only the number, and
form-encoded bodies spell its '+' as %2B).
"""

from __future__ import annotations

from django.db import connection

from comms.erasure import ErasureSubject


def erase_webhook_bodies(*, subject: ErasureSubject) -> dict[str, int]:
    if not subject.identifiers:
        return {"erase_webhook_bodies": 0}
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE webhooks_webhookevent SET body = '', payload = NULL, headers = '{}'::jsonb, url = '' "
            "WHERE message_id = ANY(%s) OR EXISTS (SELECT 1 FROM unnest(%s::text[]) AS ident "
            " WHERE strpos(lower(body), lower(ident)) > 0 OR strpos(lower(url), lower(ident)) > 0 "
            "    OR strpos(lower(body), lower(replace(ident, '+', '%%2B'))) > 0)",
            [subject.message_ids, subject.identifiers])
        return {"erase_webhook_bodies": cursor.rowcount}
