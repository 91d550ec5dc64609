"""Serializer base: unknown fields are an error, never silently dropped."""

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Unknown fields are refused, and a text field takes only a JSON string (DRF would turn 0 into "0")."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [serializers.ErrorDetail("Unknown field.", code="COMMS_UNKNOWN_FIELD")] for name in unknown}
                )
            wrong = [name for name, value in data.items()
                     if isinstance(self.fields[name], serializers.CharField) and value is not None
                     and not isinstance(value, str)]
            if wrong:
                raise serializers.ValidationError({name: ["Must be a string."] for name in wrong})
        return super().to_internal_value(data)


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
