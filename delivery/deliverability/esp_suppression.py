"""One small client per ESP for its suppression list: push our entries, list theirs.

Wire formats follow each ESP's API reference:
* SendGrid v3: global unsubscribes ``POST /asm/suppressions/global``; lists ``GET /suppression/
  {unsubscribes,bounces,spam_reports}`` (limit/offset). SendGrid has no endpoint to add a bounce or a
  spam report, so every reason is pushed as a global unsubscribe (it stops all mail to the address).
* Mailgun: ``POST /v3/{domain}/{unsubscribes,bounces,complaints}`` (JSON array, at most 1000 entries)
  and ``GET`` of the same, paged through ``paging.next``.
* Postmark: ``POST /message-streams/{stream}/suppressions`` (at most 50 per call; the API only adds
  "ManualSuppression") and ``GET …/suppressions/dump``.
* Amazon SES v2 account-level list through boto3: ``put_suppressed_destination`` (reasons BOUNCE or
  COMPLAINT only: an unsubscribe is pushed as COMPLAINT, the reason that stops every mail) and
  ``list_suppressed_destinations``.
Every failure becomes a typed error: COMMS_ESP_SYNC_FAILED (HTTP error, timeout, connection) or
COMMS_ESP_SYNC_MALFORMED (an answer whose shape we do not know); the sync retries later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from email.utils import parsedate_to_datetime
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from comms import errors

UNSUBSCRIBE, COMPLAINT, HARD_BOUNCE, INVALID = "unsubscribe", "complaint", "hard_bounce", "invalid"


@dataclass(frozen=True)
class Entry:
    address: str
    reason: str  # a preferences SuppressionReason value
    at: datetime | None = None
    detail: str = ""


def _malformed(esp: str, what: str) -> errors.CommsError:
    return errors.EspSyncMalformed(f"{esp}: {what}", details={"esp": esp})


class HttpEsp:
    """Plumbing shared by the HTTP ESPs: one client, typed errors for status codes and transport faults."""

    name = ""

    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.base = config["api_url"].rstrip("/") + "/"
        self.http = httpx.Client(timeout=settings.COMMS_SUPPRESSION_SYNC_TIMEOUT, headers=self.auth_headers(),
                                 auth=self.auth())

    def auth_headers(self) -> dict[str, str]:
        return {}

    def auth(self):
        return None

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.http.request(method, self.base + path.lstrip("/"), **kwargs)
        except httpx.TimeoutException as exc:
            raise errors.EspSyncFailed(f"{self.name}: timed out ({exc})", details={"esp": self.name,
                                                                                 "kind": "timeout"}) from None
        except httpx.HTTPError as exc:
            raise errors.EspSyncFailed(f"{self.name}: {type(exc).__name__}: {exc}",
                                       details={"esp": self.name, "kind": "transport"}) from None
        if response.status_code >= 400:
            raise errors.EspSyncFailed(f"{self.name}: HTTP {response.status_code} on {method} {path}",
                                       details={"esp": self.name, "kind": "http", "status": response.status_code,
                                                "body": response.text[:300]})
        try:
            return response.json()
        except ValueError:
            raise _malformed(self.name, f"{method} {path} answered non-JSON: {response.text[:120]!r}") from None


def _epoch(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, dt_timezone.utc) if isinstance(value, (int, float)) else None


def _email(row: Any, key: str, esp: str) -> str:
    if not isinstance(row, dict) or not isinstance(row.get(key), str) or "@" not in row[key]:
        raise _malformed(esp, f"an entry without a usable {key!r}: {str(row)[:120]}")
    return row[key]


class SendGrid(HttpEsp):
    name = "sendgrid"
    LISTS = {"unsubscribes": UNSUBSCRIBE, "bounces": HARD_BOUNCE, "spam_reports": COMPLAINT}
    PAGE = 500

    def auth_headers(self):
        return {"Authorization": f"Bearer {self.config['api_key']}"}

    def push(self, entries: list[Entry]) -> None:
        emails = [e.address for e in entries]
        for i in range(0, len(emails), 1000):
            answer = self.call("POST", "asm/suppressions/global", json={"recipient_emails": emails[i:i + 1000]})
            if not isinstance(answer, dict) or not isinstance(answer.get("recipient_emails"), list):
                raise _malformed(self.name, "global unsubscribe answer without recipient_emails")

    def pull(self) -> Iterator[Entry]:
        for path, reason in self.LISTS.items():
            offset = 0
            while True:
                rows = self.call("GET", f"suppression/{path}", params={"limit": self.PAGE, "offset": offset})
                if not isinstance(rows, list):
                    raise _malformed(self.name, f"suppression/{path} is not a JSON array")
                for row in rows:
                    address = _email(row, "email", self.name)
                    if reason == HARD_BOUNCE and str(row.get("status", "5")).startswith("4"):
                        continue  # a 4.x.x status is a soft bounce: not a suppression here
                    yield Entry(address, reason, _epoch(row.get("created")), str(row.get("reason", ""))[:300])
                if len(rows) < self.PAGE:
                    break
                offset += self.PAGE


class Mailgun(HttpEsp):
    name = "mailgun"
    LISTS = {"unsubscribes": UNSUBSCRIBE, "bounces": HARD_BOUNCE, "complaints": COMPLAINT}
    PAGE = 300

    def auth(self):
        return ("api", self.config["api_key"])

    def push(self, entries: list[Entry]) -> None:
        domain = self.config["domain"]
        by_list: dict[str, list[dict]] = {"unsubscribes": [], "bounces": [], "complaints": []}
        for e in entries:
            if e.reason in (HARD_BOUNCE, INVALID):
                by_list["bounces"].append({"address": e.address, "code": "550", "error": e.detail or "hard bounce"})
            elif e.reason == COMPLAINT:
                by_list["complaints"].append({"address": e.address})
            else:
                by_list["unsubscribes"].append({"address": e.address, "tag": "*"})
        for name, items in by_list.items():
            for i in range(0, len(items), 1000):
                answer = self.call("POST", f"{domain}/{name}", json=items[i:i + 1000])
                if not isinstance(answer, dict) or "message" not in answer:
                    raise _malformed(self.name, f"{name} answer without a message")

    def pull(self) -> Iterator[Entry]:
        domain = self.config["domain"]
        for name, reason in self.LISTS.items():
            params: dict[str, Any] = {"limit": self.PAGE}
            while True:
                answer = self.call("GET", f"{domain}/{name}", params=params)
                items = answer.get("items") if isinstance(answer, dict) else None
                if not isinstance(items, list):
                    raise _malformed(self.name, f"{name} answer without items")
                for item in items:
                    address = _email(item, "address", self.name)
                    try:
                        at = parsedate_to_datetime(item.get("created_at", "").replace("UTC", "GMT"))
                    except (TypeError, ValueError):
                        at = None
                    yield Entry(address, reason, at, str(item.get("error", ""))[:300])
                next_url = (answer.get("paging") or {}).get("next", "")
                if not items or not next_url:
                    break
                # The next page's query, asked of our configured base (the same API, maybe a proxy).
                params = {k: v[0] for k, v in parse_qs(urlsplit(next_url).query).items()}


class Postmark(HttpEsp):
    name = "postmark"
    REASONS = {"HardBounce": HARD_BOUNCE, "SpamComplaint": COMPLAINT, "ManualSuppression": UNSUBSCRIBE}

    def auth_headers(self):
        return {"X-Postmark-Server-Token": self.config["api_key"], "Accept": "application/json"}

    def push(self, entries: list[Entry]) -> None:
        stream = self.config.get("stream") or "outbound"
        for i in range(0, len(entries), 50):
            batch = [{"EmailAddress": e.address} for e in entries[i:i + 50]]
            answer = self.call("POST", f"message-streams/{stream}/suppressions", json={"Suppressions": batch})
            results = answer.get("Suppressions") if isinstance(answer, dict) else None
            if not isinstance(results, list):
                raise _malformed(self.name, "suppressions answer without Suppressions")
            failed = [r for r in results if isinstance(r, dict) and r.get("Status") == "Failed"]
            if failed:
                raise errors.EspSyncFailed(f"postmark refused {len(failed)} address(es): {failed[0].get('Message')}",
                                           details={"esp": self.name, "kind": "refused"})

    def pull(self) -> Iterator[Entry]:
        stream = self.config.get("stream") or "outbound"
        answer = self.call("GET", f"message-streams/{stream}/suppressions/dump")
        rows = answer.get("Suppressions") if isinstance(answer, dict) else None
        if not isinstance(rows, list):
            raise _malformed(self.name, "dump answer without Suppressions")
        for row in rows:
            address = _email(row, "EmailAddress", self.name)
            reason = self.REASONS.get(row.get("SuppressionReason"))
            if reason is None:
                raise _malformed(self.name, f"unknown SuppressionReason {row.get('SuppressionReason')!r}")
            try:
                at = datetime.fromisoformat(row["CreatedAt"]) if row.get("CreatedAt") else None
            except (TypeError, ValueError):
                at = None
            yield Entry(address, reason, at, f"Postmark {row.get('SuppressionReason')} ({row.get('Origin', '')})")


class Ses:
    """The SES v2 account-level suppression list through boto3 (endpoint_url for the loopback stand-in)."""

    name = "ses"

    def __init__(self, config: dict[str, Any]):
        timeout = settings.COMMS_SUPPRESSION_SYNC_TIMEOUT
        self.client = boto3.client("sesv2", region_name=config.get("region_name") or "us-east-1",
                                   endpoint_url=config.get("endpoint_url") or None,
                                   config=Config(connect_timeout=timeout, read_timeout=timeout,
                                                 retries={"total_max_attempts": 1}))  # the sync itself retries later

    def close(self) -> None:
        self.client.close()

    def _call(self, name: str, **kwargs) -> dict:
        try:
            return getattr(self.client, name)(**kwargs)
        except ClientError as exc:
            raise errors.EspSyncFailed(f"ses: {exc}", details={"esp": "ses", "kind": "http",
                                                                "status": exc.response.get("ResponseMetadata", {})
                                                                .get("HTTPStatusCode")}) from None
        except (BotoCoreError, OSError) as exc:
            raise errors.EspSyncFailed(f"ses: {type(exc).__name__}: {exc}",
                                       details={"esp": "ses", "kind": "transport"}) from None

    def push(self, entries: list[Entry]) -> None:
        for e in entries:
            reason = "BOUNCE" if e.reason in (HARD_BOUNCE, INVALID) else "COMPLAINT"
            self._call("put_suppressed_destination", EmailAddress=e.address, Reason=reason)

    def pull(self) -> Iterator[Entry]:
        kwargs: dict[str, Any] = {"Reasons": ["BOUNCE", "COMPLAINT"], "PageSize": 1000}
        while True:
            page = self._call("list_suppressed_destinations", **kwargs)
            for row in page.get("SuppressedDestinationSummaries", []):
                address = _email(row, "EmailAddress", "ses")
                reason = {"BOUNCE": HARD_BOUNCE, "COMPLAINT": COMPLAINT}.get(row.get("Reason"))
                if reason is None:
                    raise _malformed("ses", f"unknown Reason {row.get('Reason')!r}")
                yield Entry(address, reason, row.get("LastUpdateTime"), f"SES account-level list ({row['Reason']})")
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]


CLIENTS = {"sendgrid": SendGrid, "mailgun": Mailgun, "postmark": Postmark, "ses": Ses}


def esp_client(name: str):
    """The client for ESP `name`, configured from COMMS_SUPPRESSION_SYNC."""
    if name not in CLIENTS:
        raise errors.ValidationFailed(f"Unknown ESP {name!r} in COMMS_SUPPRESSION_SYNC_ESPS.",
                                      details={"allowed": sorted(CLIENTS)})
    return CLIENTS[name](settings.COMMS_SUPPRESSION_SYNC.get(name, {}))
