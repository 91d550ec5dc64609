"""Shapes of the templates API."""

from rest_framework import serializers

from comms.enums import Category, Channel
from comms.serializers import StrictSerializer


class LocaleSerializer(StrictSerializer):
    locale = serializers.CharField(max_length=35, default="en-US")
    subject = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    body_html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    body_text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    push_title = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    push_body = serializers.CharField(required=False, allow_blank=True, default="")
    sms_text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    voice_text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    in_app_content = serializers.DictField(required=False, default=dict)


class TemplateWriteSerializer(StrictSerializer):
    template_key = serializers.SlugField(max_length=128)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    category = serializers.ChoiceField(choices=Category.choices, required=False)
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices), allow_empty=False, min_length=1)
    default_locale = serializers.CharField(max_length=35, required=False)
    sms_segment_cap = serializers.IntegerField(min_value=1, max_value=10, required=False)
    sms_overflow = serializers.ChoiceField(choices=["refuse", "truncate"], required=False)
    variables_schema = serializers.DictField(required=False)
    sample_variables = serializers.DictField(required=False)
    experiment = serializers.DictField(required=False)
    change_notes = serializers.CharField(required=False, allow_blank=True)
    locales = LocaleSerializer(many=True, required=False)


class TemplateEditSerializer(TemplateWriteSerializer):
    template_key = None  # the key is the URL's
    name = serializers.CharField(max_length=200, required=False)
    channels = serializers.ListField(child=serializers.ChoiceField(choices=Channel.choices), allow_empty=False, min_length=1,
                                     required=False)


class PreviewSerializer(StrictSerializer):
    variables = serializers.DictField(required=False, allow_null=True, default=None)
    locale = serializers.CharField(required=False, allow_blank=True, default="")
    version = serializers.IntegerField(required=False, min_value=1)
    recipient_id = serializers.CharField(required=False, allow_blank=True, default="",
                                         help_text="Shows the experiment variant this recipient would get.")


def version_summary(version) -> dict:
    return {
        "version": version.version, "status": version.status, "change_notes": version.change_notes,
        "review_notes": version.review_notes, "created_at": version.created_at,
        "submitted_at": version.submitted_at, "approved_at": version.approved_at,
        "activated_at": version.activated_at, "locales": [row.locale for row in version.locales.all()],
        "variables_schema": version.variables_schema, "experiment": version.experiment,
    }


def template_representation(template) -> dict:
    active = template.active_version
    return {
        "template_key": template.template_key, "name": template.name, "description": template.description,
        "category": template.category, "critical": template.critical, "channels": template.channels,
        "default_locale": template.default_locale, "trusted": template.trusted,
        "sms_segment_cap": template.sms_segment_cap, "sms_overflow": template.sms_overflow,
        "active_version": active.version if active else None,
        "versions": [version_summary(v) for v in template.versions.all().prefetch_related("locales")],
    }


class LintValidateSerializer(StrictSerializer):
    version = serializers.IntegerField(required=False, min_value=1, help_text="Default: the latest version.")


class LintOverrideSerializer(StrictSerializer):
    rule = serializers.CharField(max_length=64, help_text="The failing rule's id, e.g. A11Y_CONTRAST.")
    reason = serializers.CharField(max_length=1000, help_text="Why the rule does not apply; the approver reads it.")
    version = serializers.IntegerField(required=False, min_value=1, help_text="Default: the version pending review.")
