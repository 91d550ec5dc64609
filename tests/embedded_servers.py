"""pytest plugin (loaded with ``-p tests.embedded_servers``) that starts real PostgreSQL and Redis.

It runs at import, before pytest-django reads the settings, so DATABASE_URL / REDIS_URL point at
throwaway embedded servers. Set both variables yourself to test against external servers.
"""

import os
import shutil

from comms.devserver.embedded import free_port, start_for_tests

_started = None

if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    _pg, _redis, _root = start_for_tests()
    _started = (_pg, _redis, _root)
    os.environ["DATABASE_URL"] = _pg.url
    os.environ["REDIS_URL"] = _redis.url
os.environ.setdefault("COMMS_VAR_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "comms-test-var"))
os.environ["EMAIL_PORT"] = str(free_port())  # the loopback SMTP stand-in listens here
os.environ["EMAIL_HOST"] = "127.0.0.1"
os.makedirs(os.path.join(os.environ["COMMS_VAR_DIR"], "static"), exist_ok=True)


def pytest_unconfigure(config):
    if _started:
        pg, redis, root = _started
        redis.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
