from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BalanceGroupsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "balance_groups"
    verbose_name = _("Balance groups")
