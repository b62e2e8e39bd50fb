from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo site (``manage.py seed_demo``): built through every app's services, as a real site is."""

    name = "demo"
