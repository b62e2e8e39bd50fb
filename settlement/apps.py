from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SettlementConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "settlement"
    verbose_name = _("Settlement")

    def ready(self):
        from core.integrity import register_checks
        from core.ledger import on_ledger_changed
        from settlement.dirty import mark_changed
        from settlement.integrity import SETTLEMENT_CHECKS

        on_ledger_changed(mark_changed)  # every ledger write marks its days for recomputation
        register_checks(*SETTLEMENT_CHECKS)
