from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor: time, energy splits, errors, database helpers; imports no other app."""

    name = "core"
