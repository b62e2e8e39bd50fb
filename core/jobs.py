"""Background work without importing the tasks: in-process or through the broker, by task name.

With ``REDIS_URL`` unset (or Celery's ``task_always_eager``) the product runs single-process and a
service does the work right away; with a broker it sends the task by its registered name once the
current transaction commits (never before: the worker must see the write).
"""

from celery import current_app
from django.db import transaction


def in_process() -> bool:
    return bool(current_app.conf.task_always_eager)


def send(task_name: str, kwargs: dict) -> None:
    current_app.send_task(task_name, kwargs=kwargs)


def enqueue_on_commit(task_name: str, **kwargs) -> None:
    transaction.on_commit(lambda: send(task_name, kwargs))
