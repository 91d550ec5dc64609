"""Settings for comms, grouped by concern and read through django-environ.

Every knob is an environment variable; README.md lists them all. Without
``DATABASE_URL`` / ``REDIS_URL`` the process uses the embedded servers that
``manage.py comms_up`` started and recorded in ``var/embedded.env``.

The parts are read in order; a later part may extend what an earlier one defined (the beat
schedule, the storages, the API's throttles):

* ``base``: environment, core Django, data stores, the API, Celery;
* ``delivery``: the engine, providers and failover, email, logging, secrets at rest;
* ``pipeline``: templates, inbound webhooks and tracking, the console, the router, preferences,
  conversations and journeys;
* ``operations``: deliverability, WebSocket, warm-up, previews, fairness and quotas, many nodes,
  retention, rollouts, and insight (assistants, analytics, anomalies, scores, costs).
"""

from .base import *  # noqa: F401,F403
from .delivery import *  # noqa: F401,F403
from .pipeline import *  # noqa: F401,F403
from .operations import *  # noqa: F401,F403
