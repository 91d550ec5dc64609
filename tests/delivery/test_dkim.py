"""DKIM: sending domains, keys, records, and signed mail verified by dkimpy against loopback DNS."""

from __future__ import annotations

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from comms import errors
from comms.redis import redis_client
from delivery.deliverability import dkim as signer
from delivery.deliverability.domains import (
    domain_normalise, key_import, sending_domain_create, sending_domain_records, txt_strings,
)
from delivery.services import SendSpec, drain_all, message_bulk_enqueue, message_enqueue
from tests.delivery.deliverability_support import (  # noqa: F401  (fixtures)
    _fresh_keys, dns_server, dnsfunc_for, publish, verify_all,
)


# A 512-bit RSA key (cryptography no longer generates keys this short; made once with openssl genpkey).
SHORT_RSA_PEM = """-----BEGIN PRIVATE KEY-----
MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEAwlEYhpu1h1KBmfpX
0q5S8xhz6tdyurj9fAwsgApbo4/ZSErwNz7YBKNQbHaJvOHXrd96+XlURTFFw1rb
S0CIUwIDAQABAkB3cFdt7em/mvQ0jA9NXX95Eu+1SuanZSvSAr2bmkJHnwH7WRIz
+rhgZD4JEMrD/D/0aW4b4FKQhZGkbPmv87NhAiEA7kXlVDrW4NqNiOXjnPEcR7hT
TOzcChyZrnQm7imoMxECIQDQxgRxknY2EnwhhHVzjlTEY/BBdkOhR+CNXSEQVq69
IwIgchAZuVm1dcyKBqfubznpDNhLYD7fEyQf2aiW3loov9ECIG0BFszdtc7hs+Ik
MNbW17d6nrTvNLx+tOXaXCsVt0KVAiEAnO5zgxOgLXLyprKJTTorAlX6ud2y8Wxh
TDRncpA9MLc=
-----END PRIVATE KEY-----"""


# -- domains ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("Example.COM", "example.com"), ("example.com.", "example.com"), (" mail.example.org ", "mail.example.org"),
    ("bücher.example", "xn--bcher-kva.example"), ("xn--bcher-kva.example", "xn--bcher-kva.example"),
])
def test_domain_normalise_accepts_and_canonicalises(raw, expected):
    assert domain_normalise(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "localhost", "example..com", "example.com..", "-bad.example",
                                 "a@example.com", "https://example.com", "ex ample.com", "1.2.3.4", "x" * 64 + ".com",
                                 "example.com:25", None, 42, ".example.com"])
def test_domain_normalise_refuses_malformed(raw):
    with pytest.raises(errors.InvalidDomain):
        domain_normalise(raw)


@pytest.mark.django_db
def test_create_generates_rsa_and_ed25519_keys_encrypted_at_rest(tenant):
    domain = sending_domain_create(tenant=tenant, domain="Example.com.", actor=None)
    keys = {k.algorithm: k for k in domain.keys.all()}
    assert set(keys) == {"rsa", "ed25519"} and all(k.state == "active" for k in keys.values())
    rsa_key = keys["rsa"]
    assert "PRIVATE KEY" not in rsa_key.private_key_encrypted  # Fernet token, not the PEM
    loaded = serialization.load_pem_private_key(rsa_key.private_key.encode(), password=None)
    assert loaded.key_size == 2048
    with pytest.raises(errors.DomainExists):
        sending_domain_create(tenant=tenant, domain="EXAMPLE.COM", actor=None)


@pytest.mark.django_db
def test_records_split_dkim_txt_into_255_byte_strings(tenant, settings):
    settings.COMMS_SPF_INCLUDES = ["relay.example.net"]
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    records = {r["name"]: r for r in sending_domain_records(domain) if r["type"] == "TXT"}
    rsa_key = domain.keys.get(algorithm="rsa")
    rec = records[f"{rsa_key.selector}._domainkey.example.com"]
    assert rec["value"].startswith("v=DKIM1; k=rsa; p=MII")
    assert len(rec["strings"]) == 2 and all(len(s) <= 255 for s in rec["strings"])
    assert "".join(rec["strings"]) == rec["value"]
    assert rec["zone_line"].count('"') == 4
    ed = domain.keys.get(algorithm="ed25519")
    assert records[f"{ed.selector}._domainkey.example.com"]["value"] == f"v=DKIM1; k=ed25519; p={ed.public_key}"
    assert records["example.com"]["value"] == "v=spf1 include:relay.example.net ~all"
    assert records["_dmarc.example.com"]["value"].startswith("v=DMARC1; p=none;")
    assert txt_strings("a" * 600) == ["a" * 255, "a" * 255, "a" * 90]


def test_key_import_refuses_what_does_not_parse():
    for bad in ["", "not a key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", 12]:
        with pytest.raises(errors.InvalidKey):
            key_import(bad)
    with pytest.raises(errors.InvalidKey, match="too short"):
        key_import(SHORT_RSA_PEM)
    ecdsa = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(errors.InvalidKey, match="RSA or Ed25519"):
        key_import(ecdsa)


# -- signing, verified by dkimpy against the loopback DNS ----------------------------------------------
def _send(tenant, to="ada@example.org", from_email="News <news@example.com>", **kw):
    message_enqueue(tenant=tenant,
                    spec=SendSpec(channel="email", to=to, subject="Hello", body="Hi there", category="marketing",
                                  metadata={"from_email": from_email}, **kw))
    drain_all()


@pytest.mark.django_db(transaction=True)
def test_sent_mail_carries_two_signatures_that_verify(tenant, smtp_sink, dns_server):
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    publish(dns_server, domain)
    _send(tenant)
    raw = smtp_sink.raw[-1]
    results = verify_all(raw, dnsfunc_for(dns_server))
    assert sorted(results) == [(b"ed25519-sha256", True), (b"rsa-sha256", True)]
    sig = dkim.util.parse_tag_value(dkim.DKIM(raw).headers[0][1].replace(b"\r\n", b""))
    assert sig[b"d"] == b"example.com" and sig[b"c"] == b"relaxed/relaxed"
    signed = sig[b"h"].replace(b" ", b"").split(b":")
    assert signed[:2] == [b"from", b"from"]  # oversigned
    for name in (b"to", b"subject", b"date", b"message-id", b"list-unsubscribe", b"list-unsubscribe-post",
                 b"mime-version", b"content-type", b"reply-to"):
        assert name in signed
    # A tampered body (one character) no longer verifies; a tampered Subject neither.
    head, _, body = raw.partition(b"\r\n\r\n")
    assert not dkim.verify(head + b"\r\n\r\n" + body.replace(b"Hi there", b"Hi thera"), dnsfunc=dnsfunc_for(dns_server))
    assert not dkim.verify(raw.replace(b"Subject: Hello", b"Subject: Hellp"), dnsfunc=dnsfunc_for(dns_server))


@pytest.mark.django_db(transaction=True)
def test_subdomain_from_signs_with_the_parent_domain(tenant, smtp_sink, dns_server):
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    publish(dns_server, domain)
    _send(tenant, from_email="alerts@mail.example.com")
    assert dkim.verify(smtp_sink.raw[-1], dnsfunc=dnsfunc_for(dns_server))
    assert b"d=example.com" in smtp_sink.raw[-1]


@pytest.mark.django_db(transaction=True)
def test_bulk_shared_mime_path_signs_each_recipient(tenant, smtp_sink, dns_server, settings):
    settings.DEFAULT_FROM_EMAIL = "Shop <shop@example.com>"  # a bulk batch sends From the default sender
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    publish(dns_server, domain)
    message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="email", subject="Sale", body="Big sale today",
                                                      category="marketing"),
                         recipients=[{"to": f"u{i}@example.org"} for i in range(5)])
    drain_all()
    assert len(smtp_sink.raw) == 5
    lookup = dnsfunc_for(dns_server)
    assert all(dkim.verify(raw, dnsfunc=lookup) for raw in smtp_sink.raw)
    assert len({m["To"] for m in smtp_sink.messages}) == 5


@pytest.mark.django_db(transaction=True)
def test_from_domain_without_key_is_sent_unsigned_and_counted(tenant, smtp_sink, dns_server):
    sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    redis_client().delete(signer.UNSIGNED_KEY)
    _send(tenant, from_email="someone@other.example")
    raw = smtp_sink.raw[-1]
    assert b"DKIM-Signature" not in raw
    assert signer.unsigned_counts() == {"other.example": 1}
    from delivery.models import Message
    assert Message.objects.get().status == "sent"


@pytest.mark.django_db(transaction=True)
def test_another_tenants_domain_never_signs(tenant, other_tenant, smtp_sink, dns_server):
    sending_domain_create(tenant=other_tenant, domain="example.com", actor=None)
    _send(tenant)
    assert b"DKIM-Signature" not in smtp_sink.raw[-1]


@pytest.mark.django_db(transaction=True)
def test_imported_key_signs_under_its_selector(tenant, smtp_sink, dns_server):
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode()
    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None, private_key=pem, selector="legacy1")
    assert list(domain.keys.values_list("selector", "algorithm")) == [("legacy1", "rsa")]
    publish(dns_server, domain)
    _send(tenant)
    assert b"s=legacy1" in smtp_sink.raw[-1] and dkim.verify(smtp_sink.raw[-1], dnsfunc=dnsfunc_for(dns_server))


@pytest.mark.django_db(transaction=True)
def test_unsigned_count_is_a_prometheus_metric(tenant, smtp_sink, client):
    redis_client().delete(signer.UNSIGNED_KEY)
    _send(tenant, from_email="someone@unsigned.example")
    _send(tenant, to="bob@example.org", from_email="someone@unsigned.example")
    text = client.get("/metrics").content.decode()
    assert 'comms_dkim_unsigned{domain="unsigned.example"} 2.0' in text


@pytest.mark.django_db(transaction=True)
def test_after_rotation_the_new_selector_signs_only_once_published(tenant, smtp_sink, dns_server):
    from delivery.deliverability.domains import sending_domain_rotate
    from delivery.deliverability.monitor import sending_domain_check

    domain = sending_domain_create(tenant=tenant, domain="example.com", actor=None)
    publish(dns_server, domain)
    old = set(domain.keys.values_list("selector", flat=True))
    fresh = {k.selector for k in sending_domain_rotate(domain=domain, actor=None)}
    _send(tenant)
    assert {s for s in old if f"s={s};".encode() in smtp_sink.raw[-1]} == old  # pending keys do not sign yet
    dns_server.zones.clear()
    publish(dns_server, domain)  # now with the new selectors (and the old ones, kept for the overlap)
    sending_domain_check(domain=domain)
    _send(tenant, to="bob@example.org")
    raw = smtp_sink.raw[-1]
    assert all(f"s={s};".encode() in raw for s in fresh) and not any(f"s={s};".encode() in raw for s in old)
    assert all(ok for _, ok in verify_all(raw, dnsfunc_for(dns_server)))
