import time

from django.core.management.base import BaseCommand, CommandError

from balance_groups.selectors import tenant_by_code
from core.errors import BkmError
from core.integrity import registered_checks


class Command(BaseCommand):
    help = (
        "Verify the ledger: zero-sum per tenant and quarter-hour, lines summing to their bookings, "
        "line and booking status agreeing, tenancy and alignment. Exits non-zero on any violation."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Check only this tenant (code).")

    def handle(self, *args, tenant=None, **options):
        tenant_ids = None
        if tenant:
            try:
                tenant_ids = [tenant_by_code(tenant).pk]
            except BkmError as error:
                raise CommandError(error.detail) from error
        total = 0
        for check in registered_checks():
            started = time.perf_counter()
            violations = check(tenant_ids)
            seconds = f"({time.perf_counter() - started:.1f} s)"
            total += len(violations)
            label = check.__name__.removeprefix("check_")
            if violations:
                self.stdout.write(self.style.ERROR(f"FAIL {label}: {len(violations)} violation(s) {seconds}"))
                for violation in violations:
                    self.stdout.write(f"  {violation.detail}")
            else:
                self.stdout.write(self.style.SUCCESS(f"ok   {label} {seconds}"))
        if total:
            raise CommandError(f"{total} ledger violation(s) found.")
        self.stdout.write(self.style.SUCCESS("Ledger is consistent."))
