from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AllocationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "allocation"
    verbose_name = _("Allocation")

    def ready(self):
        from allocation.engine.unit import allocate_unit
        from allocation.integrity import ALLOCATION_CHECKS
        from allocation.selectors import group_has_measurements_outside
        from allocation.services import measurement_rebook
        from core.integrity import register_checks
        from core.ledger import provide_entries_outside
        from settlement.engine.units import before_settlement
        from transactions.clarify import provide_rebook
        from transactions.models import ClarificationSubject

        before_settlement(allocate_unit)  # a unit allocates its day first, then settles it
        register_checks(*ALLOCATION_CHECKS)
        provide_rebook(ClarificationSubject.MEASUREMENT, measurement_rebook)
        provide_entries_outside(group_has_measurements_outside)  # group validity may not cut off values
