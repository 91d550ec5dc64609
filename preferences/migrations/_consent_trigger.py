"""The consent ledger's UPDATE trigger, shared by the migrations that (re)create it.

Every DELETE is refused (trigger ``consentrecord_no_delete``, migration 0002). An UPDATE passes only
inside a GDPR erasure (session flag ``comms.consent_erasure``) and only when it blanks the identifying
columns and stamps ``erased_at``; any of the columns below changing is refused even then.
"""

_BASE_COLUMNS = ("id", "tenant_id", "subject_hash", "address_hash", "channel", "category", "action", "at", "source",
                 "consent_text", "legal_basis")


def append_only(*, extra_columns: tuple[str, ...]) -> str:
    """DROP + CREATE of ``consentrecord_append_only`` protecting the base columns and `extra_columns`."""
    unchanged = "".join(f"\n    OR NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _BASE_COLUMNS + extra_columns)
    return f"""
DROP TRIGGER IF EXISTS consentrecord_append_only ON preferences_consentrecord;
CREATE TRIGGER consentrecord_append_only BEFORE UPDATE ON preferences_consentrecord
  FOR EACH ROW WHEN (
    coalesce(current_setting('comms.consent_erasure', true), '') <> 'on'{unchanged}
    OR NEW.recipient_id IS NOT NULL
    OR NEW.ip IS NOT NULL
    OR NEW.user_agent <> ''
    OR NEW.erased_at IS NULL)
  EXECUTE FUNCTION comms_reject_update();
"""
