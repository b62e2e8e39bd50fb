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
    """Send the task once the current transaction commits; once, however often one transaction asks.

    A request with the same arguments that is already waiting is enough if it survives whenever this
    one would: it was registered outside every savepoint this one is inside of.
    """
    connection = transaction.get_connection()
    key = (task_name, tuple(sorted(kwargs.items())))
    if connection.in_atomic_block:
        savepoints = set(connection.savepoint_ids)
        for registered_in, callback, _robust in connection.run_on_commit:
            if getattr(callback, "job_key", None) == key and registered_in <= savepoints:
                return

    def send_on_commit():
        send(task_name, kwargs)

    send_on_commit.job_key = key
    transaction.on_commit(send_on_commit)
