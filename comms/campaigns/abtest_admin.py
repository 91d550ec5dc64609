"""The A/B parts of the campaign admin: the sample-then-winner settings in the campaign form, and the
"decide now" button on a running campaign's page.

The form only shapes the API's ``ab_test`` object; ``abtest_config_clean`` (through the campaign
service's validation) is the one check, and its typed errors are shown on the field they concern.
The button posts to ``campaign_abtest_decide_now``, the same service as the API, with the signed-in
user as the audited actor.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from comms import errors
from comms.audit import client_ip
from comms.campaigns.abtest import METRICS, abtest_due_at, campaign_abtest_decide_now
from comms.campaigns.models import Campaign

# form field → key of the campaign's ab_test object
AB_KEYS = {"ab_sample_percent": "sample_percent", "ab_wait_hours": "wait_hours", "ab_metric": "metric",
           "ab_min_sample": "min_sample", "ab_control": "control", "ab_default_variant": "default_variant",
           "ab_mde": "mde"}
# typed error of abtest_config_clean → the field it is about
_ERROR_FIELDS = {"COMMS_AB_BAD_SAMPLE": "ab_sample_percent", "COMMS_AB_WAIT_TOO_LONG": "ab_wait_hours",
                 "COMMS_AB_BAD_METRIC": "ab_metric"}
AB_FIELDSET = ("A/B test: a sample, then the winner", {"fields": ("ab_enabled", *AB_KEYS)})


class AbTestFields(forms.Form):
    """Declared fields mixed into the campaign form (no limits here: the service's rules decide)."""

    ab_enabled = forms.BooleanField(
        required=False, label="A/B test",
        help_text="Send each variant of the template's experiment to a sample, wait, then send the winner to "
                  "the rest.")
    ab_sample_percent = forms.FloatField(required=False, initial=10, label="Sample per variant (%)",
                                         help_text="1–50 % of the audience per variant.")
    ab_wait_hours = forms.FloatField(required=False, initial=4, label="Wait (hours)",
                                     help_text="From the start until the winner is chosen (at most 168).")
    ab_metric = forms.ChoiceField(required=False, initial="open", label="Metric",
                                  choices=[(m, m) for m in METRICS])
    ab_min_sample = forms.IntegerField(required=False, initial=100, label="Minimum sample",
                                       help_text="Sends per variant below which the default variant goes.")
    ab_control = forms.CharField(required=False, max_length=64, label="Control variant",
                                 help_text="Blank: the first variant.")
    ab_default_variant = forms.CharField(required=False, max_length=64, label="Default variant (tie rule)",
                                         help_text="Sent when no variant wins significantly. Blank: the control.")
    ab_mde = forms.FloatField(required=False, initial=0.02, label="Minimum detectable effect",
                              help_text="Absolute lift the sample must be able to detect, e.g. 0.02 = 2 points.")

    def ab_initial(self, cfg: dict[str, Any]) -> None:
        if cfg:
            self.initial.update({"ab_enabled": True, **{f: cfg[k] for f, k in AB_KEYS.items() if k in cfg}})

    def ab_body(self, data: dict[str, Any]) -> dict[str, Any]:
        """The API's ab_test object from the cleaned fields ({} when the test is off)."""
        if not data.get("ab_enabled"):
            return {}
        return {k: data[f] for f, k in AB_KEYS.items() if data.get(f) not in (None, "")}


def ab_form_error(exc: errors.CommsError) -> forms.ValidationError | None:
    """A typed A/B error as an error on its field (None: not an A/B error)."""
    field = _ERROR_FIELDS.get(exc.code)
    if exc.code == "COMMS_AB_UNKNOWN_VARIANT":
        variant = (exc.details or {}).get("variant") if isinstance(exc.details, dict) else None
        field = "ab_enabled" if variant is None else "ab_default_variant"
    elif exc.code in ("COMMS_VALIDATION_ERROR", "COMMS_UNKNOWN_FIELD") and "mde" in exc.message:
        field = "ab_mde"
    elif exc.code == "COMMS_VALIDATION_ERROR" and "min_sample" in exc.message:
        field = "ab_min_sample"
    return forms.ValidationError({field: f"{exc.code}: {exc.message}"}) if field else None


def ab_decide_context(campaign: Campaign | None) -> dict[str, Any]:
    """What the change page needs to offer "decide now" (nothing once decided or without a test)."""
    cfg = dict(campaign.ab_test or {}) if campaign is not None else {}
    if not cfg or cfg.get("winner") or campaign.state not in (Campaign.State.RUNNING, Campaign.State.PAUSED):
        return {}
    return {"ab_decide": {"variants": cfg.get("variants", []), "due": abtest_due_at(campaign),
                          "metric": cfg.get("metric", "open")}}


def abtest_decide_view(request: HttpRequest, object_id: str) -> HttpResponseRedirect:
    """POST from the campaign page: decide now by the rules, or force the chosen variant with a reason."""
    back = HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[object_id]))
    campaign = Campaign.objects.filter(pk=object_id).first() if is_uuid(object_id) else None
    if campaign is None:
        messages.error(request, "No such campaign.")
        return back
    if not request.user.has_perm("campaigns.change_campaign"):
        messages.error(request, "Deciding an A/B test needs the permission to change campaigns.")
        return back
    variant = request.POST.get("ab_variant", "").strip() or None
    try:
        cfg = campaign_abtest_decide_now(tenant=campaign.tenant, campaign_id=campaign.pk, variant=variant,
                                         reason=request.POST.get("ab_reason", ""), actor=request.user,
                                         ip=client_ip(request))
    except errors.CommsError as exc:
        messages.error(request, f"{campaign.name}: {exc.code}: {exc.message}")
    else:
        messages.success(request, f"{campaign.name}: winner {cfg['winner']} ({cfg['winner_reason']}); "
                                  "the rest is being sent.")
    return back


def is_uuid(raw: str) -> bool:
    try:
        uuid.UUID(str(raw))
    except ValueError:
        return False
    return True
