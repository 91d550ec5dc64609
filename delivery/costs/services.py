"""Editing prices and envelopes (typed errors, audit rows), and the SMS-by-category refusal."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from comms import errors as comms_errors
from comms.audit import audit_record
from comms.enums import Channel, Status
from delivery.costs import envelopes, prices
from delivery.costs.errors import BUDGET_EXHAUSTED, EnvelopeBelowSpent, PriceInvalid, SmsCategoryNotAllowed
from delivery.costs.models import CostEnvelope, PriceEntry
from delivery.models import Message


def _decimal(value: Any, *, field: str, error: type) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise error(f"{field} is not a number.", details={"field": field, "value": str(value)[:50]}) from None
    if not number.is_finite() or number < 0:
        raise error(f"{field} must be zero or more.", details={"field": field, "value": str(value)[:50]})
    return number


def _channel(value: str) -> str:
    if value not in Channel.values:
        raise comms_errors.UnknownChannel(details={"channel": value})
    return value


@transaction.atomic
def price_set(*, tenant: Any, provider: str, channel: str, price: Any, country: str = "", unit: str = "message",
              currency: str = "USD", actor: Any) -> PriceEntry:
    """Create or replace one price (tenant None = the global table). A negative price is refused."""
    amount = _decimal(price, field="price", error=PriceInvalid)
    if unit not in PriceEntry.Unit.values:
        raise PriceInvalid("unit must be message, segment or minute.", details={"field": "unit"})
    country = (country or "").upper()
    if country and (len(country) != 2 or not country.isalpha()):
        raise PriceInvalid("country must be an ISO 3166 alpha-2 code.", details={"field": "country"})
    if len(currency) != 3 or not currency.isalpha():
        raise PriceInvalid("currency must be an ISO 4217 code.", details={"field": "currency"})
    entry, _ = PriceEntry.objects.update_or_create(
        tenant=tenant, provider=provider, channel=_channel(channel), country=country,
        defaults={"price": amount, "unit": unit, "currency": currency.upper()})
    audit_record(actor=actor, action="cost.price_set", target=entry, tenant=tenant,
                 diff={"provider": provider, "channel": channel, "country": country, "price": str(amount),
                       "unit": unit, "currency": currency.upper()})
    prices.clear_cache()
    transaction.on_commit(prices.clear_cache)  # other threads of this process see it from the commit
    return entry


@transaction.atomic
def envelope_set(*, tenant: Any, channel: str, monthly_budget: Any = None, currency: str = "USD",
                 alert_pct: int = 80, allowed_categories: list[str] | None = None, failover_price_cap: Any = None,
                 actor: Any) -> CostEnvelope:
    """Set a tenant's monthly budget for a channel. A budget below this month's spend is refused
    (COMMS_ENVELOPE_BELOW_SPENT); a budget raised above it releases the rows the envelope held."""
    channel = _channel(channel)
    budget = None if monthly_budget in (None, "") else _decimal(monthly_budget, field="monthly_budget",
                                                                   error=EnvelopeBelowSpent)
    cap = None if failover_price_cap in (None, "") else _decimal(failover_price_cap, field="failover_price_cap",
                                                                  error=PriceInvalid)
    now = timezone.now()
    used = envelopes.spent(tenant_id=tenant.id, channel=channel, now=now)
    if budget is not None and budget < used:
        raise EnvelopeBelowSpent(f"{channel} has already spent {used} {currency} this month; the budget "
                                 f"{budget} is below it.", details={"spent": str(used), "budget": str(budget)})
    if not 1 <= int(alert_pct) <= 100:
        raise comms_errors.ValidationFailed("alert_pct is between 1 and 100.", details={"field": "alert_pct"})
    envelope, _ = CostEnvelope.objects.update_or_create(
        tenant=tenant, channel=channel,
        defaults={"monthly_budget": budget, "currency": currency.upper()[:3], "alert_pct": int(alert_pct),
                  "allowed_categories": list(allowed_categories or []), "failover_price_cap": cap})
    released = 0
    if budget is None or budget > used:
        released = Message.objects.filter(tenant=tenant, channel=channel, status=Status.DEFERRED,
                                          failure_code=BUDGET_EXHAUSTED).update(next_attempt_at=now)
    audit_record(actor=actor, action="cost.envelope_set", target=envelope, tenant=tenant,
                 diff={"channel": channel, "monthly_budget": str(budget), "spent": str(used), "released": released,
                       "allowed_categories": envelope.allowed_categories})
    envelopes.clear_cache()
    transaction.on_commit(envelopes.clear_cache)
    return envelope


def sms_category_check(*, tenant_id: Any, channel: str, category: str) -> None:
    """The API's refusal: SMS for a category the tenant's SMS envelope does not list (empty = all)."""
    if channel != Channel.SMS:
        return
    envelope = envelopes.envelopes().get((str(tenant_id), Channel.SMS))
    if envelope is not None and envelope.allowed_categories and category not in envelope.allowed_categories:
        raise SmsCategoryNotAllowed(details={"category": category, "allowed": envelope.allowed_categories})
