"""Erasure of a person's tracking events (GDPR art. 17), run by the kernel's eraser registry.

Provider events quote the address: what identifies the person is blanked and the event itself
(type, time, provider) is kept, so delivery statistics stay whole.
"""

from __future__ import annotations

from django.db import connection

from comms.erasure import ErasureSubject


def erase_tracking_events(*, subject: ErasureSubject) -> dict[str, int]:
    """Events of the erased messages, or naming one of the identifiers, in the subject's tenant."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracking_messageevent SET recipient_address = '', ip_address = NULL, user_agent = '', "
            "reason = '', data = '{}'::jsonb, link_url = '', geo_city = '' "
            "WHERE tenant_id = %s AND (message_id = ANY(%s) OR lower(recipient_address) = ANY(%s))",
            [subject.tenant_id, subject.message_ids, [i.lower() for i in subject.identifiers]])
        return {"erase_tracking_events": cursor.rowcount}
