"""Shared fixtures: real PostgreSQL/Redis come from tests.embedded_servers; here are the rest."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from comms.models import Scope
from comms.services import api_key_create, tenant_get_default
from comms.devserver.smtp_sink import start_sink
from delivery import health, routing
from comms import quotas
from comms.redis import redis_client
from comms.devserver.standins.smtp import ScriptedSink

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _sink_server():
    """Listening from the start on every worker: a test that sends email without asking for ``smtp_sink``
    must not depend on an earlier test (on that xdist worker) having started it."""
    handler = ScriptedSink()
    controller = start_sink(handler, port=int(os.environ["EMAIL_PORT"]))
    yield handler
    controller.stop()


@pytest.fixture
def smtp_sink(_sink_server):
    _sink_server.reset()
    yield _sink_server
    _sink_server.reset()


@pytest.fixture(autouse=True)
def _clean_redis_and_caches():
    redis_client().flushdb()
    routing.clear_cache()
    health.reset_local()
    quotas.forget()
    yield


@pytest.fixture(autouse=True)
def _migration_rows(request):
    """Put back the rows data migrations made (roles, the category catalogue, the default tenant) when a
    transactional test's flush removed them. Serially pytest-django runs transactional tests last; under
    xdist a worker takes whole files, so a database test can follow a flush. One query when present."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None and not {"db", "transactional_db"} & set(request.fixturenames):
        return
    request.getfixturevalue("_django_db_helper")
    from django.contrib.auth.models import Group

    if Group.objects.filter(name="CommsViewer").exists():
        return
    import importlib

    from django.apps import apps

    from admin_console.roles import roles_ensure

    roles_ensure()
    importlib.import_module("preferences.migrations.0002_catalogue_and_consent_ledger").load(apps, None)
    tenant_get_default()


@pytest.fixture
def tenant(db):
    return tenant_get_default()


@pytest.fixture
def other_tenant(db):
    from comms.models import Tenant

    return Tenant.objects.create(slug="other", name="Other")


def _client(tenant, scopes):
    _, raw = api_key_create(tenant=tenant, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.raw_key = raw
    return client


@pytest.fixture
def api(tenant):
    """An API client holding a send+read key of the default tenant."""
    return _client(tenant, [Scope.MESSAGES_SEND, Scope.MESSAGES_READ])


@pytest.fixture
def admin_api(tenant):
    return _client(tenant, [Scope.ADMIN])


@pytest.fixture
def make_client():
    return _client


def worker_env() -> dict[str, str]:
    """Environment for a subprocess that must see the test database."""
    env = dict(os.environ)
    params = connection.settings_dict
    host = params["OPTIONS"].get("host") or params["HOST"]
    env["DATABASE_URL"] = f"postgresql://{params['USER']}:@/{params['NAME']}?host={host}"
    env["COMMS_PROCESS_NAME"] = "comms-test-worker"
    return env


class CeleryWorker:
    """A real Celery worker process consuming the given queues (solo pool: the process does the work)."""

    def __init__(self, queues: str, name: str, extra_env: dict | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queues, "-P", "solo",
             "-n", f"{name}@test", "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env={**worker_env(), **(extra_env or {})},
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def celery_worker():
    workers: list[CeleryWorker] = []

    def start(queues: str = "p0,p1,p2,p3,p4", name: str = "w", **extra_env) -> CeleryWorker:
        worker = CeleryWorker(queues, name, extra_env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, message: str = "condition"):
    """Poll until predicate() is truthy (behavioural wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


def claim_in_threads(workers: int = 4, limit: int = 25) -> dict[str, list]:
    """Claim everything due from ``workers`` threads started together; {owner: claimed ids}. Each
    thread has its own database connection, as separate worker processes would."""
    import threading

    from django.db import connections

    from delivery.services import claim_batch

    claimed: dict[str, list] = {}
    start = threading.Barrier(workers)

    def worker(name: str) -> None:
        mine = []
        start.wait()
        while batch := claim_batch(max_priority=4, limit=limit, owner=name):
            mine.extend(m.id for m in batch)
        claimed[name] = mine
        connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return claimed


@contextlib.contextmanager
def serving(args, name: str, *, extra_env: dict[str, str] | None = None, log=None):
    """Run a real server process on the test database until it answers /healthz; yields its URL.
    ``log``: an open file that gets the server's stdout and stderr (its log lines)."""
    import httpx

    from comms.devserver.embedded import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", *args(port)], cwd=ROOT, env={**worker_env(), **(extra_env or {})},
                            stdout=log, stderr=subprocess.STDOUT if log else None)
    url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode} before answering")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        # Generous: a loaded CI machine can take long to import Django in several processes.
        wait_for(up, timeout=120, message=f"{name} to answer")
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def web_server():
    """The real web tier (gunicorn, several processes and threads) on the test database."""
    with serving(lambda port: ["gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "3",
                               "-k", "gthread", "--threads", "8", "--log-level", "warning"], "gunicorn") as url:
        yield url


def _uvicorn(port: int) -> list[str]:
    return ["uvicorn", "config.asgi:application", "--port", str(port), "--log-level", "warning"]


@pytest.fixture
def asgi_server():
    """The ASGI process (uvicorn) that serves the live inbox stream."""
    with serving(_uvicorn, "uvicorn") as url:
        yield url


@pytest.fixture
def make_asgi_server(tmp_path):
    """Start uvicorn with extra settings in its environment; yields (url, path of its log)."""
    with contextlib.ExitStack() as stack:
        def start(**env: str) -> tuple[str, Path]:
            log_path = tmp_path / f"uvicorn-{len(env)}-{time.monotonic_ns()}.log"
            log = stack.enter_context(open(log_path, "w"))
            return stack.enter_context(serving(_uvicorn, "uvicorn", extra_env=env, log=log)), log_path

        yield start


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """After the run, end sessions that subprocesses or server threads left open, so the test
    database can be dropped cleanly."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session")
def _spamd_server(tmp_path_factory):
    """One real spamd per session on a free loopback port (local rules only, no network)."""
    from comms.devserver.spamd import Spamd

    server = Spamd(tmp_path_factory.mktemp("spamd"))
    yield server
    server.stop()


@pytest.fixture
def spamd(_spamd_server, settings):
    settings.COMMS_SPAMD_HOST, settings.COMMS_SPAMD_PORT = "127.0.0.1", _spamd_server.port
    settings.COMMS_SPAMD_TIMEOUT = 30.0  # the first scan of a session warms spamd's rules
    return _spamd_server


# The Twilio Messages API stand-in as the SMS provider: the real twilio SDK talks to it on loopback.
TWILIO_SID, TWILIO_TOKEN = "AC" + "1" * 32, "secret-token"


@pytest.fixture
def twilio():
    from comms.devserver.standins.twilio import TwilioStandIn
    from delivery.models import ChannelProvider

    stand_in = TwilioStandIn(TWILIO_SID, TWILIO_TOKEN)
    provider = ChannelProvider(channel="sms", name="twilio", provider_class="delivery.providers.twilio.TwilioProvider",
                               is_primary=True, options={"from_number": "+15005550006", "base_url": stand_in.url})
    provider.credentials = {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}
    provider.save()
    yield stand_in
    stand_in.close()
