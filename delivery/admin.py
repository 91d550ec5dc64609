"""Delivery in the admin: messages (search, the rendered artifact, one timeline of log + provider events,
bulk cancel / requeue-from-DLQ through the delivery services, each audited), batches, channel providers."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Callable

from django.contrib import admin, messages
from django.core.files.storage import storages
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from comms import admin_cells, errors
from comms.addresses import normalise_email
from comms.admin_export import csv_response
from comms.admin_mixins import ReadOnlyMixin
from comms.audit import audit_record, client_ip
from comms.forms import ChoiceArrayAdminMixin
from comms.models import Recipient
from delivery.costs import export as cost_export
from delivery.deliverability import pools, warmup
from delivery.models import ChannelProvider, DeliveryLog, Message, MessageBatch, Pool, WarmupLadder
from delivery.provider_forms import ChannelProviderForm, configuration_problems
from delivery.services import message_cancel, message_requeue

log = logging.getLogger(__name__)
MAX_BULK = 10_000  # a bulk action walks rows one service call each; bigger sets go through the API

# Apps above delivery add their rows to a message's timeline (tracking: provider events and the webhooks
# that carried them) from their own admin.py; delivery cannot import them. A source returns row dicts
# with at, kind, what, provider, detail, link and, when link is set, signature.
TimelineSource = Callable[[Message], list[dict]]
_timeline_sources: list[TimelineSource] = []


def message_timeline_source_register(source: TimelineSource) -> TimelineSource:
    """Add a source of timeline rows to the message page (idempotent: a module imported twice adds once)."""
    if source not in _timeline_sources:
        _timeline_sources.append(source)
    return source


def artifact_content(message: Message) -> dict:
    """What was (or will be) sent: the immutable artifact when there is one, else the row's own content."""
    if message.artifact:
        try:
            with storages["artifacts"].open(message.artifact) as handle:
                return {**json.load(handle), "source": f"artifact {message.artifact}"}
        except Exception as exc:  # a missing file must not break the page; say so instead
            log.warning("artifact %s unreadable: %s", message.artifact, exc)
            return {"source": f"artifact {message.artifact} is unreadable ({type(exc).__name__})"}
    if message.batch_id and not (message.subject or message.body or message.body_html):
        batch = message.batch
        return {"source": "bulk batch content", "subject": batch.subject, "body": batch.body,
                "body_html": batch.body_html, "data": {}}
    return {"source": "message row", "subject": message.subject, "body": message.body,
            "body_html": message.body_html, "data": message.payload}


def timeline_rows(message: Message) -> list[dict]:
    """Delivery log plus every registered source's rows (provider events, their webhooks), oldest first."""
    rows = [{"at": r.at, "kind": "log", "what": r.event, "provider": r.provider,
             "detail": " ".join(x for x in (r.status_code, r.detail) if x), "link": ""}
            for r in message.logs.order_by("id")]
    for source in _timeline_sources:
        rows.extend(source(message))
    return sorted(rows, key=lambda r: r["at"])


class DeliveryLogInline(admin.TabularInline):
    model = DeliveryLog
    extra = 0
    can_delete = False
    fields = ("at", "event", "attempt", "provider", "status_code", "detail")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Messages are a record: they change through the delivery services (cancel, requeue), never by
    editing."""

    # Compact cells (comms.admin_cells): ten columns fit 1280 px beside the filters.
    list_display = ("message_id", "created", "channel", "address", "status", "prio", "template", "via",
                    "tries", "failure")
    list_display_links = ("message_id",)
    list_filter = ("status", "channel", "priority", "category", ("created_at", admin.DateFieldListFilter),
                   ("sent_at", admin.DateFieldListFilter))
    search_fields = ("=id",)  # replaced by get_search_results (index-friendly exact matches)
    search_help_text = ("Message or batch id, exact address (email or E.164), recipient id, template key, "
                        "provider reference or idempotency key.")
    readonly_fields = [*(f.name for f in Message._meta.fields), "rendered", "timeline", "cost"]
    fieldsets = [
        (None, {"fields": ["id", "status", "channel", "priority", "category", "tenant", "batch"]}),
        ("Recipient", {"fields": ["recipient", "recipient_address"]}),
        ("Rendered (what the recipient got)", {"fields": ["rendered"]}),
        ("Timeline: delivery log, provider events, webhooks", {"fields": ["timeline"]}),
        ("Content", {"fields": ["template_key", "subject", "body", "body_html", "variables", "metadata"]}),
        ("Delivery", {"fields": ["provider", "provider_ref", "sent_at", "delivered_at", "failed_at", "failure_code",
                                 "failure_reason", "cost"]}),
        ("Queue", {"classes": ["collapse"], "fields": [
            "attempt_count", "next_attempt_at", "scheduled_for", "lease_owner", "lease_expires_at",
            "idempotency_key", "request_hash", "created_at", "updated_at"]}),
    ]
    inlines = [DeliveryLogInline]
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is not free
    list_select_related = ["tenant"]
    actions = ["cancel_selected", "requeue_selected", "export_selected"]

    @admin.display(description="id", ordering="id")
    def message_id(self, obj: Message):
        return admin_cells.short_id(obj.id)

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Message):
        return admin_cells.compact_time(obj.created_at)

    @admin.display(description="recipient", ordering="recipient_address")
    def address(self, obj: Message):  # not "recipient": the model's field of that name would win
        return admin_cells.clipped(obj.recipient_address)

    @admin.display(description="priority", ordering="priority")
    def prio(self, obj: Message):
        return admin_cells.priority_short(obj.priority)

    @admin.display(description="template", ordering="template_key")
    def template(self, obj: Message):
        return admin_cells.clipped(obj.template_key)

    @admin.display(description="provider", ordering="provider")
    def via(self, obj: Message):
        return admin_cells.clipped(obj.provider, narrow=True)

    @admin.display(description="tries", ordering="attempt_count")
    def tries(self, obj: Message):
        return obj.attempt_count

    @admin.display(description="failure", ordering="failure_code")
    def failure(self, obj: Message):
        return admin_cells.clipped(obj.failure_code, narrow=True)

    def get_search_results(self, request: HttpRequest, queryset, search_term: str):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            as_uuid = uuid.UUID(term)
        except ValueError:
            as_uuid = None
        if as_uuid is not None:
            return queryset.filter(Q(id=as_uuid) | Q(batch_id=as_uuid)), False
        if "@" in term:
            try:
                term = normalise_email(term)
            except errors.CommsError:
                pass
            return queryset.filter(recipient_address=term), False
        if term.startswith("+"):
            return queryset.filter(recipient_address=term.replace(" ", "")), False
        recipients = Recipient.objects.filter(external_id=term).values_list("id", flat=True)[:100]
        return queryset.filter(Q(template_key=term) | Q(provider_ref=term) | Q(idempotency_key=term)
                               | Q(recipient_id__in=list(recipients))), False

    # -- the message page -------------------------------------------------------------------------
    @admin.display(description="Rendered")
    def rendered(self, obj: Message):
        content = artifact_content(obj)
        parts = [format_html("<p><small>from {}</small></p>", content.get("source", ""))]
        if content.get("subject"):
            parts.append(format_html("<p><b>Subject / title:</b> {}</p>", content["subject"]))
        if content.get("body_html"):
            parts.append(format_html(
                '<iframe sandbox="" title="rendered message" srcdoc="{}" style="width: 640px; height: 360px; '
                'border: 1px solid #ccc; background: #fff"></iframe>', content["body_html"]))
        if content.get("body"):
            parts.append(format_html('<pre style="white-space: pre-wrap; max-width: 640px">{}</pre>', content["body"]))
        if content.get("data"):
            parts.append(format_html("<pre>{}</pre>", json.dumps(content["data"], indent=2, ensure_ascii=False,
                                                                 default=str)[:5000]))
        return format_html_join("", "{}", ((p,) for p in parts))

    @admin.display(description="Timeline")
    def timeline(self, obj: Message):
        rows = timeline_rows(obj)
        if not rows:
            return "nothing has happened to this message yet"
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (r["at"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], r["kind"], r["what"], r["provider"], r["detail"][:300],
             format_html('<a href="{}">webhook</a> (signature {})', r["link"], r.get("signature", ""))
             if r.get("link") else "")
            for r in rows))
        return format_html('<table class="comms-timeline"><thead><tr><th>at (UTC)</th><th>source</th><th>event</th>'
                           '<th>provider</th><th>detail</th><th>webhook</th></tr></thead><tbody>{}</tbody></table>',
                           body)

    @admin.display(description="Cost")
    def cost(self, obj: Message):
        """What it cost (delivery.costs): the price at send and any later adjustment (a call's length)."""
        return cost_export.message_cost_label(obj.id)

    # -- bulk actions -------------------------------------------------------------------------------
    @admin.action(description="Export selected messages as CSV (with their cost)")
    def export_selected(self, request: HttpRequest, queryset):
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        return csv_response(filename=f"messages-{stamp}.csv", header=cost_export.HEADER,
                            rows=cost_export.message_rows(queryset.order_by("id")))

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Cancel and requeue change the queue: 'Can change message' (superusers, or granted to ops)."""
        return request.user.has_perm("delivery.change_message")

    def _each(self, request: HttpRequest, queryset, action: str, step) -> None:
        rows = list(queryset.select_related("tenant")[:MAX_BULK + 1])
        if len(rows) > MAX_BULK:
            self.message_user(request, f"At most {MAX_BULK:,} messages per bulk action; narrow the filter.",
                              messages.ERROR)
            return
        done, refused = 0, {}
        for message in rows:
            try:
                step(message)  # the service writes the audit row (actor, IP, before/after status)
            except errors.CommsError as exc:
                refused[exc.code] = refused.get(exc.code, 0) + 1
                continue
            done += 1
        summary = f"{done} message(s) {'cancelled' if action == 'message.cancel' else 'requeued'}"
        if refused:
            summary += "; refused: " + ", ".join(f"{n} {code}" for code, n in sorted(refused.items()))
        self.message_user(request, summary + ".", messages.SUCCESS if done else messages.WARNING)

    @admin.action(description="Cancel selected messages (only those not yet handed to a provider)",
                  permissions=["operate"])
    def cancel_selected(self, request: HttpRequest, queryset):
        self._each(request, queryset, "message.cancel",
                   lambda m: message_cancel(tenant=m.tenant, message_id=m.id, actor=request.user,
                                            ip=client_ip(request), audit_reason="admin bulk action"))

    @admin.action(description="Requeue selected messages from the DLQ (dead or failed)", permissions=["operate"])
    def requeue_selected(self, request: HttpRequest, queryset):
        self._each(request, queryset, "message.requeue",
                   lambda m: message_requeue(tenant=m.tenant, message_id=m.id,
                                             reason=f"requeued from the admin by "
                                                    f"{request.user.get_username()}",
                                             actor=request.user, ip=client_ip(request),
                                             audit_reason="admin bulk action"))


@admin.register(MessageBatch)
class MessageBatchAdmin(admin.ModelAdmin):
    list_display = ("id", "channel", "priority", "requested", "accepted", "rejected", "created_at")
    readonly_fields = [f.name for f in MessageBatch._meta.fields]


@admin.register(ChannelProvider)
class ChannelProviderAdmin(ChoiceArrayAdminMixin, admin.ModelAdmin):  # categories: checkboxes
    list_display = ("name", "channel", "tenant", "is_primary", "order", "status", "categories", "rate_limit", "daily_limit")
    list_filter = ("channel", "status")
    # Shipped classes suggested; class/channel checked; write-only credentials; a non-disabled row must be complete.
    form = ChannelProviderForm
    readonly_fields = ("configuration",)

    @admin.display(description="configuration check")
    def configuration(self, obj: ChannelProvider) -> str:
        if obj is None or not obj.pk:
            return "—"
        problems = configuration_problems(obj)
        return "; ".join(problems) if problems else "ready"


# Deliverability (issue 19): sending domains, their DKIM keys and DNS records.
from delivery.deliverability.admin import SendingDomainAdmin  # noqa: E402
from delivery.deliverability.models import SendingDomain  # noqa: E402

admin.site.register(SendingDomain, SendingDomainAdmin)
# -- deliverability: pools (streams) and warm-up ladders ----------------------------------------------
@admin.register(Pool)
class PoolAdmin(ChoiceArrayAdminMixin, admin.ModelAdmin):  # categories: checkboxes
    list_display = ("name", "channel", "tenant", "providers", "source_address", "categories")
    list_filter = ("channel",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(actor=request.user, action="pool.change" if change else "pool.create", target=obj,
                     diff={"providers": obj.providers, "categories": obj.categories,
                           "source_address": obj.source_address}, ip=client_ip(request))
        pools.clear_cache()


@admin.register(WarmupLadder)
class WarmupLadderAdmin(admin.ModelAdmin):
    """Ladders are created through delivery.deliverability.warmup (validated caps); here they are
    watched, paused, held and resumed (progress: /console/pools/)."""

    list_display = ("pool", "from_domain", "state", "started_on", "paused_on", "days")
    list_filter = ("state",)
    readonly_fields = ("pool", "from_domain", "schedule", "group_schedules", "started_on", "state", "paused_on",
                       "created_at")
    actions = ["pause_selected", "hold_selected", "resume_selected"]

    @admin.display(description="days")
    def days(self, obj: WarmupLadder) -> int:
        return len(obj.schedule)

    def has_add_permission(self, request) -> bool:
        return False

    def _state(self, request, queryset, state: str) -> None:
        for ladder in queryset:
            warmup.ladder_set_state(ladder=ladder, state=state, actor=request.user)
        self.message_user(request, f"{queryset.count()} ladder(s) now {state}.", messages.SUCCESS)

    @admin.action(description="Pause (the day stops advancing)")
    def pause_selected(self, request, queryset):
        self._state(request, queryset, WarmupLadder.State.PAUSED)

    @admin.action(description="Hold (send nothing through the ladder)")
    def hold_selected(self, request, queryset):
        self._state(request, queryset, WarmupLadder.State.HELD)

    @admin.action(description="Resume")
    def resume_selected(self, request, queryset):
        self._state(request, queryset, WarmupLadder.State.ACTIVE)


# -- Cost tracking (issue 22): prices and envelopes, written through delivery.costs.services -------------------
from django import forms as _forms  # noqa: E402
from django.utils import timezone as _tz  # noqa: E402

from delivery.costs import envelopes as cost_envelopes, services as cost_services  # noqa: E402
from delivery.costs.models import CostDaily, CostEnvelope, PriceEntry  # noqa: E402


class _PriceForm(_forms.ModelForm):
    class Meta:
        model = PriceEntry
        fields = ["tenant", "provider", "channel", "country", "unit", "price", "currency"]

    def clean_price(self):
        price = self.cleaned_data["price"]
        if price is not None and price < 0:
            raise _forms.ValidationError("A price must be zero or more (COMMS_PRICE_INVALID).")
        return price


@admin.register(PriceEntry)
class PriceEntryAdmin(admin.ModelAdmin):
    form = _PriceForm
    list_display = ("provider", "channel", "country", "unit", "price", "currency", "tenant", "updated_at")
    list_filter = ("channel", "provider", "currency")
    search_fields = ("provider", "country")

    def save_model(self, request, obj, form, change):
        d = form.cleaned_data
        saved = cost_services.price_set(tenant=d["tenant"], provider=d["provider"], channel=d["channel"],
                                        price=d["price"], country=d["country"], unit=d["unit"],
                                        currency=d["currency"], actor=request.user)
        obj.pk = saved.pk


class _EnvelopeForm(_forms.ModelForm):
    class Meta:
        model = CostEnvelope
        fields = ["tenant", "channel", "monthly_budget", "currency", "alert_pct", "allowed_categories",
                  "failover_price_cap"]

    def clean(self):
        data = super().clean()
        if data.get("tenant") and data.get("monthly_budget") is not None:
            used = cost_envelopes.spent(tenant_id=data["tenant"].id, channel=data.get("channel", ""), now=_tz.now())
            if data["monthly_budget"] < used:
                raise _forms.ValidationError(f"This month has already spent {used}: the budget cannot be below it "
                                             "(COMMS_ENVELOPE_BELOW_SPENT).")
        return data


@admin.register(CostEnvelope)
class CostEnvelopeAdmin(ChoiceArrayAdminMixin, admin.ModelAdmin):
    form = _EnvelopeForm
    list_display = ("tenant", "channel", "monthly_budget", "currency", "alert_pct", "alerted_month",
                    "exhausted_month")
    list_filter = ("channel",)

    def save_model(self, request, obj, form, change):
        d = form.cleaned_data
        saved = cost_services.envelope_set(tenant=d["tenant"], channel=d["channel"],
                                           monthly_budget=d["monthly_budget"], currency=d["currency"],
                                           alert_pct=d["alert_pct"], allowed_categories=d["allowed_categories"],
                                           failover_price_cap=d["failover_price_cap"], actor=request.user)
        obj.pk = saved.pk


@admin.register(CostDaily)
class CostDailyAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("day", "tenant_id", "channel", "provider", "campaign", "template_key", "country", "messages",
                    "units", "amount", "currency")
    list_filter = ("channel", "provider", "currency")
    date_hierarchy = "day"
