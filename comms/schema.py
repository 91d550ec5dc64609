"""OpenAPI post-processing: the schema says what the API really does (checked by schemathesis).

* Every operation documents the typed error responses it can give ({code, message, details}).
* Request bodies forbid unknown properties, because every input serializer does (StrictSerializer).
"""

from __future__ import annotations

from typing import Any

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


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for name, schema in components.items():
        if name.endswith("Request") and schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
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
