"""Settings by purpose: ``base`` (shared, from the environment), ``local`` (development and the
embedded default), ``production`` (``BKM_PRODUCTION=1``), ``test`` (pytest).

``bkm.settings`` itself is what ``manage.py``, wsgi, asgi and Celery load: the production
settings when ``BKM_PRODUCTION=1``, the local ones otherwise.
"""

import environ

if environ.Env().bool("BKM_PRODUCTION", default=False):
    from bkm.settings.production import *  # noqa: F403
else:
    from bkm.settings.local import *  # noqa: F403
