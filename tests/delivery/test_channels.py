"""The channel layer (delivery.channels): channel policy lives there once, vendors speak wire formats only."""

from __future__ import annotations

import ast
import datetime as dt
import zoneinfo
from pathlib import Path
from types import SimpleNamespace

import pytest

from delivery import channels
from delivery.channels import sms
from delivery.models import Message
from delivery.providers.base import Content, SendResult
from delivery.services import drain_all
from tests.delivery.conftest import sns_sent

PROVIDERS = Path(__file__).resolve().parents[2] / "delivery" / "providers"


def _imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at module level or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import twilio` / `from .smtp import x` inside the package
                base = "delivery.providers" + (f".{base}" if base else "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_no_vendor_module_imports_another_vendor_module():
    vendors = {p.stem for p in PROVIDERS.glob("*.py")} - {"__init__", "base"}
    assert {"twilio", "sns", "smtp", "anymail_esp", "fcm"} <= vendors
    crossing = {
        (path.stem, name) for path in PROVIDERS.glob("*.py") for name in _imported_modules(path)
        if name.startswith("delivery.providers.") and name.split(".")[2] in vendors - {path.stem}
    }
    assert crossing == set(), "a vendor module imports another vendor's; channel policy goes in delivery/channels"


def _message(**kw):
    return SimpleNamespace(**{"channel": "sms", "category": "marketing", "locale": "", **kw})


def test_sms_footer_is_applied_once_in_the_message_language():
    spanish = channels.prepare_content(_message(locale="es-MX"), Content(body="Oferta"))
    assert spanish.body == "Oferta\nResponde STOP para cancelar, HELP para ayuda."
    assert channels.prepare_content(_message(locale="es-MX"), spanish) == spanish  # never twice
    transactional = Content(body="Code 1")
    assert channels.prepare_content(_message(category="transactional"), transactional) is transactional
    email = Content(subject="Hi", body="Sale")
    assert channels.prepare_content(_message(channel="email"), email) is email  # headers: build_email


@pytest.mark.django_db
def test_sms_through_twilio_and_through_sns_carry_the_same_footer(api, twilio, sns, tenant):
    """One policy: the text Twilio sends and the text SNS sends after a failover are the same bytes,
    with the footer in the message's language once (not once per vendor tried)."""
    from preferences.services import consent_record

    numbers = ("+14155550123", "+14155550124")
    for number in numbers:
        consent_record(tenant=tenant, address=number, channel="sms", action="granted", source="test",
                       consent_text="Text me offers")
    twilio.failures[numbers[1]] = [(503, None, "Service Unavailable")]  # this one fails over to SNS
    for number in numbers:
        response = api.post("/api/v1/messages", {"channel": "sms", "to": number, "body": "Oferta hoy",
                                                 "category": "marketing", "locale": "es"}, format="json")
        assert response.status_code == 202, response.content
    noon = dt.datetime.combine(dt.date.today() + dt.timedelta(days=1), dt.time(12),
                               tzinfo=zoneinfo.ZoneInfo("America/Los_Angeles"))
    assert drain_all(clock=lambda: noon).sent == 2
    expected = sms.with_footer("Oferta hoy", category="marketing", locale="es")
    assert expected == "Oferta hoy\nResponde STOP para cancelar, HELP para ayuda."
    assert [(m["To"], m["Body"]) for m in twilio.messages] == [(numbers[0], expected)]
    assert list(sns_sent().values()) == [(numbers[1], expected)]
    assert Message.objects.get(recipient_address=numbers[1]).provider == "sns"


@pytest.mark.django_db
def test_push_channel_disables_the_tokens_a_vendor_reports_dead_in_its_tenant_only(tenant, other_tenant):
    from comms.models import Device
    from comms.services import recipient_upsert

    for t in (tenant, other_tenant):
        person, _ = recipient_upsert(tenant=t, external_id="ada", data={})
        Device.objects.create(tenant=t, recipient=person, token="tok-dead", platform="android")
        Device.objects.create(tenant=t, recipient=person, token="tok-live", platform="ios")
    message = SimpleNamespace(channel="push", tenant_id=tenant.id)
    result = SendResult(ok=True, provider_ref="x", dead_addresses=(("tok-dead", "UNREGISTERED"),))
    channels.settle(message, result, provider=SimpleNamespace(name="fcm"))
    dead = Device.objects.filter(disabled_at__isnull=False)
    assert list(dead.values_list("tenant_id", "token", "disabled_reason")) == [(tenant.id, "tok-dead", "FCM UNREGISTERED")]
