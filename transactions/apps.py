from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TransactionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "transactions"
    verbose_name = _("Bookings")

    def ready(self):
        from core.integrity import register_checks
        from core.ledger import provide_entries_outside
        from transactions.integrity import LEDGER_CHECKS
        from transactions.selectors import group_has_lines_outside

        register_checks(*LEDGER_CHECKS)
        provide_entries_outside(group_has_lines_outside)  # group validity may not cut off entries
