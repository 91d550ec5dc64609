"""R3 (fast part): while PostgreSQL is unreachable the API answers a typed, retryable 503."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from comms.devserver.embedded import free_port
from tests.conftest import ROOT, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


def test_api_answers_503_comms_unavailable_while_the_database_is_down(api):
    """A real gunicorn whose database does not answer: 503 COMMS_UNAVAILABLE + Retry-After, never a 500."""
    port = free_port()
    env = {**worker_env(), "DATABASE_URL": f"postgresql://comms:@127.0.0.1:{free_port()}/comms"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi:application", "-b", f"127.0.0.1:{port}",
                             "-w", "1", "--log-level", "warning"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, message="gunicorn to answer")
        headers = {"Authorization": f"Bearer {api.raw_key}"}
        send = httpx.post(f"{url}/api/v1/messages", headers=headers, timeout=10,
                          json={"channel": "email", "to": "a@example.com", "subject": "s", "body": "b"})
        read = httpx.get(f"{url}/api/v1/messages", headers=headers, timeout=10)
    finally:
        proc.terminate()
        proc.wait(15)
    for response in (send, read):
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "COMMS_UNAVAILABLE"
        assert response.json()["details"] == {"retry_after_seconds": 2}
        assert response.headers["Retry-After"] == "2"
