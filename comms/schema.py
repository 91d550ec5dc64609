"""OpenAPI post-processing: the schema says what the API really does (checked by schemathesis).

* Every operation documents the typed error responses it can give ({code, message, details}).
* Request bodies forbid unknown properties, because every input serializer does (StrictSerializer).
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as _SpectacularAutoSchema


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "comms.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer ck_…`"}


class InboxTokenScheme(OpenApiAuthenticationExtension):
    target_class = "delivery.inbox.InboxTokenAuthentication"
    name = "inboxToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Authorization: Inbox <token>` (a per-recipient token from POST /api/v1/inbox-tokens)"}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "pattern": "^COMMS_[A-Z_]+$"},
        "message": {"type": "string"},
        "details": {"type": "object", "additionalProperties": True},
    },
}
_ALWAYS = {"400": "Invalid request", "401": "No valid credentials", "403": "Missing scope",
           "404": "Not found", "429": "Rate limited (Retry-After)", "503": "Database unavailable (Retry-After)"}
_WRITES = {"409": "Conflicts with the current state", "413": "Body too large", "415": "Send JSON",
           "422": "Well-formed but not acceptable (unknown template, recipient, unsafe URL, ...)"}


_NO_NUL = "^[^\\u0000]*$"  # text fields refuse NUL characters (PostgreSQL cannot store them)
_BULK_RECIPIENT = {
    "type": "object", "additionalProperties": False,
    "properties": {"to": {"type": "string", "pattern": _NO_NUL}, "recipient_id": {"type": "string", "pattern": _NO_NUL},
                   "variables": {"type": "object"}, "metadata": {"type": "object"}},
}


def _one_of_required(schema: dict[str, Any], names: list[str]) -> None:
    """Either field must be non-empty: one full branch per field (closed, like the parent)."""
    props = schema["properties"]
    schema["anyOf"] = [{"required": [name], "additionalProperties": False,
                        "properties": {**props, name: {**props[name], "minLength": 1}}} for name in names]
# Webhook URLs: http(s), a DNS name or address of valid length, an optional port and path.
_URL_PATTERN = r"^https?://([a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?\.){1,3}[a-z]{2,12}(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~/-]{0,200})?$"


def _close_strings(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        if prop.get("type") == "string" and not ({"enum", "format", "pattern"} & prop.keys()):
            prop["pattern"] = _NO_NUL
        elif prop.get("type") == "array" and prop.get("items", {}).get("type") == "string":
            prop["items"].setdefault("pattern", _NO_NUL)


def _request_components(components: dict[str, Any]) -> None:
    import zoneinfo

    for name, schema in components.items():
        if name.endswith("Request") and schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
            _close_strings(schema)
            if name == "MessageCreateRequest":
                _one_of_required(schema, ["to", "recipient_id"])
            if name == "BulkCreateRequest":
                schema["properties"]["recipients"]["items"] = _BULK_RECIPIENT
            if "timezone" in schema["properties"]:
                schema["properties"]["timezone"] = {"type": "string", "enum": sorted(zoneinfo.available_timezones())}
            url = schema["properties"].get("url")
            if url and url.get("format") == "uri":
                url["pattern"] = _URL_PATTERN


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    _request_components(components)
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            codes = dict(_ALWAYS)
            if method in ("post", "put", "patch", "delete"):
                codes.update(_WRITES)
            if method == "get":
                codes["422"] = _WRITES["422"]
            for code, description in codes.items():
                operation["responses"].setdefault(code, {
                    "description": description, "content": {"application/json": {"schema": ref}},
                })
    return result


class AutoSchema(_SpectacularAutoSchema):
    """Unique operation ids for plain APIViews: a collection GET is ``…_list`` (not ``…_retrieve``,
    which its item view also gets), and a POST on a path with parameters names them."""

    def get_operation_id(self) -> str:
        op = super().get_operation_id()
        path = self.path.rstrip("/")
        params = re.findall(r"\{(\w+)\}", path)
        if self.method == "GET" and not path.endswith("}") and op.endswith("_retrieve"):
            return op[: -len("_retrieve")] + "_list"
        if self.method == "POST" and params and op.endswith("_create"):
            return op + "_" + "_".join(params)
        return op
