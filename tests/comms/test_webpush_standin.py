"""The Web Push stand-in refuses what a real push service refuses (RFC 8030/8291/8292), so tests that
pass through it prove our VAPID and encryption, not only that a POST arrived."""

from __future__ import annotations

import time

import pytest
import requests
from py_vapid import Vapid
from pywebpush import WebPushException, webpush

from comms.devserver.standins.webpush import WebPushStandIn


@pytest.fixture
def service(tmp_path):
    stand_in = WebPushStandIn(folder=tmp_path)
    yield stand_in
    stand_in.close()


@pytest.fixture
def vapid_key():
    key = Vapid()
    key.generate_keys()
    return key


def _public(key: Vapid) -> str:
    from cryptography.hazmat.primitives import serialization

    from comms.webpush import b64url_encode

    return b64url_encode(key.public_key.public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint))


def _send(service, sub, key, **claims):
    return webpush(sub, data='{"body":"hi"}', vapid_private_key=key, ttl=60, requests_session=_session(service),
                   vapid_claims={"sub": "mailto:ops@example.com", **claims})


def _session(service) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces verify
    session.verify = str(service.cert)
    return session


def _status(fn) -> int:
    try:
        return fn().status_code
    except WebPushException as exc:
        return exc.response.status_code


def test_a_good_push_is_decrypted(service, vapid_key):
    sub = service.subscribe(_public(vapid_key))
    assert _send(service, sub, vapid_key).status_code == 201
    assert service.received[-1]["payload"] == '{"body":"hi"}' and service.received[-1]["ttl"] == 60


def test_vapid_problems_are_refused(service, vapid_key):
    sub = service.subscribe(_public(vapid_key))
    assert _status(lambda: _send(service, sub, vapid_key, aud="https://push.example.net")) == 403
    assert "Audience" in service.refused[-1]["reason"] or "aud" in service.refused[-1]["reason"].lower()
    assert _status(lambda: _send(service, sub, vapid_key, exp=int(time.time()) + 48 * 3600)) == 403
    assert "24 hours" in service.refused[-1]["reason"]
    other = Vapid()
    other.generate_keys()
    assert _status(lambda: _send(service, sub, other)) == 403  # signed by a key the subscription was not made with
    # A JWT signed by another key, presented with the subscription's public key: the signature fails.
    forged = other.sign({"sub": "mailto:x@example.com", "aud": service.origin, "exp": int(time.time()) + 3600})
    token = forged["Authorization"].split("t=", 1)[1].split(",", 1)[0]
    headers = {"Authorization": f"vapid t={token},k={_public(vapid_key)}", "TTL": "60", "Content-Encoding": "aes128gcm"}
    assert _session(service).post(sub["endpoint"], data=b"x" * 100, headers=headers).status_code == 403
    assert "Signature" in service.refused[-1]["reason"] or "signature" in service.refused[-1]["reason"]
    no_auth = _session(service).post(sub["endpoint"], data=b"x", headers={"TTL": "60"})
    assert no_auth.status_code == 401


def test_missing_ttl_and_undecryptable_bodies_are_400(service, vapid_key):
    sub = service.subscribe(_public(vapid_key))
    auth = vapid_key.sign({"sub": "mailto:ops@example.com", "aud": service.origin, "exp": int(time.time()) + 3600})
    post = _session(service).post
    assert post(sub["endpoint"], data=b"x", headers={**auth, "Content-Encoding": "aes128gcm"}).status_code == 400
    assert "TTL" in service.refused[-1]["reason"]
    garbage = post(sub["endpoint"], data=b"\0" * 120, headers={**auth, "TTL": "5", "Content-Encoding": "aes128gcm"})
    assert garbage.status_code == 400 and "decrypt" in service.refused[-1]["reason"]
    assert not service.received


def test_unknown_and_unsubscribed(service, vapid_key):
    sub = service.subscribe(_public(vapid_key))
    unknown = dict(sub, endpoint=sub["endpoint"] + "x")
    assert _status(lambda: _send(service, unknown, vapid_key)) == 404
    assert _session(service).delete(sub["endpoint"]).status_code == 204
    assert _status(lambda: _send(service, sub, vapid_key)) == 410
