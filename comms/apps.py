from django.apps import AppConfig


class CommsConfig(AppConfig):
    name = "comms"
    verbose_name = "comms kernel"

    def ready(self) -> None:
        from comms import checks  # noqa: F401  (registers system checks)
        from comms import schema  # noqa: F401  (OpenAPI descriptions of our authenticators)

        self._bound_admin_json_fields()

    @staticmethod
    def _bound_admin_json_fields() -> None:
        """Every admin form field for a models.JSONField bounds nesting depth (comms.jsonlimits): Django's
        forms.JSONField would answer a deeply nested value with RecursionError, a 500. The defaults
        cover ModelAdmins built from now on (inlines are built per request); the loop, the ones
        autodiscover has already registered (django.contrib.admin is first in INSTALLED_APPS)."""
        from django.contrib import admin
        from django.contrib.admin import options
        from django.db import models

        from comms.jsonlimits import BoundedJSONField

        override = {"form_class": BoundedJSONField}
        options.FORMFIELD_FOR_DBFIELD_DEFAULTS[models.JSONField] = override
        for model_admin in admin.site._registry.values():
            model_admin.formfield_overrides.setdefault(models.JSONField, {}).update(override)
