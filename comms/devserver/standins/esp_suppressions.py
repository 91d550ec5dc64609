"""The suppression-list endpoints of the ESP stand-ins, in each ESP's own JSON shapes.

* SendGrid v3: ``POST /v3/asm/suppressions/global`` ({"recipient_emails": [...]}, 201 echoes them) and
  ``GET /v3/suppression/{unsubscribes,bounces,spam_reports}?limit=&offset=`` (a bare JSON array of
  {"created": epoch, "email", ...}); SendGrid has no API to add a bounce or a spam report.
* Mailgun: ``POST /v3/{domain}/{unsubscribes,bounces,complaints}`` with a JSON array (up to 1000) and
  ``GET`` of the same, {"items": [...], "paging": {"next": url}} paged by ``page=next&address=``.
* Postmark: ``POST /message-streams/{stream}/suppressions`` ({"Suppressions": [{"EmailAddress"}]}) and
  ``GET /message-streams/{stream}/suppressions/dump`` ({"Suppressions": [{"EmailAddress",
  "SuppressionReason", "Origin", "CreatedAt"}]}).
"""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from urllib.parse import parse_qs, urlsplit

SENDGRID_LISTS = {"unsubscribes": "unsubscribes", "bounces": "bounces", "spam_reports": "complaints"}
POSTMARK_REASONS = {"unsubscribes": "ManualSuppression", "bounces": "HardBounce", "complaints": "SpamComplaint"}


class SuppressionLists:
    """ESP-side lists keyed "unsubscribes" / "bounces" / "complaints": address -> created (epoch)."""

    def __init__(self):
        self.lists: dict[str, dict[str, float]] = {"unsubscribes": {}, "bounces": {}, "complaints": {}}

    def seed(self, name: str, address: str, created: float | None = None) -> None:
        self.lists[name][address.lower()] = created or time.time()

    def handles(self, kind: str, method: str, path: str) -> bool:
        route = urlsplit(path).path
        if kind == "sendgrid":
            return route == "/v3/asm/suppressions/global" or route.startswith("/v3/suppression/")
        if kind == "mailgun":
            parts = route.split("/")
            return len(parts) == 4 and parts[3] in self.lists
        return route.startswith("/message-streams/") and "/suppressions" in route

    def answer(self, kind: str, method: str, path: str, body: bytes) -> tuple[int, object]:
        split = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return 400, {"message": "body is not JSON"}
        return getattr(self, f"_{kind}")(method, split.path, query, data)

    # -- SendGrid -------------------------------------------------------------------------------------
    def _sendgrid(self, method, route, query, data):
        if method == "POST" and route == "/v3/asm/suppressions/global":
            emails = (data or {}).get("recipient_emails")
            if not isinstance(emails, list):
                return 400, {"errors": [{"field": "recipient_emails", "message": "must be an array"}]}
            for email in emails:
                self.seed("unsubscribes", email)
            return 201, {"recipient_emails": emails}
        name = SENDGRID_LISTS.get(route.rsplit("/", 1)[-1])
        if method != "GET" or name is None:
            return 404, {"errors": [{"message": "not found"}]}
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 500))
        rows = sorted(self.lists[name].items())[offset:offset + limit]
        out = []
        for email, created in rows:
            row = {"created": int(created), "email": email}
            if name == "bounces":
                row.update(reason="550 5.1.1 The email account that you tried to reach does not exist", status="5.1.1")
            out.append(row)
        return 200, out

    # -- Mailgun --------------------------------------------------------------------------------------
    def _mailgun(self, method, route, query, data):
        domain, name = route.split("/")[2], route.split("/")[3]
        if method == "POST":
            if not isinstance(data, list):
                return 400, {"message": "Invalid JSON: expected an array of objects"}
            for item in data:
                self.seed(name, item["address"])
            return 200, {"message": f"{len(data)} addresses have been added"}
        after = query.get("address", "") if query.get("page") == "next" else ""
        limit = int(query.get("limit", 100))
        rows = [(a, c) for a, c in sorted(self.lists[name].items()) if a > after][:limit]
        items = []
        for address, created in rows:
            item = {"address": address, "created_at": formatdate(created, usegmt=True).replace("GMT", "UTC")}
            if name == "bounces":
                item.update(code="550", error="No such mailbox")
            if name == "unsubscribes":
                item["tags"] = ["*"]
            items.append(item)
        base = f"https://api.mailgun.net/v3/{domain}/{name}"
        last = rows[-1][0] if rows else after
        return 200, {"items": items, "paging": {"first": f"{base}?limit={limit}",
                                                "next": f"{base}?page=next&address={last}&limit={limit}",
                                                "previous": f"{base}?page=previous&address={after}&limit={limit}",
                                                "last": f"{base}?page=last&limit={limit}"}}

    # -- Postmark -------------------------------------------------------------------------------------
    def _postmark(self, method, route, query, data):
        if method == "POST" and route.endswith("/suppressions"):
            entries = (data or {}).get("Suppressions")
            if not isinstance(entries, list):
                return 422, {"ErrorCode": 1000, "Message": "Suppressions must be an array."}
            for entry in entries:
                self.seed("unsubscribes", entry["EmailAddress"])
            return 200, {"Suppressions": [{"EmailAddress": e["EmailAddress"], "Status": "Suppressed", "Message": None}
                                          for e in entries]}
        if method == "GET" and route.endswith("/suppressions/dump"):
            out = []
            for name, entries in self.lists.items():
                for email, created in sorted(entries.items()):
                    out.append({"EmailAddress": email, "SuppressionReason": POSTMARK_REASONS[name],
                                "Origin": "Customer" if name == "unsubscribes" else "Recipient",
                                "CreatedAt": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(created))})
            return 200, {"Suppressions": out}
        return 404, {"ErrorCode": 404, "Message": "not found"}
