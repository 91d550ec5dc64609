"""A loopback stand-in for Twilio's Messages and Calls APIs (2010-04-01), enough for the official SDK.

It checks HTTP Basic auth (AccountSid:AuthToken) like Twilio, answers 201 with a Message or Call
resource, and can be told to fail for a given 'To': e.g. (400, 21211, "Invalid 'To' Phone Number"),
(429, 20429, "Too Many Requests") or (503, None, "Service Unavailable").

Then it behaves like Twilio afterwards: given a StatusCallback it POSTs the real, signed status
callbacks (twilio_callbacks.py) — a message goes queued → sent → delivered, or undelivered/failed
with an ErrorCode (``sms_outcomes[to] = ("undelivered", "30003")``); a call goes initiated →
ringing → in-progress → completed (``AnsweredBy`` when machine detection was asked for; the pressed
``Digits`` POSTed to a ``<Gather>``'s action first), or ends busy / no-answer / failed / canceled
(``call_outcomes[to] = {"status": "busy"}``, or ``{"answered_by": "machine_end_beep"}``,
``{"digits": "2"}``). Callbacks go to loopback URLs only.

A handset's reply: ``inbound_sms`` builds the form Twilio posts to the number's inbound webhook,
signed with the auth token as Twilio signs it (X-Twilio-Signature), with MMS media served by the
stand-in under .../Messages/<sid>/Media/<id> (basic auth, as accounts that enforce media auth).
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from urllib.parse import parse_qs
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

from comms.devserver.standins.httpserver import StandInServer
from comms.devserver.standins.twilio_callbacks import CallbackSender


class TwilioStandIn:
    def __init__(self, account_sid: str, auth_token: str, *, port: int = 0, latency_ms: float = 0.0,
                 callback_delay: float = 0.05):
        self.latency_ms = latency_ms
        self.account_sid, self.auth_token = account_sid, auth_token
        self.on_message = None  # callable(form) for each accepted message (`make run` prints them)
        self.on_call = None  # callable(form) for each accepted call
        self.messages: list[dict] = []
        self.calls: list[dict] = []
        self.failures: dict[str, list[tuple[int, int | None, str]]] = {}
        self.sms_outcomes: dict[str, tuple[str, str]] = {}  # to -> (final MessageStatus, ErrorCode)
        self.call_outcomes: dict[str, dict] = {}  # to -> {"status", "answered_by", "digits", "duration"}
        self.callbacks = CallbackSender(account_sid, lambda: self.auth_token, delay=callback_delay)
        self.media: dict[str, tuple[bytes, str]] = {}  # path -> (bytes, content type)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Twilio's API

            def do_GET(self):
                expected = "Basic " + base64.b64encode(f"{stand_in.account_sid}:{stand_in.auth_token}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                found = stand_in.media.get(self.path)
                if found is None:
                    return self._reply(404, {"code": 20404, "message": "Not found", "status": 404})
                self.send_response(200)
                self.send_header("Content-Type", found[1])
                self.send_header("Content-Length", str(len(found[0])))
                self.end_headers()
                self.wfile.write(found[0])

            def do_POST(self):
                if stand_in.latency_ms:  # Twilio answers in 150-400 ms (benchmarks set this)
                    time.sleep(stand_in.latency_ms / 1000)
                expected = "Basic " + base64.b64encode(f"{stand_in.account_sid}:{stand_in.auth_token}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    return self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                account = f"/2010-04-01/Accounts/{stand_in.account_sid}"
                if self.path not in (f"{account}/Messages.json", f"{account}/Calls.json"):
                    return self._reply(404, {"code": 20404, "message": "Not found", "status": 404})
                fields = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                form = {k: v[0] for k, v in fields.items()}
                queue = stand_in.failures.get(form.get("To", ""))
                if queue:
                    status, code, text = queue.pop(0)
                    return self._reply(status, {"code": code, "message": text, "status": status})
                if self.path.endswith("/Calls.json"):
                    return self._call(form, fields.get("StatusCallbackEvent", []))
                sid = "SM" + secrets.token_hex(16)
                stand_in.messages.append({**form, "sid": sid})
                if stand_in.on_message:
                    stand_in.on_message({**form, "sid": sid})
                self._reply(201, {"sid": sid, "account_sid": stand_in.account_sid, "to": form.get("To"),
                                  "from": form.get("From"), "body": form.get("Body"), "status": "queued",
                                  "messaging_service_sid": form.get("MessagingServiceSid"), "num_segments": "1"})
                if form.get("StatusCallback"):
                    stand_in.callbacks.run(lambda: stand_in.sms_progress(form, sid))

            def _call(self, form, events):
                if not (form.get("Twiml") or form.get("Url")):
                    return self._reply(400, {"code": 21205, "message": "Url or Twiml is required", "status": 400})
                if form.get("Twiml"):
                    try:
                        ElementTree.fromstring(form["Twiml"])
                    except ElementTree.ParseError as exc:  # Twilio: 12100 Document parse failure
                        return self._reply(400, {"code": 12100, "message": f"Twiml parse failure: {exc}",
                                                 "status": 400})
                sid = "CA" + secrets.token_hex(16)
                call = {**form, "sid": sid, "StatusCallbackEvent": list(events)}
                stand_in.calls.append(call)
                if stand_in.on_call:
                    stand_in.on_call(call)
                self._reply(201, {"sid": sid, "account_sid": stand_in.account_sid, "to": form.get("To"),
                                  "from": form.get("From"), "status": "queued", "direction": "outbound-api",
                                  "api_version": "2010-04-01"})
                stand_in.callbacks.run(lambda: stand_in.call_progress(call))

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = StandInServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.callbacks.wait(2)
        self.server.shutdown()
        self.server.server_close()
        self.callbacks.close()

    def inbound_sms(self, *, url: str, sender: str, to: str, body: str,
                    media: list[tuple[bytes, str]] = ()) -> tuple[dict[str, str], str]:
        """(form fields, X-Twilio-Signature) of the webhook Twilio posts to `url` for a handset's reply
        (twilio.com/docs/messaging/guides/webhook-request), media stored here for fetching."""
        sid = "MM" + secrets.token_hex(16) if media else "SM" + secrets.token_hex(16)
        fields = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid, "From": sender, "To": to,
                  "Body": body, "NumMedia": str(len(media)), "NumSegments": "1", "ApiVersion": "2010-04-01"}
        for n, (data, content_type) in enumerate(media):
            path = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media/ME{secrets.token_hex(16)}"
            self.media[path] = (data, content_type)
            fields[f"MediaUrl{n}"], fields[f"MediaContentType{n}"] = self.url + path, content_type
        return fields, RequestValidator(self.auth_token).compute_signature(url, fields)

    # -- what Twilio does after accepting (on the sender's thread) ----------------------------------------
    def sms_progress(self, form: dict, sid: str) -> None:
        """queued → sent → delivered, or the outcome set for this number (undelivered/failed + ErrorCode)."""
        final, error_code = self.sms_outcomes.get(form.get("To", ""), ("delivered", ""))
        base = {"MessageSid": sid, "SmsSid": sid, "AccountSid": self.account_sid, "From": form.get("From", ""),
                "To": form.get("To", ""), "ApiVersion": "2010-04-01"}
        for status in ("queued", "sent", final):
            self.callbacks.pause()
            fields = {**base, "MessageStatus": status, "SmsStatus": status}
            if status == final and error_code:
                fields["ErrorCode"] = error_code
            self.callbacks.signed_post(form["StatusCallback"], fields)

    def call_progress(self, call: dict) -> None:
        """The call's progress events, as Twilio sends them for the requested StatusCallbackEvent values."""
        outcome = {"status": "completed", "answered_by": "human", "digits": "1", "duration": "12",
                   **self.call_outcomes.get(call.get("To", ""), {})}
        url, wanted = call.get("StatusCallback", ""), set(call["StatusCallbackEvent"]) | {"completed"}
        base = {"CallSid": call["sid"], "AccountSid": self.account_sid, "From": call.get("From", ""),
                "To": call.get("To", ""), "Called": call.get("To", ""), "Caller": call.get("From", ""),
                "Direction": "outbound-api", "ApiVersion": "2010-04-01", "CallbackSource": "call-progress-events"}
        sequence = 0

        def progress(event: str, status: str, **extra: str) -> None:
            nonlocal sequence
            if not url or event not in wanted:
                return
            self.callbacks.pause()
            self.callbacks.signed_post(url, {**base, "CallStatus": status, "SequenceNumber": str(sequence),
                                             "Timestamp": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
                                             **extra})
            sequence += 1

        status = outcome["status"]
        progress("initiated", "initiated")
        if status == "failed":
            return progress("completed", "failed", CallDuration="0", Duration="0")
        progress("ringing", "ringing")
        if status != "completed":  # busy, no-answer, canceled: never answered
            return progress("completed", status, CallDuration="0", Duration="0")
        detection = {"AnsweredBy": outcome["answered_by"]} if call.get("MachineDetection") else {}
        progress("answered", "in-progress", **detection)
        gather = _gather_action(call.get("Twiml", ""))
        if gather and outcome.get("digits") and outcome["answered_by"] == "human":
            self.callbacks.pause()
            self.callbacks.signed_post(gather, {**base, "CallStatus": "in-progress", "Digits": outcome["digits"],
                                                "FinishedOnKey": "", **detection})
        progress("completed", "completed", CallDuration=outcome["duration"], Duration="1", **detection)


def _gather_action(twiml: str) -> str:
    """The action URL of the TwiML's <Gather>, if it has one."""
    try:
        root = ElementTree.fromstring(twiml) if twiml else None
    except ElementTree.ParseError:
        return ""
    gather = root.find("Gather") if root is not None else None
    return gather.get("action", "") if gather is not None else ""


def main(argv: list[str] | None = None) -> None:
    """`make run`: serve on a fixed loopback port and print every SMS it takes."""
    import argparse

    parser = argparse.ArgumentParser(description="Twilio Messages and Calls API stand-in on loopback")
    parser.add_argument("--port", type=int, default=8930)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each message this much later")
    args = parser.parse_args(argv)
    stand_in = TwilioStandIn(args.account_sid, args.auth_token, port=args.port, latency_ms=args.latency_ms)
    stand_in.on_message = lambda form: print(f"SMS {form.get('From') or form.get('MessagingServiceSid')} -> "
                                             f"{form.get('To')} [{form['sid']}]: {form.get('Body')!r}", flush=True)
    stand_in.on_call = lambda call: print(f"CALL {call.get('From')} -> {call.get('To')} [{call['sid']}]: "
                                          f"{call.get('Twiml', call.get('Url', ''))}", flush=True)
    print(f"Twilio stand-in on {stand_in.url} (account {args.account_sid}; sends signed status callbacks)",
          flush=True)
    try:
        while True:
            time.sleep(60)
            del stand_in.messages[:-1000]  # keep memory flat when it runs for days
            del stand_in.calls[:-1000]
            del stand_in.callbacks.sent[:-1000]
    except KeyboardInterrupt:
        stand_in.close()
        sys.exit(0)


if __name__ == "__main__":
    main()
