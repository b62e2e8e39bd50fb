"""Spawned processes of the bench that work as a Celery worker would (no Django loaded before)."""

import os


def setup_worker_process(url: str) -> None:
    """Django in a spawned process, on the database at ``url``, as a worker runs it (no debug, quiet)."""
    os.environ.update(
        {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "bkm.settings", "DJANGO_DEBUG": "0", "BKM_LOG_LEVEL": "WARNING"}
    )
    import django

    django.setup()
