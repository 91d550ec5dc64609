"""The built-in category catalogue (seed 001's matrix) and the append-only consent ledger.

The consent trigger reuses ``comms_reject_update()`` (delivery 0003). It refuses every DELETE, and
every UPDATE except the one GDPR erasure performs: with the session flag ``comms.consent_erasure``
set (``SET LOCAL`` inside the erasure transaction) an UPDATE may only clear the identifying columns
and stamp ``erased_at``; any other column changing is still refused.
"""

from django.db import migrations

TRIGGER = """
CREATE TRIGGER consentrecord_no_delete BEFORE DELETE ON preferences_consentrecord
  FOR EACH ROW EXECUTE FUNCTION comms_reject_update();
CREATE TRIGGER consentrecord_append_only BEFORE UPDATE ON preferences_consentrecord
  FOR EACH ROW WHEN (
    coalesce(current_setting('comms.consent_erasure', true), '') <> 'on'
    OR NEW.id IS DISTINCT FROM OLD.id
    OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
    OR NEW.subject_hash IS DISTINCT FROM OLD.subject_hash
    OR NEW.address_hash IS DISTINCT FROM OLD.address_hash
    OR NEW.channel IS DISTINCT FROM OLD.channel
    OR NEW.category IS DISTINCT FROM OLD.category
    OR NEW.action IS DISTINCT FROM OLD.action
    OR NEW.at IS DISTINCT FROM OLD.at
    OR NEW.source IS DISTINCT FROM OLD.source
    OR NEW.consent_text IS DISTINCT FROM OLD.consent_text
    OR NEW.legal_basis IS DISTINCT FROM OLD.legal_basis
    OR NEW.recipient_id IS NOT NULL
    OR NEW.ip IS NOT NULL
    OR NEW.user_agent <> ''
    OR NEW.erased_at IS NULL)
  EXECUTE FUNCTION comms_reject_update();
"""
REVERSE = """
DROP TRIGGER IF EXISTS consentrecord_no_delete ON preferences_consentrecord;
DROP TRIGGER IF EXISTS consentrecord_append_only ON preferences_consentrecord;
"""

from preferences.migrations._catalogue import CATALOGUE


def load(apps, schema_editor):
    import datetime as dt

    Category = apps.get_model("preferences", "NotificationCategory")
    for order, (key, name, critical, marketing, doi, defaults, quiet, override) in enumerate(CATALOGUE):
        start, end = (dt.time.fromisoformat(override[0]), dt.time.fromisoformat(override[1])) if override else (None, None)
        Category.objects.update_or_create(tenant=None, key=key, defaults=dict(
            name=name, critical=critical, marketing=marketing, double_opt_in=doi, defaults=defaults,
            respects_quiet_hours=quiet, quiet_start=start, quiet_end=end, order=order,
            user_visible=key != "system",
        ))


class Migration(migrations.Migration):
    dependencies = [("preferences", "0001_initial"), ("delivery", "0003_queue_tuning")]
    operations = [
        migrations.RunSQL(TRIGGER, REVERSE),
        migrations.RunPython(load, migrations.RunPython.noop),
    ]
