"""DKIM under `make run`: the demo tenant gets a sending domain with keys, and the mail the sink stores
verifies (dkimpy) against the records the API gives, served by a loopback DNS server."""

from __future__ import annotations

import mailbox
import re

import dkim
import httpx
import pytest
from django.core.management import call_command

from comms.devserver.embedded import free_port
from comms.devserver.standins.dns import DnsStandIn
from delivery.deliverability.models import SendingDomain
from tests.comms.test_comms_up import ComposedSystem
from tests.conftest import wait_for
from tests.delivery.deliverability_support import dnsfunc_for


@pytest.mark.django_db
def test_demo_domain_command_is_idempotent(capsys):
    call_command("comms_demo_domain", "--json")
    call_command("comms_demo_domain", "--json")
    out = capsys.readouterr().out.strip().splitlines()
    assert '"created": true' in out[0] and '"created": false' in out[1]
    domain = SendingDomain.objects.get()
    assert domain.domain == "comms.localhost"
    assert sorted(domain.keys.values_list("algorithm", flat=True)) == ["ed25519", "rsa"]


@pytest.mark.slow
def test_make_run_mail_is_dkim_signed_and_verifies(tmp_path):
    var = tmp_path / "var"
    web_port = free_port()
    system = ComposedSystem(var, web_port, free_port())
    dns = DnsStandIn().start()
    try:
        wait_for(lambda: "comms is up" in system.text, timeout=120, interval=0.2, message="the banner")
        assert re.search(r"DKIM\s+comms\.localhost signs with selectors", system.text), system.text[-2000:]
        key = re.search(r"API key\s+(ck_\S+)", system.text).group(1)
        base, auth = f"http://127.0.0.1:{web_port}", {"Authorization": f"Bearer {key}"}
        wait_for(lambda: _ok(f"{base}/api/v1/health"), timeout=60, message="web")
        sent = httpx.post(f"{base}/api/v1/messages", headers=auth, json={
            "channel": "email", "to": "ada@example.com", "subject": "Signed", "body": "from make run"}).json()["id"]
        wait_for(lambda: httpx.get(f"{base}/api/v1/messages/{sent}", headers=auth).json()["status"] == "sent",
                 timeout=60, interval=0.3, message="the email to be sent")
        records = httpx.get(f"{base}/api/v1/sending-domains/comms.localhost/records", headers=auth).json()["records"]
        for record in records:
            if record["type"] == "TXT":
                dns.zones.add_txt(record["name"], record["strings"])
        box = mailbox.Maildir(str(var / "mail"), create=False)
        wait_for(lambda: len(box.keys()) >= 1, timeout=10, message="the sink to store it")
        raw = box.get_bytes(box.keys()[0])
        assert raw.count(b"DKIM-Signature:") == 2
        d = dkim.DKIM(raw)
        assert d.verify(idx=0, dnsfunc=dnsfunc_for(dns)) and dkim.DKIM(raw).verify(idx=1, dnsfunc=dnsfunc_for(dns))
        assert not dkim.verify(raw.replace(b"from make run", b"from make fun"), dnsfunc=dnsfunc_for(dns))
    finally:
        dns.stop()
        assert system.stop() == 0, system.text[-3000:]


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
