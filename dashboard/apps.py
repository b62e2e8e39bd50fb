from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The operators' HTML dashboard: views over the apps' selectors and services."""

    name = "dashboard"
