"""Mixed-channel throughput: email + SMS + push + in-app + webhook + voice through the real pipeline.

    python bench/mixed.py [N]        (default 10,000 messages; BENCH_WORKERS worker processes, default 2)

Everything real except the far ends: bulk API services write the rows (COPY), Celery workers claim
them (SKIP LOCKED) and hand them to the real providers: SMTP into a counting sink process, the
Twilio SDK into the Twilio stand-in process, firebase-admin (OAuth2 + FCM HTTP v1) into the FCM
stand-in process and httpx over HTTP/2 + TLS into the APNs stand-in process (two devices per
recipient, Android on FCM and iOS on APNs directly: every push message is one FCM request, and its
iOS share one follow-up message, one APNs request), the in-app
inbox table, signed Standard Webhooks POSTs into a loopback receiver, and voice calls through the
Twilio SDK's Calls API into the Twilio stand-in (which then POSTs each call's four signed status
callbacks to the receiver); three more tenants send through Bandwidth and Vonage (httpx, SMS) and
Postal (anymail, email) stand-in processes (GATEWAYS). It prints figures and asserts nothing; results
go into docs/benchmarks.md by hand.

Web Push ("webpush" in the figures): push messages to recipients whose only device is a browser
subscription, through the push chain [fcm, webpush, apns] (routed straight to Web Push), pywebpush
(RFC 8291 encryption, VAPID) over HTTPS into the Web Push stand-in process, which decrypts every one.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import PY, Env, pct  # noqa: E402
from comms.devserver.embedded import free_port  # noqa: E402

MIX = {"email": 0.4, "sms": 0.2, "push": 0.2, "in_app": 0.1, "webhook": 0.1}
# Voice calls (Twilio Calls API through the SDK, TwiML built per call) on top of N: 5 % more messages.
MIX["voice"] = 0.05
MIX["webpush"] = 0.1  # channel push, provider webpush (see the docstring)
SID, TOKEN = "AC" + "7" * 32, "bench-token"
# Share of N sent by a tenant of its own whose ChannelProvider row is this gateway (issue 18).
GATEWAYS = {"bandwidth": ("sms", 0.05), "vonage": ("sms", 0.05), "postal": ("email", 0.05)}
GATEWAY_PORTS = {name: free_port() for name in GATEWAYS}


def _provider_env(folder: Path) -> dict[str, str]:
    """Ports and a generated FCM service account for the stand-ins; set before Django starts."""
    from comms.devserver.standins.fcm import service_account

    twilio_port, fcm_port = free_port(), free_port()
    credential = folder / "fcm-sa.json"
    credential.write_text(json.dumps(service_account(token_uri=f"http://127.0.0.1:{fcm_port}/token",
                                                     project_id="comms-bench")))
    return {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_BASE_URL": f"http://127.0.0.1:{twilio_port}", "FCM_SERVICE_ACCOUNT_FILE": str(credential),
            "FCM_ENDPOINT": f"http://127.0.0.1:{fcm_port}", "COMMS_OUTBOUND_ALLOWED_NETWORKS": "127.0.0.0/8",
            # An account whose calls-per-second limit was raised (Twilio's default is 1 call/s).
            "TWILIO_VOICE_CPS": "10000", **_webpush_env(folder), **_apns_env(folder)}


def _webpush_env(folder: Path) -> dict[str, str]:
    """Web Push on, its VAPID pair and the stand-in's certificate in this run's folder."""
    from comms.devserver.standins.webpush import self_signed

    cert, _ = self_signed(folder)
    return {"WEBPUSH_ENABLED": "1", "WEBPUSH_VAPID_FILE": str(folder / "vapid.json"), "WEBPUSH_CA_BUNDLE": str(cert),
            "BENCH_WEBPUSH_PORT": str(free_port())}


def _webpush_directory(n: int) -> None:
    """Recipients w0..w{n-1}, each with one browser subscription issued by the stand-in."""
    import httpx

    from comms import webpush
    from comms.models import Recipient
    from comms.services import tenant_get_default, webpush_subscribe

    public, _ = webpush.vapid_generate()
    tenant = tenant_get_default()
    origin = f"https://127.0.0.1:{os.environ['BENCH_WEBPUSH_PORT']}"
    with httpx.Client(verify=os.environ["WEBPUSH_CA_BUNDLE"]) as client:
        for i in range(n):
            sub = client.post(f"{origin}/subscribe", json={"applicationServerKey": public}).json()
            person = Recipient.objects.create(tenant=tenant, external_id=f"w{i}", email=f"w{i}@example.com")
            webpush_subscribe(recipient=person, subscription=webpush.subscription_validate(sub))


def _apns_env(folder: Path) -> dict[str, str]:
    """APNs directly for iOS: a signing key, the stand-in's TLS files (made before the workers start)."""
    from comms.devserver.standins.apns import signing_key, tls_files

    key = folder / "apns-key.p8"
    key.write_text(signing_key())
    ca_file, _cert, _key = tls_files(folder)
    return {"APNS_TEAM_ID": "BENCHTEAM1", "APNS_KEY_ID": "BENCHKEY01", "APNS_PRIVATE_KEY_FILE": str(key),
            "APNS_TOPIC": "com.example.bench", "APNS_CA_FILE": str(ca_file),
            "APNS_ENDPOINT": f"https://127.0.0.1:{free_port()}",
            # BENCH_PUSH_IOS_VIA=fcm: the same devices with iOS through FCM (no APNs share), to compare.
            "COMMS_PUSH_IOS_VIA": os.environ.get("BENCH_PUSH_IOS_VIA", "apns")}


def _standins(env: Env, provider_env: dict[str, str]):
    """The Twilio and FCM stand-ins in their own processes, and a webhook receiver here."""
    from comms.devserver.standins.http_receiver import Receiver

    env.spawn([PY, "-m", "comms.devserver.standins.twilio",
               "--port", provider_env["TWILIO_BASE_URL"].rsplit(":", 1)[1],
               "--account-sid", SID, "--auth-token", TOKEN])
    env.spawn([PY, "-m", "comms.devserver.standins.fcm",
               "--port", provider_env["FCM_ENDPOINT"].rsplit(":", 1)[1],
               "--service-account", provider_env["FCM_SERVICE_ACCOUNT_FILE"]])
    env.spawn([PY, "-m", "comms.devserver.standins.webpush", "--port", provider_env["BENCH_WEBPUSH_PORT"],
               "--folder", str(Path(provider_env["WEBPUSH_CA_BUNDLE"]).parent)])
    env.spawn([PY, "-m", "comms.devserver.standins.bandwidth", "--port", str(GATEWAY_PORTS["bandwidth"]),
               "--account-id", "1", "--username", "u", "--password", "p", "--application-id", "a"])
    env.spawn([PY, "-m", "comms.devserver.standins.vonage", "--port", str(GATEWAY_PORTS["vonage"]),
               "--api-key", "k", "--api-secret", "s"])
    env.spawn([PY, "-m", "comms.devserver.standins.postal", "--port", str(GATEWAY_PORTS["postal"]),
               "--api-key", "k", "--key-file", str(Path(tempfile.mkdtemp(prefix="comms-postal-")) / "key.pem")])
    env.spawn([PY, "-m", "comms.devserver.standins.apns", "--port", provider_env["APNS_ENDPOINT"].rsplit(":", 1)[1],
               "--folder", str(Path(provider_env["APNS_CA_FILE"]).parent),
               "--key-file", provider_env["APNS_PRIVATE_KEY_FILE"], "--key-id", provider_env["APNS_KEY_ID"],
               "--team-id", provider_env["APNS_TEAM_ID"]])
    time.sleep(1.5)
    return Receiver()


def _directory(n: int) -> None:
    """Recipients for push and in-app (two push devices each: android on FCM, ios with an APNs token)."""
    import hashlib

    from comms.models import Device, Recipient
    from comms.services import tenant_get_default

    tenant = tenant_get_default()
    people = Recipient.objects.bulk_create([Recipient(tenant=tenant, external_id=f"r{i}", email=f"r{i}@example.com")
                                            for i in range(n)], batch_size=5000)
    def token(p, kind: str) -> str:
        name = f"tok-{p.external_id}-{kind}"
        return hashlib.sha256(name.encode()).hexdigest() if kind == "ios" else name

    Device.objects.bulk_create([Device(tenant=tenant, recipient=p, token=token(p, kind),
                                       platform=kind) for p in people for kind in ("android", "ios")],
                               batch_size=5000)


def _enqueue(n: int, hook_url: str) -> dict[str, int]:
    from comms.services import tenant_get_default
    from delivery.services import SendSpec, message_bulk_enqueue
    from delivery.services.webhooks import endpoint_create

    tenant = tenant_get_default()
    endpoint_create(tenant=tenant, url=hook_url, description="bench")
    counts = {channel: int(n * share) for channel, share in MIX.items()}
    people = max(counts["push"], counts["in_app"])
    _directory(people)
    recipients = {
        "email": [{"to": f"mix{i}@example.com"} for i in range(counts["email"])],
        "sms": [{"to": f"+1415555{i:04d}"} for i in range(counts["sms"])],
        "push": [{"recipient_id": f"r{i}"} for i in range(counts["push"])],
        "in_app": [{"recipient_id": f"r{i}"} for i in range(counts["in_app"])],
        "webhook": [{"to": hook_url} for _ in range(counts["webhook"])],
        "voice": [{"to": f"+1415556{i:04d}"} for i in range(counts["voice"])],
    }
    _webpush_directory(counts["webpush"])
    recipients["webpush"] = [{"recipient_id": f"w{i}"} for i in range(counts["webpush"])]
    bodies = {"email": "Your order shipped.\n" * 10, "sms": "Your code is 123456", "push": "Your order shipped",
              "in_app": "Your order shipped", "webhook": json.dumps({"type": "order.shipped", "order": 42}),
              "voice": "Your order 42 has shipped & arrives tomorrow."}
    bodies["webpush"] = "Your order shipped"
    for channel, rows in recipients.items():
        for offset in range(0, len(rows), 10_000):
            message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel="push" if channel == "webpush" else channel,
                                                              subject="Order shipped",
                                                              body=bodies[channel], priority=3),
                                 recipients=rows[offset:offset + 10_000])
    counts.update(_enqueue_gateways(n))
    return counts


def _enqueue_gateways(n: int) -> dict[str, int]:
    """One tenant per gateway, its only provider for the channel being that gateway's stand-in."""
    from comms.models import Tenant
    from delivery.models import ChannelProvider
    from delivery.services import SendSpec, message_bulk_enqueue

    paths = {"bandwidth": "delivery.providers.bandwidth.BandwidthProvider",
             "vonage": "delivery.providers.vonage.VonageProvider",
             "postal": "delivery.providers.anymail_esp.PostalProvider"}
    config = {"bandwidth": ({"account_id": "1", "application_id": "a", "from_number": "+15005550006"},
                            {"username": "u", "password": "p"}),
              "vonage": ({"from_number": "15005550007"}, {"api_key": "k", "api_secret": "s"}),
              "postal": ({"from_email": "bench@example.com"}, {"api_key": "k"})}
    counts = {}
    for name, (channel, share) in GATEWAYS.items():
        tenant = Tenant.objects.create(slug=f"bench-{name}", name=name)
        options, credentials = config[name]
        url_key = "api_url" if name == "postal" else "base_url"
        row = ChannelProvider(tenant=tenant, channel=channel, name=name, provider_class=paths[name],
                              is_primary=True, options={**options, url_key: f"http://127.0.0.1:{GATEWAY_PORTS[name]}/"})
        row.credentials = credentials
        row.save()
        count = counts[name] = int(n * share)
        rows = [{"to": f"gw{i}@example.com"} if channel == "email" else {"to": f"+1415555{i:04d}"}
                for i in range(count)]
        for offset in range(0, len(rows), 10_000):
            message_bulk_enqueue(tenant=tenant, spec=SendSpec(channel=channel, subject="Order shipped",
                                                              body="Your code is 123456", priority=3),
                                 recipients=rows[offset:offset + 10_000])
    return counts


def _cpu_seconds(env: Env) -> dict[str, float]:
    """CPU seconds (user + system, children included) of each process the bench started: the workers'
    cost apart from the stand-ins' (a real vendor's far end is not on our cores)."""
    try:
        import psutil
    except ImportError:
        return {}
    out: dict[str, float] = {}
    for proc in env.procs:
        try:
            tree = [psutil.Process(proc.pid)]
            tree += tree[0].children(recursive=True)
            cpu = sum(sum(p.cpu_times()[:2]) for p in tree)
        except psutil.Error:
            continue
        cmd = proc.args
        name = "workers" if "celery" in cmd else str(cmd[2]).rsplit(".", 1)[-1]
        out[name] = round(out.get(name, 0.0) + cpu, 1)
    return out


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else int(os.environ.get("BENCH_MIXED_N", 10_000))
    workers = int(os.environ.get("BENCH_WORKERS", 2))
    folder = Path(tempfile.mkdtemp(prefix="comms-mixed-"))
    provider_env = _provider_env(folder)
    os.environ.update(provider_env)
    env = Env()
    try:
        receiver = _standins(env, provider_env)
        # The Twilio stand-in's call status callbacks go to the receiver (counted apart from webhooks).
        os.environ["TWILIO_VOICE_CALLBACK_BASE"] = f"{receiver.url}/twilio"
        started = time.perf_counter()
        counts = _enqueue(n, f"{receiver.url}/hooks/orders")
        enqueue_s = time.perf_counter() - started
        total = sum(counts.values())
        worker_started = time.perf_counter()
        env.celery("p0,p1,p2,p3,p4", workers, "mixed")
        from django.db import connection
        from django.db.models import Count

        from delivery.models import Message

        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            pending = ["queued", "sending", "scheduled", "deferred"]
            done = Message.objects.exclude(status__in=pending).count()
            # iOS follow-ups (push to APNs) are rows of their own, made as the FCM part is sent
            if done >= total and not Message.objects.filter(status__in=pending).exists():
                break
            connection.close()
            time.sleep(0.25)
        finished = time.perf_counter()
        rows = [("webpush" if channel == "push" and (recipient or "").startswith("w") else channel,
                 *rest) for channel, provider, recipient, *rest in
                Message.objects.values_list("channel", "provider", "recipient__external_id", "status", "created_at",
                                            "sent_at")]
        per: dict[str, dict] = {}
        first_sent = min(s for _, st, _, s in rows if s)
        for channel in MIX:
            mine = [(st, c, s) for ch, st, c, s in rows if ch == channel]
            sent = [s for st, _, s in mine if st == "sent"]
            done_after = (max(sent) - first_sent).total_seconds() if sent else 0
            busy = (max(sent) - min(sent)).total_seconds() if len(sent) > 1 else 0
            per[channel] = {"messages": len(mine), "sent": len(sent), "not_sent": len(mine) - len(sent),
                            "done_after_s": round(done_after, 1), "busy_s": round(busy, 1),
                            "per_s_while_busy": round(len(sent) / busy, 1) if busy else None}
        result = {
            "messages": total, "worker_processes": workers, "enqueue_s": round(enqueue_s, 2),
            "drain_s": round(finished - worker_started, 2),
            "messages_per_s": round(total / (finished - worker_started), 1),
            "end_to_end_s": round(finished - started, 2), "per_channel": per,
            "webhook_requests_received": sum(1 for r in receiver.requests if r["path"].startswith("/hooks/")),
            "twilio_call_callbacks_received": sum(1 for r in receiver.requests if r["path"].startswith("/twilio/")),
            "sent_per_provider": dict(Message.objects.filter(status="sent").values_list("provider")
                                      .annotate(n=Count("id")).values_list("provider", "n")),
        }
        result["cpu_s_per_process"] = _cpu_seconds(env)
        latencies = [(s - first_sent).total_seconds() for _, st, _, s in rows if s]
        result["sent_p50_s_after_first"] = round(pct(latencies, 50), 2)
        by_provider = Message.objects.filter(provider__in=list(GATEWAYS)).values_list("provider", "status", "sent_at")
        result["gateways"] = {}
        for name in GATEWAYS:
            sent = sorted(s for p, st, s in by_provider if p == name and st == "sent")
            busy = (sent[-1] - sent[0]).total_seconds() if len(sent) > 1 else 0
            result["gateways"][name] = {"sent": len(sent), "busy_s": round(busy, 1),
                                        "per_s_while_busy": round(len(sent) / busy, 1) if busy else None}
        print("mixed-channel throughput:", json.dumps(result, indent=1))
        receiver.close()
    finally:
        env.close()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
