"""Real signatures with real keys, one signer per provider, for payloads in tests/fixtures/<provider>/.

Each signer configures our settings with its verification material and builds requests the way the
provider does: SendGrid signs with an ECDSA P-256 key (we hold the public half), Mailgun with an
HMAC key, Postmark uses basic auth, SNS signs with an RSA certificate served from a URL (here a
self-signed one on loopback, admitted by COMMS_SNS_HOST_PATTERN), Twilio with HMAC-SHA1 over the
URL and fields, our push gateway the Standard Webhooks way.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from standardwebhooks.webhooks import Webhook
from twilio.request_validator import RequestValidator

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture(path: str, **values) -> str:
    """A provider payload fixture with {{placeholders}} filled in (strings are JSON-escaped)."""
    text = (FIXTURES / path).read_text()
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", str(value) if not isinstance(value, str) else
                            json.dumps(value)[1:-1])
    return text


@dataclass
class Req:
    path: str
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)

    def meta(self) -> dict[str, str]:
        return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in self.headers.items()}

    def send(self, client):
        return client.generic("POST", self.path, self.body, content_type=self.content_type, **self.meta())


def tamper(req: Req) -> Req:
    """Change one byte of the payload's meaning after signing (an attacker's edit)."""
    body = req.body.replace(b"ada@", b"eve@", 1) if b"ada@" in req.body else req.body + b" "
    return Req(req.path, body, req.content_type, dict(req.headers))


class SendGridSigner:
    name, path, has_timestamp = "sendgrid", "/webhooks/sendgrid", True

    def __init__(self, settings):
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.other = ec.generate_private_key(ec.SECP256R1())
        der = self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        settings.COMMS_SENDGRID_VERIFICATION_KEY = base64.b64encode(der).decode()

    def events(self, *, ref, address="ada@example.com", event="delivered", event_id=None, bounce_kind="bounce",
               reason="", ts=None) -> str:
        return fixture("sendgrid/events.json", address=address, ts=int(ts or time.time()), event=event,
                       event_id=event_id or secrets.token_hex(8), ref=ref, reason=reason, bounce_kind=bounce_kind)

    def sign(self, body: str, *, ts=None, key=None, omit=None) -> Req:
        stamp = str(int(ts if ts is not None else time.time()))
        signature = (key or self.key).sign(stamp.encode() + body.encode(), ec.ECDSA(hashes.SHA256()))
        headers = {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                   "X-Twilio-Email-Event-Webhook-Timestamp": stamp}
        headers.pop(omit or "", None)
        return Req(self.path, body.encode(), "application/json", headers)

    def case(self, case: str, ref: str) -> Req:
        body = self.events(ref=ref)
        return {"valid": lambda: self.sign(body), "tampered": lambda: tamper(self.sign(body)),
                "wrong_key": lambda: self.sign(body, key=self.other),
                "skew": lambda: self.sign(body, ts=time.time() - 3600),
                "missing_header": lambda: self.sign(body, omit="X-Twilio-Email-Event-Webhook-Signature")}[case]()


class MailgunSigner:
    name, path, has_timestamp = "mailgun", "/webhooks/mailgun", True

    def __init__(self, settings):
        self.key = "key-" + secrets.token_hex(16)
        settings.COMMS_MAILGUN_SIGNING_KEY = self.key

    def event(self, *, ref, address="ada@example.com", event="delivered", severity="", event_id=None, ts=None,
              key=None, token=None, reason="") -> Req:
        stamp = str(int(ts if ts is not None else time.time()))
        token = token or secrets.token_hex(25)
        signature = hmac.new((key or self.key).encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
        body = fixture("mailgun/event.json", ts=stamp, token=token, signature=signature, event=event,
                       severity=severity, event_id=event_id or secrets.token_hex(8), address=address, ref=ref,
                       reason=reason)
        return Req(self.path, body.encode(), "application/json")

    def case(self, case: str, ref: str) -> Req:
        if case == "missing_header":  # Mailgun's "header" is the signature block inside the body
            req = self.event(ref=ref)
            data = json.loads(req.body)
            del data["signature"]["signature"]
            return Req(self.path, json.dumps(data).encode(), "application/json")
        if case == "tampered":
            req = self.event(ref=ref)
            data = json.loads(req.body)
            data["signature"]["timestamp"] = str(int(data["signature"]["timestamp"]) + 1)
            return Req(self.path, json.dumps(data).encode(), "application/json")
        return {"valid": lambda: self.event(ref=ref), "wrong_key": lambda: self.event(ref=ref, key="key-wrong"),
                "skew": lambda: self.event(ref=ref, ts=time.time() - 3600)}[case]()


class PostmarkSigner:
    name, path, has_timestamp = "postmark", "/webhooks/postmark", False

    def __init__(self, settings):
        self.auth = "postmark:" + secrets.token_urlsafe(12)
        settings.COMMS_POSTMARK_WEBHOOK_AUTH = self.auth

    def bounce(self, *, ref, address="ada@example.com", kind="HardBounce", id=None, auth=None) -> Req:
        body = fixture("postmark/bounce.json", id=id or secrets.randbelow(10**9), bounce_kind=kind, ref=ref,
                       address=address)
        return self.sign(body, auth=auth)

    def delivery(self, *, ref, address="ada@example.com") -> Req:
        return self.sign(fixture("postmark/delivery.json", ref=ref, address=address))

    def sign(self, body: str, *, auth=None, omit=False) -> Req:
        headers = {} if omit else {"Authorization": "Basic " + base64.b64encode((auth or self.auth).encode()).decode()}
        return Req(self.path, body.encode(), "application/json", headers)

    def case(self, case: str, ref: str) -> Req:
        body = fixture("postmark/delivery.json", ref=ref, address="ada@example.com")
        return {"valid": lambda: self.sign(body), "wrong_key": lambda: self.sign(body, auth="postmark:wrong"),
                "missing_header": lambda: self.sign(body, omit=True)}[case]()


class _CertServer:
    """Serves the SNS signing certificate (and records SubscribeURL visits) on loopback."""

    def __init__(self, pem: bytes):
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                data = pem if self.path.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _self_signed() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test.local")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


class SesSigner:
    name, path, has_timestamp = "ses", "/webhooks/ses", True
    topic = "arn:aws:sns:eu-west-1:123456789012:ses-events"
    _keys = None

    def __init__(self, settings):
        if SesSigner._keys is None:  # RSA key generation is slow: once per session
            SesSigner._keys = (_self_signed(), _self_signed())
        (self.key, pem), (self.other, _) = SesSigner._keys
        self.server = _CertServer(pem)
        self.cert_url = f"{self.server.url}/SimpleNotificationService-{secrets.token_hex(4)}.pem"
        settings.COMMS_SNS_HOST_PATTERN = r"^http://127\.0\.0\.1:%d/" % self.server.httpd.server_port
        settings.COMMS_SES_TOPIC_ARNS = [self.topic]

    def bounce_message(self, *, ref, message_id="", address="ada@example.com", kind="Permanent") -> str:
        return fixture("ses/bounce_message.json", bounce_kind=kind, address=address, ref=ref, message_id=message_id,
                       timestamp=dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"))

    def envelope(self, message: str, *, sns_type="Notification", ts=None, sns_id=None, topic=None,
                 cert_url=None, version="1", extra=None) -> dict:
        when = ts or dt.datetime.now(dt.timezone.utc)
        data = {"Type": sns_type, "MessageId": sns_id or secrets.token_hex(16), "TopicArn": topic or self.topic,
                "Message": message, "Timestamp": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "SignatureVersion": version, "SigningCertURL": cert_url or self.cert_url}
        data.update(extra or {})
        return data

    def sign(self, data: dict, *, key=None, omit_header=False) -> Req:
        from webhooks.providers.ses import string_to_sign

        digest = hashes.SHA1() if data["SignatureVersion"] == "1" else hashes.SHA256()
        data["Signature"] = base64.b64encode((key or self.key).sign(string_to_sign(data), padding.PKCS1v15(),
                                                                     digest)).decode()
        headers = {} if omit_header else {"x-amz-sns-message-type": data["Type"],
                                          "x-amz-sns-message-id": data["MessageId"],
                                          "x-amz-sns-topic-arn": data["TopicArn"]}
        return Req(self.path, json.dumps(data).encode(), "text/plain; charset=UTF-8", headers)

    def case(self, case: str, ref: str) -> Req:
        env = self.envelope(self.bounce_message(ref=ref))
        if case == "tampered":
            req = self.sign(env)
            data = json.loads(req.body)
            data["Message"] = data["Message"].replace("ada@", "eve@")
            return Req(self.path, json.dumps(data).encode(), req.content_type, req.headers)
        return {"valid": lambda: self.sign(env), "wrong_key": lambda: self.sign(env, key=self.other),
                "skew": lambda: self.sign(self.envelope(self.bounce_message(ref=ref), ts=dt.datetime.now(
                    dt.timezone.utc) - dt.timedelta(hours=5))),
                "missing_header": lambda: self.sign(env, omit_header=True)}[case]()

    def close(self):
        self.server.close()


class TwilioSigner:
    name, path, has_timestamp = "twilio", "/webhooks/twilio/status", False
    sid = "AC" + "1" * 32

    def __init__(self, settings):
        self.token = secrets.token_hex(16)
        settings.COMMS_TWILIO = {**settings.COMMS_TWILIO, "account_sid": self.sid, "auth_token": self.token}

    def form(self, fields: dict, *, path=None, url=None, token=None, omit=False, headers=None) -> Req:
        path = path or self.path
        signed_url = url or f"http://testserver{path}"
        signature = RequestValidator(token or self.token).compute_signature(signed_url, fields)
        hdrs = dict(headers or {})
        if not omit:
            hdrs["X-Twilio-Signature"] = signature
        return Req(path, urlencode(fields).encode(), "application/x-www-form-urlencoded", hdrs)

    def status(self, *, sid, status="delivered", to="+14155550123", error_code="", **kw) -> Req:
        fields = json.loads(fixture("twilio/status.json", sid=sid, status=status, to=to, error_code=error_code))
        if not error_code:
            del fields["ErrorCode"]
        return self.form(fields, **kw)

    def case(self, case: str, ref: str) -> Req:
        if case == "tampered":
            req = self.status(sid=ref)
            return Req(req.path, req.body.replace(b"delivered", b"undelivered"), req.content_type, req.headers)
        return {"valid": lambda: self.status(sid=ref), "wrong_key": lambda: self.status(sid=ref, token="0" * 32),
                "missing_header": lambda: self.status(sid=ref, omit=True)}[case]()


class PushSigner:
    name, path, has_timestamp = "push", "/webhooks/push", True

    def __init__(self, settings):
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        settings.COMMS_PUSH_FEEDBACK_SECRET = self.secret

    def feedback(self, token: str, *, reason="UNREGISTERED", secret=None, ts=None, omit=None) -> Req:
        body = json.dumps({"type": "push.token_invalid", "data": {"token": token, "reason": reason}})
        msg_id = "msg_" + secrets.token_hex(8)
        when = dt.datetime.fromtimestamp(ts or time.time(), tz=dt.timezone.utc)
        signature = Webhook(secret or self.secret).sign(msg_id, when, body)
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
                   "webhook-signature": signature}
        headers.pop(omit or "", None)
        return Req(self.path, body.encode(), "application/json", headers)

    def case(self, case: str, ref: str) -> Req:
        wrong = "whsec_" + base64.b64encode(b"x" * 24).decode()
        return {"valid": lambda: self.feedback(ref), "tampered": lambda: tamper_push(self.feedback(ref)),
                "wrong_key": lambda: self.feedback(ref, secret=wrong),
                "skew": lambda: self.feedback(ref, ts=time.time() - 3600),
                "missing_header": lambda: self.feedback(ref, omit="webhook-signature")}[case]()


def tamper_push(req: Req) -> Req:
    return Req(req.path, req.body.replace(b"UNREGISTERED", b"NOT_FOUND"), req.content_type, req.headers)


class TwilioVoiceSigner(TwilioSigner):
    """Call status callbacks: signed like SMS (tests/fixtures/twilio/call_status.json)."""

    name, path = "twilio_voice", "/webhooks/twilio/voice"

    def status(self, *, sid, status="completed", to="+14155550123", answered_by="human", **kw) -> Req:
        return self.form(json.loads(fixture("twilio/call_status.json", sid=sid, status=status, to=to,
                                            answered_by=answered_by)), **kw)

    def case(self, case: str, ref: str) -> Req:
        if case == "tampered":
            req = self.status(sid=ref)
            return Req(req.path, req.body.replace(b"completed", b"busy"), req.content_type, req.headers)
        return super().case(case, ref)


class TwilioGatherSigner(TwilioSigner):
    """The Gather action (tests/fixtures/twilio/gather.json); its URL carries the call's language."""

    name, path = "twilio_voice_gather", "/webhooks/twilio/voice/gather?lang=en-US"

    def status(self, *, sid, digits="1", to="+14155550123", **kw) -> Req:
        return self.form(json.loads(fixture("twilio/gather.json", sid=sid, digits=digits, to=to)), **kw)

    def case(self, case: str, ref: str) -> Req:
        if case == "tampered":
            req = self.status(sid=ref)
            return Req(req.path, req.body.replace(b"Digits=1", b"Digits=2"), req.content_type, req.headers)
        return super().case(case, ref)


SIGNERS = {s.name: s for s in (SendGridSigner, MailgunSigner, PostmarkSigner, SesSigner, TwilioSigner, PushSigner,
                               TwilioVoiceSigner, TwilioGatherSigner)}


# --- issue 18: Postal (RSA over the body), Bandwidth (callback basic auth), Vonage (sig in the fields) -----
class PostalSigner:
    name, path, has_timestamp = "postal", "/webhooks/postal", False

    def __init__(self, settings):
        from comms.devserver.standins.postal import public_key_b64

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        settings.COMMS_POSTAL_WEBHOOK_KEYS = [public_key_b64(self.key)]

    def sign(self, body: str, *, key=None, omit=None) -> Req:
        from comms.devserver.standins.postal import sign_headers

        headers = sign_headers(key or self.key, body.encode())
        headers.pop(omit or "", None)
        return Req(self.path, body.encode(), "application/json", headers)

    def case(self, case: str, ref: str) -> Req:
        body = fixture("postal/message_sent.json", ref=ref, address="ada@example.com", uuid=secrets.token_hex(8))
        return {"valid": lambda: self.sign(body), "tampered": lambda: tamper(self.sign(body)),
                "wrong_key": lambda: self.sign(body, key=self.other),
                "missing_header": lambda: self.sign(body, omit="X-Postal-Signature")}[case]()


class BandwidthSigner:
    # Basic auth does not cover the body, so there is no "tampered" cell (as for Postmark).
    name, path, has_timestamp, signs_body = "bandwidth", "/webhooks/bandwidth", False, False

    def __init__(self, settings):
        self.auth = "bandwidth:" + secrets.token_urlsafe(12)
        settings.COMMS_BANDWIDTH_WEBHOOK_AUTH = self.auth

    def sign(self, body: str, *, auth=None, omit=False) -> Req:
        headers = {} if omit else {"Authorization": "Basic " + base64.b64encode((auth or self.auth).encode()).decode()}
        return Req(self.path, body.encode(), "application/json", headers)

    def case(self, case: str, ref: str) -> Req:
        body = fixture("bandwidth/message_delivered.json", ref=ref, to="+14155550123")
        return {"valid": lambda: self.sign(body), "wrong_key": lambda: self.sign(body, auth="bandwidth:wrong"),
                "missing_header": lambda: self.sign(body, omit=True)}[case]()


class VonageSigner:
    name, path, has_timestamp = "vonage", "/webhooks/vonage/dlr", True

    def __init__(self, settings):
        self.secret = secrets.token_hex(16)
        settings.COMMS_VONAGE_SIGNATURE_SECRET, settings.COMMS_VONAGE_SIGNATURE_METHOD = self.secret, "sha256"

    def sign(self, fields: dict, *, secret=None, ts=None, omit=False) -> Req:
        from comms.devserver.standins.vonage import sign

        fields = {**fields, "timestamp": str(int(ts if ts is not None else time.time())), "nonce": secrets.token_hex(8)}
        if not omit:
            fields["sig"] = sign(fields, secret or self.secret, "sha256")
        return Req(self.path, urlencode(fields).encode(), "application/x-www-form-urlencoded")

    def case(self, case: str, ref: str) -> Req:
        fields = json.loads(fixture("vonage/dlr.json", ref=ref, msisdn="14155550123"))
        if case == "tampered":
            req = self.sign(fields)
            return Req(req.path, req.body.replace(b"delivered", b"failed"), req.content_type, req.headers)
        return {"valid": lambda: self.sign(fields), "wrong_key": lambda: self.sign(fields, secret="0" * 32),
                "skew": lambda: self.sign(fields, ts=time.time() - 3600),
                "missing_header": lambda: self.sign(fields, omit=True)}[case]()


SIGNERS.update({s.name: s for s in (PostalSigner, BandwidthSigner, VonageSigner)})
