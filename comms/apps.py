from django.apps import AppConfig

from comms.retention_policy import Kind, Pruner, pruner_register

# Retention of the audit log: its trigger refuses DELETE unless the run sets comms.retention
# (transaction-local) and the row is older than the kind's 365-day minimum (comms migration 0010).
AUDIT_PRUNER = Pruner(kind=Kind.AUDIT, table="admin_console_auditentry", time_sql="t.at",
                      delete_flag="comms.retention")


class CommsConfig(AppConfig):
    name = "comms"
    verbose_name = "comms kernel"

    def ready(self) -> None:
        from comms import checks  # noqa: F401  (registers system checks)
        from comms import schema  # noqa: F401  (OpenAPI descriptions of our authenticators)

        self._bound_admin_json_fields()
        pruner_register(AUDIT_PRUNER)

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
