"""Admin for support staff: conversations with their participants, messages and the audit trail of
edits and deletes; "reply as staff" and "close" on the detail page (both through the services, so the
participants see them live and the audit log records who did it)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from comms import errors as kernel_errors
from comms.conversations import services
from comms.conversations.models import Conversation, ConversationMessage, MessageRevision, Participant


class StaffReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80, "class": "vLargeTextField"}),
                           max_length=8000, help_text="Markdown subset; sent as you, an agent of this conversation.")


class ParticipantInline(admin.TabularInline):
    model = Participant
    fields = ("display_name", "recipient", "staff_user", "role", "binding", "address", "joined_at", "left_at",
              "last_read_index", "last_seen_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class MessageInline(admin.TabularInline):
    """Staff see the stored body even of a deleted message (marked), to handle abuse reports."""

    model = ConversationMessage
    fk_name = "conversation"
    fields = ("index", "sender", "source", "shown_body", "reply_to", "created_at", "edited_at", "deleted_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("index",)

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="body")
    def shown_body(self, obj: ConversationMessage):
        if obj.deleted_at:
            previous = obj.revisions.filter(action=MessageRevision.Action.DELETE).values_list(
                "previous_body", flat=True).first()
            return format_html('<span class="conv-deleted">[deleted]</span> {}', previous or obj.body)
        return obj.body


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("__str__", "kind", "state", "tenant", "last_index", "updated_at")
    list_filter = ("state", "kind", "tenant")
    search_fields = ("subject", "participants__recipient__external_id", "participants__display_name")
    readonly_fields = ("id", "tenant", "kind", "subject", "metadata", "state", "last_index", "created_at",
                       "updated_at", "closed_at", "audit_trail")
    fields = readonly_fields
    inlines = [ParticipantInline, MessageInline]
    change_form_template = "admin/conversations/conversation/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Edits and deletes")
    def audit_trail(self, obj: Conversation):
        revisions = MessageRevision.objects.filter(message__conversation=obj).select_related(
            "message", "editor").order_by("created_at")
        if not revisions:
            return "—"
        rows = format_html_join("", "<tr><td>{}</td><td>#{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
            (r.created_at.strftime("%Y-%m-%d %H:%M:%S"), r.message.index, r.action, r.editor or "staff",
             r.previous_body) for r in revisions))
        return format_html('<div class="conv-scroll"><table id="revisions"><thead><tr><th>When</th>'
                           '<th>Message</th><th>Action</th>'
                           '<th>Who</th><th>Previous body</th></tr></thead><tbody>{}</tbody></table></div>', rows)

    def get_urls(self):
        return [
            path("<uuid:pk>/reply/", self.admin_site.admin_view(self.reply_view), name="conversations_conversation_reply"),
            path("<uuid:pk>/close/", self.admin_site.admin_view(self.close_view), name="conversations_conversation_close"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"reply_form": StaffReplyForm(), "show_save": False, "show_save_and_continue": False,
                 "show_save_and_add_another": False, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def _guarded(self, request: HttpRequest, pk) -> Conversation:
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        return get_object_or_404(Conversation, pk=pk)

    def _back(self, conversation: Conversation) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:conversations_conversation_change", args=[conversation.pk]))

    def reply_view(self, request: HttpRequest, pk):
        conversation = self._guarded(request, pk)
        form = StaffReplyForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Write a reply first (at most 8000 characters).")
            return self._back(conversation)
        try:
            message = services.staff_reply(conversation=conversation, staff_user=request.user,
                                           body=form.cleaned_data["body"])
        except kernel_errors.CommsError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"Reply #{message.index} sent.")
        return self._back(conversation)

    def close_view(self, request: HttpRequest, pk):
        conversation = self._guarded(request, pk)
        services.conversation_close(conversation=conversation, actor=request.user)
        messages.success(request, "Conversation closed.")
        return self._back(conversation)
