"""End-user pages: one-click unsubscribe, the preference center, double opt-in confirmation.

No login and no API key: the signed, expiring token in the URL is the authority (tokens.py).
Every page is rate-limited: per client IP for bad tokens, per token for good ones. ``/u/`` is CSRF-exempt by nature: RFC 8058 one-click
POSTs come from the mailbox provider with no cookie. The preference center and the confirmation
form are ordinary CSRF-protected forms (the GET sets the cookie).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt, csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from comms import errors
from comms.throttles import PublicThrottle
from comms.models import Recipient
from preferences import catalogue
from preferences.center import page_context, preference_center_save
from preferences.services import unsubscribe_by_token, unsubscribe_claims
from preferences.subscriptions import language_for, subscription_confirm
from preferences.tokens import confirm_claims, preference_center_claims, preference_center_token


class PublicPageThrottle(PublicThrottle):
    """The shared public budget (scope "pages") per client IP for requests with a bad token (guessing,
    scanner floods), and per token for good ones: one-click POSTs arrive from a few mailbox-provider
    IPs, so a campaign's unsubscribes must not share one IP budget."""

    scope = "pages"

    def __init__(self, token_key: str):
        self.token_key = token_key

    def ident_for(self, request) -> str:
        return f"public:{self.scope}:token:{self.token_key}" if self.token_key else super().ident_for(request)


def _client(request: HttpRequest) -> tuple[str | None, str]:
    return request.META.get("REMOTE_ADDR") or None, request.META.get("HTTP_USER_AGENT", "")[:500]


def _language(request: HttpRequest, recipient: Recipient | None) -> str:
    supported = {code for code, _ in settings.LANGUAGES}
    if request.GET.get("lang") in supported:
        return request.GET["lang"]
    if recipient is not None:
        return language_for(recipient.locale)
    return translation.get_language_from_request(request) or "en"


def _page(request, template: str, context: dict, *, lang: str, status: int = 200) -> HttpResponse:
    with translation.override(lang):
        response = render(request, template, {**context, "lang": lang}, status=status)
    response["Content-Language"] = lang
    response["Cache-Control"] = "no-store"  # personal pages: never cached by a proxy
    # The token must not leak to other sites; same-origin (not no-referrer, which makes browsers send
    # "Origin: null" on our own form posts and fail the CSRF origin check).
    response["Referrer-Policy"] = "same-origin"
    return response


def _guard(request, token: str | None = None) -> HttpResponse | None:
    """429 over budget; `token` (a verified one) is counted on its own, anything else per IP."""
    import hashlib

    throttle = PublicPageThrottle(hashlib.sha256(token.encode()).hexdigest()[:32] if token else "")
    if not throttle.allow_request(request, None):
        response = _page(request, "preferences/message.html", {"title_key": "rate_limited"},
                         lang=_language(request, None), status=429)
        response["Retry-After"] = str(int(throttle.wait()) + 1)
        return response
    return None


def _invalid(request, exc: errors.CommsError) -> HttpResponse:
    if limited := _guard(request):
        return limited
    return _page(request, "preferences/message.html", {"title_key": "invalid", "reason": exc.details.get("reason")},
                 lang=_language(request, None), status=400)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirmation (link scanners prefetch GETs: it changes nothing); POST unsubscribes.

    A POST with the RFC 8058 body ``List-Unsubscribe=One-Click`` is the mailbox provider's button:
    it gets a bare 200. A POST from our own confirmation page gets the "done" page.
    """
    try:
        claims = unsubscribe_claims(token)
    except errors.CommsError as exc:
        return _invalid(request, exc)
    if limited := _guard(request, token):
        return limited
    recipient = (Recipient.objects.filter(tenant_id=claims.tenant_id, pk=claims.recipient_id).first()
                 if claims.recipient_id else None)
    lang = _language(request, recipient)
    category = catalogue.category(claims.tenant_id, claims.category)
    center = f"/p/{preference_center_token(recipient=recipient)}" if recipient else ""
    context = {"category_name": category.name or claims.category, "center_url": center,
               "all_categories": category.critical or not category.key}
    if request.method == "GET":
        return _page(request, "preferences/unsubscribe_confirm.html", context, lang=lang)
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    ip, user_agent = _client(request)
    try:
        unsubscribe_by_token(token=token, source="one_click" if one_click else "unsubscribe_page", ip=ip,
                             user_agent=user_agent)
    except errors.CommsError as exc:
        return _invalid(request, exc)
    if one_click:
        return HttpResponse("Unsubscribed.\n", content_type="text/plain; charset=utf-8")
    return _page(request, "preferences/unsubscribe_done.html", context, lang=lang)


@ensure_csrf_cookie
@csrf_protect
@require_http_methods(["GET", "POST"])
def preference_center(request: HttpRequest, token: str) -> HttpResponse:
    try:
        tenant_id, recipient_id = preference_center_claims(token)
    except errors.CommsError as exc:
        return _invalid(request, exc)
    if limited := _guard(request, token):
        return limited
    recipient = Recipient.objects.select_related("tenant").filter(tenant_id=tenant_id, pk=recipient_id).first()
    if recipient is None or recipient.external_id.startswith("erased-"):
        return _invalid(request, errors.InvalidToken(details={"reason": "unknown_recipient"}))
    lang = _language(request, recipient)
    error = None
    if request.method == "POST":
        ip, user_agent = _client(request)
        try:
            with translation.override(lang):
                outcome = preference_center_save(recipient=recipient, form=request.POST, ip=ip, user_agent=user_agent)
        except errors.CommsError as exc:
            error = exc
        else:
            query = f"?saved={outcome}" + (f"&lang={request.GET['lang']}" if request.GET.get("lang") else "")
            return HttpResponseRedirect(request.path + query)  # post/redirect/get: a reload does not re-post
    with translation.override(lang):
        context = page_context(recipient=recipient)
    context.update(saved=request.GET.get("saved", ""), error=error.message if error else "",
                   error_field=(error.details or {}).get("field", "") if error else "")
    return _page(request, "preferences/center.html", context, lang=lang, status=400 if error else 200)


@ensure_csrf_cookie
@csrf_protect
@require_http_methods(["GET", "POST"])
def confirm_subscription(request: HttpRequest, token: str) -> HttpResponse:
    """Double opt-in: GET shows a button (a scanner's prefetch must not confirm), POST confirms."""
    try:
        confirm_claims(token)
    except errors.CommsError as exc:
        return _invalid(request, exc)
    if limited := _guard(request, token):
        return limited
    lang = _language(request, None)
    if request.method == "GET":
        return _page(request, "preferences/confirm.html", {}, lang=lang)
    ip, user_agent = _client(request)
    try:
        sub = subscription_confirm(token=token, ip=ip, user_agent=user_agent)
    except errors.CommsError as exc:
        return _invalid(request, exc)
    return _page(request, "preferences/confirm_done.html", {"list_name": sub.list_name or sub.list_id},
                 lang=language_for(sub.recipient.locale))
