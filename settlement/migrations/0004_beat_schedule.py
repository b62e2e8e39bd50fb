"""The periodic settlement job, stored with django-celery-beat so admins can change it.

``update_or_create`` by name: running the migration again (or on a database where an admin
edited the schedule) keeps the admin's crontab and enabled flag; only the task path is set.
"""

from django.db import migrations

TASK_NAME = "settlement: settle changed and ended windows"
TASK_PATH = "settlement.settle_dirty"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="*/15", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.update_or_create(
        name=TASK_NAME,
        defaults={"task": TASK_PATH},
        create_defaults={
            "task": TASK_PATH,
            "crontab": crontab,
            "enabled": True,
            "description": "Recomputes imbalances and settlements of changed days and of rule windows that ended.",
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0003_engine"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
