"""The periodic reaper of abandoned runs (every minute), stored with django-celery-beat.

``update_or_create`` by name, as for the settlement job: an admin's edits of its timing are kept.
"""

from django.db import migrations

TASK_NAME = "settlement: retry runs whose worker stopped"
TASK_PATH = "settlement.reap_abandoned"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="*", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={"task": TASK_PATH},
        create_defaults={
            "task": TASK_PATH,
            "crontab": crontab,
            "enabled": True,
            "description": "Marks settlement runs without a sign of life as abandoned and queues their retry.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0007_run_heartbeat_and_abandoned"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
