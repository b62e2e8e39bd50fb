from django.apps import AppConfig


class BalanceGroupsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "balance_groups"
