"""A loopback stand-in for Twilio's Messages API (2010-04-01), enough for the official SDK.

It checks HTTP Basic auth (AccountSid:AuthToken) like Twilio, answers 201 with a Message resource,
and can be told to fail for a given 'To': e.g. (400, 21211, "Invalid 'To' Phone Number"),
(429, 20429, "Too Many Requests") or (503, None, "Service Unavailable").

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

from twilio.request_validator import RequestValidator

from comms.devserver.standins.httpserver import StandInServer
from urllib.parse import parse_qs


class TwilioStandIn:
    def __init__(self, account_sid: str, auth_token: str, *, port: int = 0, latency_ms: float = 0.0):
        self.latency_ms = latency_ms
        self.account_sid, self.auth_token = account_sid, auth_token
        self.on_message = None  # callable(form) for each accepted message (`make run` prints them)
        self.messages: list[dict] = []
        self.failures: dict[str, list[tuple[int, int | None, str]]] = {}
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
                if self.path != f"/2010-04-01/Accounts/{stand_in.account_sid}/Messages.json":
                    return self._reply(404, {"code": 20404, "message": "Not found", "status": 404})
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
                queue = stand_in.failures.get(form.get("To", ""))
                if queue:
                    status, code, text = queue.pop(0)
                    return self._reply(status, {"code": code, "message": text, "status": status})
                sid = "SM" + secrets.token_hex(16)
                stand_in.messages.append({**form, "sid": sid})
                if stand_in.on_message:
                    stand_in.on_message({**form, "sid": sid})
                self._reply(201, {"sid": sid, "account_sid": stand_in.account_sid, "to": form.get("To"),
                                  "from": form.get("From"), "body": form.get("Body"), "status": "queued",
                                  "messaging_service_sid": form.get("MessagingServiceSid"), "num_segments": "1"})

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
        self.server.shutdown()
        self.server.server_close()

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


def main(argv: list[str] | None = None) -> None:
    """`make run`: serve on a fixed loopback port and print every SMS it takes."""
    import argparse

    parser = argparse.ArgumentParser(description="Twilio Messages API stand-in on loopback")
    parser.add_argument("--port", type=int, default=8930)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="answer each message this much later")
    args = parser.parse_args(argv)
    stand_in = TwilioStandIn(args.account_sid, args.auth_token, port=args.port, latency_ms=args.latency_ms)
    stand_in.on_message = lambda form: print(f"SMS {form.get('From') or form.get('MessagingServiceSid')} -> "
                                             f"{form.get('To')} [{form['sid']}]: {form.get('Body')!r}", flush=True)
    print(f"Twilio stand-in on {stand_in.url} (account {args.account_sid})", flush=True)
    try:
        while True:
            time.sleep(60)
            del stand_in.messages[:-1000]  # keep memory flat when it runs for days
    except KeyboardInterrupt:
        stand_in.close()
        sys.exit(0)


if __name__ == "__main__":
    main()
