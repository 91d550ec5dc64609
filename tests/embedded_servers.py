"""pytest plugin (loaded with ``-p tests.embedded_servers``) that starts real PostgreSQL and Redis.

It runs at import, before pytest-django reads the settings, so DATABASE_URL / REDIS_URL point at
throwaway embedded servers. Set both variables yourself to test against external servers.

Under pytest-xdist (``make test`` runs ``-n``) every worker process gets its own PostgreSQL and
Redis: tests flush Redis, count connections and kill workers, so sharing one server between
workers would make them see each other. The controller process runs no test and starts nothing.
With external servers, workers share the PostgreSQL (pytest-django gives each its own test
database) and each takes its own Redis database number.
"""

import os
import re
import shlex
import shutil
import sys

from comms.devserver.embedded import free_port, start_for_tests

_started = None
_MARK = "COMMS_TEST_EMBEDDED"  # set when the URLs below were made by this plugin, not by the user
_UNUSED = "postgres://unused@127.0.0.1:1/unused"


def _requested_workers() -> int:
    """How many xdist workers the command line asks for (0: none). Read before xdist parses it,
    because the servers must exist before pytest-django loads the settings."""
    args = sys.argv[1:] + shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    for i, arg in enumerate(args):
        value = None
        if arg in ("-n", "--numprocesses") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--numprocesses="):
            value = arg.split("=", 1)[1]
        elif re.fullmatch(r"-n\S+", arg):
            value = arg[2:]
        if value is not None:
            return (os.cpu_count() or 1) if value in ("auto", "logical") else int(value)
    return 0


def _own_redis_db(url: str, worker: str) -> str:
    """Worker gwN uses Redis database N+1 of a shared external server (database 0 stays the user's)."""
    number = int(worker.removeprefix("gw")) + 1
    return re.sub(r"(redis://[^/]*)(/\d*)?$", rf"\g<1>/{number}", url)


_worker = os.environ.get("PYTEST_XDIST_WORKER")
_user_servers = bool(os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")) and _MARK not in os.environ

if _user_servers:
    if _worker:
        os.environ["REDIS_URL"] = _own_redis_db(os.environ["REDIS_URL"], _worker)
elif not _worker and _requested_workers() > 0:
    # The xdist controller only hands out tests; settings still need URLs to import.
    os.environ[_MARK] = "controller"
    os.environ["DATABASE_URL"] = _UNUSED
    os.environ["REDIS_URL"] = "redis://127.0.0.1:1/0"
else:
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    _pg, _redis, _root = start_for_tests()
    _started = (_pg, _redis, _root)
    os.environ[_MARK] = "1"
    os.environ["DATABASE_URL"] = _pg.url
    os.environ["REDIS_URL"] = _redis.url

_var = os.environ.get("COMMS_VAR_DIR") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "comms-test-var")
if _worker and not _var.endswith(f"-{_worker}"):
    _var = f"{_var}-{_worker}"
os.environ["COMMS_VAR_DIR"] = _var
os.environ["EMAIL_PORT"] = str(free_port())  # the loopback SMTP stand-in listens here
os.environ["EMAIL_HOST"] = "127.0.0.1"
os.makedirs(os.path.join(_var, "static"), exist_ok=True)


def pytest_unconfigure(config):
    if _started:
        pg, redis, root = _started
        redis.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
