"""The project's Celery app for worker processes started by the fault tests.

``BKM_TEST_VISIBILITY_TIMEOUT`` shortens the Redis visibility timeout, so a worker started after
another one was killed redelivers the killed worker's unacknowledged task within seconds instead
of after the production timeout (an hour). Nothing else differs from ``bkm.celery``.
"""

import os

from bkm.celery import app

timeout = os.environ.get("BKM_TEST_VISIBILITY_TIMEOUT")
if timeout:
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "visibility_timeout": int(timeout)}

__all__ = ["app"]
