"""Variable warnings at authoring time (AI-COM-002): what the sources use against what the schema declares.

Three kinds, each with where it was found (channel, locale, field) so the author can jump to it:
``VAR_UNDECLARED`` a root variable a source reads that ``variables_schema`` does not list in ``properties``
(it renders as empty, and a send never fails for it); ``VAR_UNUSED`` a declared property no source reads (a
caller must send it for nothing, or it is misspelt on one side); ``SAMPLE_MISMATCH`` / ``SAMPLE_MISSING``
``sample_variables`` that do not validate against the schema (previews then show something no real send
would). Warnings, not errors: a draft may be half-written.
"""

from __future__ import annotations

import re
from typing import Any

from comms import errors
from templates_app.models import TemplateVersion
from templates_app.rendering import referenced_variables
from templates_app.services import schema_validator, variable_errors

FIELD_CHANNEL = {"subject": "email", "body_html": "email", "body_text": "email", "push_title": "push",
                 "push_body": "push", "sms_text": "sms", "voice_text": "voice", "in_app_content": "in_app"}


def _strings(value: Any, path: str):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def version_sources(version: TemplateVersion) -> list[tuple[dict, str]]:
    """(location, source) for every part of every locale, and the experiment's variant subjects."""
    sources = []
    for row in version.locales.all().order_by("locale"):
        for name, channel in FIELD_CHANNEL.items():
            for path, text in _strings(getattr(row, name), name):
                if "{{" in text:
                    sources.append(({"channel": channel, "locale": row.locale, "field": path}, text))
    experiment = version.experiment if isinstance(version.experiment, dict) else {}
    variants = experiment.get("variants") if isinstance(experiment.get("variants"), list) else []
    for index, variant in enumerate(variants):
        if isinstance(variant, dict):
            for path, text in _strings({k: v for k, v in variant.items() if k != "key"}, f"experiment.variants[{index}]"):
                if "{{" in text:
                    sources.append(({"channel": "email", "locale": "*", "field": path}, text))
    return sources


_DOTTED = re.compile(r"(?<![\w.@/])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")
_MUSTACHE_TOKEN = re.compile(r"\{\{\{?(.*?)\}?\}\}", re.S)


def _undeclared_path(schema: dict, path: list[str]) -> str | None:
    """The first prefix of `path` the schema does not declare (None when declared or open-ended)."""
    node = schema
    for depth, key in enumerate(path):
        if not isinstance(node, dict):
            return None
        if node.get("type") == "array" and key == "length":
            return None
        props = node.get("properties")
        if not isinstance(props, dict) or node.get("additionalProperties") not in (False, None) and key not in props:
            return None  # no properties listed, or extra properties allowed: not ours to judge
        if key not in props:
            return ".".join(path[:depth + 1])
        node = props[key]
    return None


def _nested_undeclared(schema: dict, roots: set[str], source: str) -> set[str]:
    """Dotted paths under declared roots that the schema does not declare (``order.totl``). Words inside
    ``{{#each}}`` blocks are item-relative and may collide with a root name: only root-level tokens count."""
    found: set[str] = set()
    depth = 0
    for match in _MUSTACHE_TOKEN.finditer(source):
        inner = match.group(1).strip()
        if inner.startswith(("#each", "#with")):
            depth += 1
        elif inner.startswith(("/each", "/with")):
            depth = max(0, depth - 1)
        if depth and not inner.startswith(("#each", "#with")):
            continue
        for word in _DOTTED.findall(re.sub(r'"[^"]*"|\'[^\']*\'', "", inner)):
            parts = word.split(".")
            if parts[0] in roots:
                missing = _undeclared_path(schema, parts)
                if missing:
                    found.add(missing)
    return found


def version_variable_warnings(version: TemplateVersion) -> dict:
    """Warnings for a version (any status: an approver sees them too)."""
    schema = version.variables_schema if isinstance(version.variables_schema, dict) else {}
    declared = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    used: dict[str, list[dict]] = {}
    nested: dict[str, list[dict]] = {}
    for location, source in version_sources(version):
        roots = referenced_variables(source)
        for name in sorted(roots):
            used.setdefault(name, []).append(location)
        for path in sorted(_nested_undeclared(schema, roots & set(declared), source)):
            nested.setdefault(path, []).append(location)
    warnings: list[dict] = []
    for name, locations in sorted(used.items()):
        if name not in declared:
            warnings.append({"code": "VAR_UNDECLARED", "variable": name, "locations": locations,
                             "message": f"'{name}' is used but not declared in variables_schema.properties."})
    for path, locations in sorted(nested.items()):
        warnings.append({"code": "VAR_UNDECLARED", "variable": path, "locations": locations,
                         "message": f"'{path}' is used but the variables_schema does not declare it."})
    for name in sorted(declared):
        if name not in used:
            warnings.append({"code": "VAR_UNUSED", "variable": name, "locations": [{"field": "variables_schema"}],
                             "message": f"'{name}' is declared in variables_schema but no content uses it."})
    sample = version.sample_variables
    try:
        validator = schema_validator(schema)
    except errors.CommsError as exc:
        warnings.append({"code": "SCHEMA_INVALID", "variable": "", "locations": [{"field": "variables_schema"}],
                         "message": exc.message})
        validator = None
    if not isinstance(sample, dict):
        warnings.append({"code": "SAMPLE_MISMATCH", "variable": "", "locations": [{"field": "sample_variables"}],
                         "message": "sample_variables must be a JSON object."})
    elif validator is not None:
        for problem in variable_errors(validator, sample):
            missing = isinstance(problem, errors.TemplateMissingVar)
            warnings.append({"code": "SAMPLE_MISSING" if missing else "SAMPLE_MISMATCH",
                             "variable": problem.details.get("variable", ""), "rule": problem.details.get("rule", "required"),
                             "locations": [{"field": "sample_variables"}], "message": problem.message})
    return {"version": version.version, "status": version.status, "used": sorted(used), "declared": sorted(declared),
            "warnings": warnings}
