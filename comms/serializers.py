"""Serializer base: unknown fields are an error, never silently dropped, and a value whose JSON type
is not the one the OpenAPI schema names is refused (DRF would turn 0 into "0" and "5" into 5)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField, empty

from comms.enums import Priority

# What the schema says each field takes; DRF's own coercion is wider than JSON Schema.
_JSON_TYPES: list[tuple[type, tuple[type, ...], str]] = [
    (serializers.BooleanField, (bool,), "a boolean"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.CharField, (str,), "a string"),
    (serializers.DateTimeField, (str,), "a string"),
    (serializers.DateField, (str,), "a string"),
    (serializers.TimeField, (str,), "a string"),
]


def json_type_problem(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` (parsed JSON) is not of the type the schema documents for ``field``; None if it is."""
    if value is None:
        return None  # allow_null (or its absence) is DRF's to judge
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        for index, item in enumerate(value):
            problem = json_type_problem(field.child, item)
            if problem:
                return f"item {index}: {problem}"
        return None
    if isinstance(field, serializers.ChoiceField) and not isinstance(field, serializers.MultipleChoiceField):
        if all(isinstance(key, str) for key in field.choices) and not isinstance(value, str):
            return "Must be a string."
        return None
    for kind, types, label in _JSON_TYPES:
        if isinstance(field, kind):
            if isinstance(value, bool) and bool not in types or not isinstance(value, types):
                return f"Must be {label}."
            return None
    return None


def json_type_errors(fields: dict[str, serializers.Field], data: dict) -> dict[str, list[str]]:
    """Per field, the JSON type mismatches of a request body (refused with 400 COMMS_VALIDATION_ERROR)."""
    wrong = {}
    for name, value in data.items():
        field = fields.get(name)
        problem = json_type_problem(field, value) if field is not None and not field.read_only else None
        if problem:
            wrong[name] = [problem]
    return wrong


class StrictSerializer(serializers.Serializer):
    """Unknown fields are refused, and a field takes only the JSON type the schema names (DRF would turn 0
    into "0")."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unknown field.", code="COMMS_UNKNOWN_FIELD")] for name in unknown}
                )
            wrong = json_type_errors(self.fields, data)
            if wrong:
                raise serializers.ValidationError(wrong)
        return super().to_internal_value(data)

    @classmethod
    def validated(cls, data: Any) -> dict:
        """``is_valid(raise_exception=True)`` and ``validated_data`` in one call, cheaply on the hot path.

        DRF deep-copies every declared field for each serializer instance (~0.5 ms for the send
        request's 15 fields, a fifth of its CPU). Validation itself needs no bound copy: the fast
        path runs the declared fields' own ``run_validation`` and the serializer's ``validate``, so
        the rules are the same code. Whatever it does not accept plainly (any error, an HTML form, a
        field kind that needs binding) goes through the full serializer, which produces every error
        message exactly as before.
        """
        fast = _fast_validated(cls, data)
        if fast is not None:
            return fast
        serializer = cls(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


_FAST_PLANS: dict[type, dict[str, serializers.Field] | None] = {}


def _shareable(field: serializers.Field, *, child: bool = False) -> bool:
    """Whether validating with the unbound declared field is the same as with DRF's bound copy: no
    nesting, no source, nothing that asks for the context, the parent or the field name. (A list's or
    dict's child is bound to its field at construction, which is what DRF validates with too.)"""
    if isinstance(field, (serializers.BaseSerializer, serializers.HiddenField, serializers.ReadOnlyField,
                          serializers.SerializerMethodField)) or field.read_only:
        return False
    if field.source is not None and not child:
        return False
    if getattr(field.default, "requires_context", False):
        return False
    if any(getattr(v, "requires_context", False) for v in field.validators):
        return False
    inner = getattr(field, "child", None)
    return inner is None or _shareable(inner, child=True)


def _fast_plan(cls: type[StrictSerializer]) -> dict[str, serializers.Field] | None:
    if cls not in _FAST_PLANS:
        fields = dict(cls._declared_fields)
        meta_validators = getattr(getattr(cls, "Meta", None), "validators", None)
        _FAST_PLANS[cls] = None if meta_validators or not all(map(_shareable, fields.values())) else fields
    return _FAST_PLANS[cls]


def _fast_validated(cls: type[StrictSerializer], data: Any) -> dict | None:
    """What DRF's ``Serializer.run_validation`` returns for `data`, or None to let DRF judge it."""
    fields = _fast_plan(cls)
    if fields is None or type(data) is not dict or not data.keys() <= fields.keys():
        return None  # a QueryDict (HTML input) reads values differently; unknown fields are an error
    if json_type_errors(fields, data):
        return None
    serializer = cls()
    validated = {}
    try:
        for name, field in fields.items():
            try:
                value = field.run_validation(data.get(name, empty))
            except SkipField:
                continue
            method = getattr(serializer, f"validate_{name}", None)
            validated[name] = method(value) if method is not None else value
        return serializer.validate(validated)
    except (serializers.ValidationError, DjangoValidationError):
        return None
    except Exception:  # anything surprising: the full serializer raises (or answers) it as it always did
        return None


# A priority as a number 0-4 or one of these names; exactly what the schema documents.
PRIORITY_NAMES = [*(f"P{n}" for n in range(5)), *(f"p{n}" for n in range(5)), *(str(n) for n in range(5)),
                  "critical", "emergency", "high", "alert", "normal", "low", "lowest"]
# Priorities name urgency (comms.enums.Priority labels); what a message is about is its category.
PRIORITY_HELP = ("Urgency: " + ", ".join(p.label for p in Priority) + " (0 most urgent). Given as 0-4, P0-P4 or "
                 "the name (emergency/critical, high, normal, low, lowest).")


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 0, "maximum": 4},
                                 {"type": "string", "enum": PRIORITY_NAMES}],
                      "description": PRIORITY_HELP})
class PriorityField(serializers.Field):
    """0-4, "P0".."P4" or a seed name; validated to the int Priority value."""

    default_error_messages = {"invalid": "priority is 0-4, P0-P4, or emergency/critical, high, normal, low, lowest."}

    def to_internal_value(self, data) -> int:
        if isinstance(data, bool) or not (isinstance(data, int) and 0 <= data <= 4
                                          or isinstance(data, str) and data in PRIORITY_NAMES):
            self.fail("invalid")
        return int(Priority.parse(data))

    def to_representation(self, value):
        return value


class RecipientSerializer(StrictSerializer):
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=20)
    locale = serializers.CharField(required=False, max_length=35)
    timezone = serializers.CharField(required=False, max_length=64)
    attributes = serializers.DictField(required=False)


class RecipientOutputSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    locale = serializers.CharField()
    timezone = serializers.CharField()
    attributes = serializers.DictField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class DeviceSerializer(StrictSerializer):
    token = serializers.RegexField(r"^[A-Za-z0-9_\-:.]{8,4096}$", max_length=4096)
    platform = serializers.ChoiceField(choices=["android", "ios", "web"])
    app_id = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class DeviceUnregisterSerializer(StrictSerializer):
    token = serializers.CharField(max_length=4096)


def device_representation(device) -> dict:
    return {"token": device.token, "platform": device.platform, "app_id": device.app_id,
            "created_at": device.created_at, "last_seen_at": device.last_seen_at,
            "disabled_at": device.disabled_at, "disabled_reason": device.disabled_reason}
