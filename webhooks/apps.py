from django.apps import AppConfig

from comms.erasure import eraser_register  # no models: safe before the registry is ready
from comms.retention_policy import Kind, Pruner, pruner_register

# Retention (comms.retention): raw requests carry no tenant (the provider's account spans them), so
# only the deployment-wide period applies; one still waiting to be processed is never removed.
RAW_PRUNER = Pruner(kind=Kind.WEBHOOKS, table="webhooks_webhookevent", time_sql="t.received_at", tenant_column=None,
                    removable_sql="t.state NOT IN ('received', 'retrying')")


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from webhooks.erasure import erase_webhook_bodies

        pruner_register(RAW_PRUNER)
        eraser_register(erase_webhook_bodies)  # GDPR erasure: this app clears its own copies of a person's data
