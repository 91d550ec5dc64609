"""Templates: a key-level Template, immutable TemplateVersions, per-locale content, approvals.

A version is editable only while it is a draft; submitting freezes it. Exactly one version of a
template is active (``Template.active_version``); rollback points that back at an earlier
approved version. Messages keep the version they were rendered from.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from comms.enums import Category, Channel

CRITICAL_CATEGORIES = (Category.SECURITY, Category.LEGAL)


def creator_label(obj: models.Model) -> str:
    """Who made a template or version: the staff user, or the API key (name and prefix) it came through."""
    if obj.created_by_id:
        return str(obj.created_by)
    if obj.created_by_key_id:
        key = obj.created_by_key
        return f"API key {key.name} ({key.prefix}…)"
    return ""


class Template(models.Model):
    tenant = models.ForeignKey("comms.Tenant", on_delete=models.CASCADE, related_name="templates")
    template_key = models.SlugField(max_length=128, help_text="Programmatic name, e.g. order_confirmation.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=32, choices=Category.choices, default=Category.TRANSACTIONAL)
    channels = ArrayField(models.CharField(max_length=16, choices=Channel.choices), default=list)
    default_locale = models.CharField(max_length=35, default="en-US")
    trusted = models.BooleanField(default=False, help_text="May emit unescaped HTML (raw helper). Needs the "
                                                            "'use raw HTML' permission to set.")
    sms_segment_cap = models.PositiveSmallIntegerField(default=3)
    sms_overflow = models.CharField(max_length=8, choices=[("refuse", "Refuse"), ("truncate", "Truncate")],
                                    default="refuse")
    active_version = models.ForeignKey("TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # Templates made through the API have no user behind them: the API key that made them is the actor.
    created_by_key = models.ForeignKey("comms.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", verbose_name="created by API key")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "template_key"], name="template_unique_key")]
        permissions = [("use_raw_html", "Can mark templates trusted (raw HTML)"),
                       ("approve_template", "Can approve templates")]

    def __str__(self) -> str:
        return self.template_key

    @property
    def creator(self) -> str:
        return creator_label(self)

    creator.fget.short_description = "created by"

    @property
    def critical(self) -> bool:
        return self.category in CRITICAL_CATEGORIES

    @property
    def approvals_required(self) -> int:
        return 2 if self.critical else 1


class TemplateVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        PENDING = "pending_review", "Pending review"
        APPROVED = "approved", "Approved"  # may be activated (again: rollback)
        ARCHIVED = "archived", "Archived"

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    variables_schema = models.JSONField(default=dict, blank=True, help_text="JSON Schema of the variables.")
    sample_variables = models.JSONField(default=dict, blank=True, help_text="Used by previews.")
    experiment = models.JSONField(default=dict, blank=True, help_text=(
        '{"name": "subject-test", "variants": [{"key": "A", "weight": 50, "subject": "…"}, …]}'))
    change_notes = models.TextField(blank=True)
    review_notes = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_by_key = models.ForeignKey("comms.ApiKey", null=True, blank=True, on_delete=models.SET_NULL,
                                       related_name="+", verbose_name="created by API key")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # SpamAssassin's verdict on the email content at submit (issue 19): shown to the author and the approver.
    spam_score = models.FloatField(null=True, blank=True)
    spam_report = models.JSONField(default=dict, blank=True, help_text="spamd's verdict at submit: score, "
                                   "threshold, rule hits, or why it was unavailable.")
    # Accessibility and dark-mode lint at submit (issue 20): error findings block approval unless overridden.
    lint_findings = models.JSONField(default=list, blank=True, help_text="Lint findings at submit: rule, level, "
                                     "locale, element, message.")
    lint_overrides = models.JSONField(default=list, blank=True, help_text="Per-rule overrides of error findings: "
                                      "rule, reason, by, at.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["template", "version"], name="template_version_unique")]
        ordering = ["template", "-version"]

    def __str__(self) -> str:
        return f"{self.template.template_key} v{self.version}"

    @property
    def creator(self) -> str:
        return creator_label(self)

    creator.fget.short_description = "created by"

    @property
    def editable(self) -> bool:
        return self.status == self.Status.DRAFT


class TemplateLocale(models.Model):
    """The content of one version in one locale."""

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="locales")
    locale = models.CharField(max_length=35, default="en-US")
    subject = models.TextField(blank=True)
    body_html = models.TextField(blank=True, help_text="An MJML document (it starts with the mjml tag) or plain HTML, with Handlebars.")
    body_text = models.TextField(blank=True, help_text="Plain-text part; generated from the HTML when empty.")
    push_title = models.CharField(max_length=200, blank=True)
    push_body = models.TextField(blank=True)
    sms_text = models.TextField(blank=True)
    # Spoken by a voice call (Twilio <Say>): plain text, XML-escaped when the call is built, never markup.
    voice_text = models.TextField(blank=True)
    in_app_content = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "locale"], name="template_locale_unique")]

    def __str__(self) -> str:
        return f"{self.version} [{self.locale}]"


class TemplateReview(models.Model):
    """Each approval or change request (the audit log records them too)."""

    class Decision(models.TextChoices):
        APPROVE = "approve"
        REQUEST_CHANGES = "request_changes"

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=16, choices=Decision.choices)
    notes = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.get_decision_display()} by {self.reviewer}"


from templates_app.models_previews import TemplatePreview  # noqa: E402,F401  (issue 20: preview images)
class TemplateRollout(models.Model):
    """A staged rollout of an approved version (issue 20): ``percent`` of recipients (sticky, salted hash)
    get ``version``, everyone else ``previous``; the template's active version stays ``previous`` until
    the rollout reaches 100 %. Services: templates_app.rollout."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"  # the split holds; the schedule does not advance
        COMPLETED = "completed", "Completed"  # reached 100 %: ``version`` is the active version
        ROLLED_BACK = "rolled_back", "Rolled back"  # every send went back to ``previous``

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="rollouts")
    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="rollouts")
    previous = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="+",
                                 help_text="The version everyone else keeps (the active one when it started).")
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    percent = models.FloatField(default=0, help_text="Share of recipients (0–100) that get the new version.")
    schedule = models.JSONField(default=list, blank=True, help_text="Steps still to come, e.g. [25, 100].")
    step_seconds = models.PositiveIntegerField(null=True, blank=True,
                                               help_text="Time between scheduled steps; empty: steps by hand only.")
    next_step_at = models.DateTimeField(null=True, blank=True)
    salt = models.CharField(max_length=32)
    min_volume = models.PositiveIntegerField(help_text="New-version sends needed before guardrails judge.")
    guardrails = models.JSONField(default=dict, blank=True, help_text="Per metric: max_pct, max_ratio, min_delta_pct.")
    guardrail_status = models.JSONField(default=dict, blank=True, help_text="The last check's figures per metric.")
    rollback_reason = models.JSONField(default=dict, blank=True, help_text="Which guardrail (or who) rolled it back.")
    history = models.JSONField(default=list, blank=True, help_text="Each step: when, percent, by whom.")
    started_by = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # One rollout in progress per template, enforced by PostgreSQL (two racing starts: one wins).
            models.UniqueConstraint(fields=["template"], condition=models.Q(state__in=["running", "paused"]),
                                    name="template_rollout_one_open"),
            models.CheckConstraint(condition=models.Q(percent__gte=0, percent__lte=100),
                                   name="template_rollout_percent_range"),
        ]

    def __str__(self) -> str:
        return f"{self.template.template_key} v{self.version.version} at {self.percent:g} % ({self.get_state_display()})"

    OPEN_STATES = ("running", "paused")

    @property
    def open(self) -> bool:
        return self.state in self.OPEN_STATES
