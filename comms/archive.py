"""Archive of expired rows in S3-compatible object storage, and reading it back for an audit.

Layout under ``COMMS_ARCHIVE_PREFIX``: ``<kind>/<tenant id>/<YYYY-MM-DD>/<run>-<seq>.jsonl.gz``, one
gzip JSON Lines part per retention batch and (tenant, day) — each line ``{"table", "at", "row"}``
with the row as PostgreSQL's ``to_jsonb`` wrote it, children (delivery logs) next to their parent —
and one manifest per (kind, tenant, day, run), ``<run>.manifest.json``, listing every part with its
row counts per table, sha256, size and time range. The manifest is rewritten after each part, so a
part not in a manifest was never followed by a DELETE (its batch rolled back) and restore ignores it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from comms.errors import ArchiveCorrupt, ArchiveUnavailable


class S3Archive:
    """Writes and reads archive parts through boto3 (any S3 API: AWS, MinIO, Ceph, moto)."""

    def __init__(self, *, bucket: str, prefix: str = "comms-archive", endpoint_url: str | None = None,
                 region: str | None = None, client: Any = None):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.location = f"s3://{bucket}/{self.prefix}"
        if client is None:
            import boto3
            from botocore.config import Config

            # Fail fast: an unreachable store must stop the run in seconds, not hang a beat task.
            client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None,
                                  config=Config(connect_timeout=5, read_timeout=30,
                                                retries={"max_attempts": 2, "mode": "standard"}))
        self.client = client
        self._manifests: dict[tuple[str, str, str, str], dict] = {}
        self._seq = 0

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveUnavailable(details={"location": self.location, "error": str(exc)[:300]}) from exc

    def put_batch(self, *, kind: str, run_id: str, groups: dict[tuple[str, str], list[dict]]) -> int:
        """Write one part per (tenant, day) group, then its manifest; the count of parent rows written."""
        written = 0
        for (tenant, day), lines in groups.items():
            self._seq += 1
            base = f"{self.prefix}/{kind}/{tenant}/{day}/{run_id}"
            key = f"{base}-{self._seq:06d}.jsonl.gz"
            raw = "".join(json.dumps(line, separators=(",", ":"), default=str) + "\n" for line in lines)
            body = gzip.compress(raw.encode(), compresslevel=6, mtime=0)
            counts: dict[str, int] = {}
            for line in lines:
                counts[line["table"]] = counts.get(line["table"], 0) + 1
            times = [line["at"] for line in lines if "at" in line]
            self._put(key, body, "application/gzip")
            manifest = self._manifests.setdefault((kind, tenant, day, run_id), {
                "kind": kind, "tenant": tenant, "day": day, "run": run_id, "format": "jsonl+gzip",
                "parts": [], "rows": {}, "time_range": [None, None]})
            manifest["parts"].append({"key": key, "rows": counts, "sha256": hashlib.sha256(body).hexdigest(),
                                      "bytes": len(body), "time_range": [min(times), max(times)]})
            for table, n in counts.items():
                manifest["rows"][table] = manifest["rows"].get(table, 0) + n
            lo, hi = manifest["time_range"]
            manifest["time_range"] = [min(filter(None, [lo, min(times)])), max(filter(None, [hi, max(times)]))]
            self._put(f"{base}.manifest.json", json.dumps(manifest, indent=1).encode(), "application/json")
            written += len(times)
        return written

    def manifests(self, *, kind: str, day: str, tenant: str | None = None) -> list[dict]:
        """Every manifest of `kind` for `day` (one tenant's or all)."""
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = f"{self.prefix}/{kind}/{tenant}/{day}/" if tenant else f"{self.prefix}/{kind}/"
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith(".manifest.json") and f"/{day}/" in key:
                        found.append(json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()))
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveUnavailable(details={"location": self.location, "error": str(exc)[:300]}) from exc
        return found

    def read(self, manifest: dict) -> Iterator[dict]:
        """The lines of every part a manifest lists, each part checked against its sha256 first."""
        for part in manifest["parts"]:
            body = self.client.get_object(Bucket=self.bucket, Key=part["key"])["Body"].read()
            if hashlib.sha256(body).hexdigest() != part["sha256"]:
                raise ArchiveCorrupt(details={"key": part["key"]})
            for line in io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(body)), encoding="utf-8"):
                yield json.loads(line)


def archive_from_settings() -> S3Archive | None:
    """The configured archive, or None when ``COMMS_ARCHIVE_BUCKET`` is empty (archiving off)."""
    if not settings.COMMS_ARCHIVE_BUCKET:
        return None
    return S3Archive(bucket=settings.COMMS_ARCHIVE_BUCKET, prefix=settings.COMMS_ARCHIVE_PREFIX,
                     endpoint_url=settings.COMMS_ARCHIVE_ENDPOINT_URL, region=settings.COMMS_ARCHIVE_REGION)
