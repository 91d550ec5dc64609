"""The audit trail: every state-changing admin or API action, append-only."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    """Who did what to which object, with the change and why. A trigger refuses UPDATE/DELETE."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    # No database constraint and no cascade: the trail outlives users and tenants (the label stays).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                              related_name="+", db_constraint=False)
    actor_label = models.CharField(max_length=200, help_text="User name or API key prefix, kept if the user goes.")
    tenant = models.ForeignKey("comms.Tenant", null=True, blank=True, on_delete=models.DO_NOTHING, related_name="+",
                               db_constraint=False)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=255, blank=True)
    diff = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-at"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target_label}"
