from django.core.management.base import BaseCommand, CommandError

from balance_groups.models import Tenant
from transactions.integrity import CHECKS


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
            found = Tenant.objects.filter(code=tenant).first()
            if found is None:
                raise CommandError(f"No tenant with code {tenant!r}.")
            tenant_ids = [found.pk]
        total = 0
        for check in CHECKS:
            violations = check(tenant_ids)
            total += len(violations)
            label = check.__name__.removeprefix("check_")
            if violations:
                self.stdout.write(self.style.ERROR(f"FAIL {label}: {len(violations)} violation(s)"))
                for violation in violations:
                    self.stdout.write(f"  {violation.detail}")
            else:
                self.stdout.write(self.style.SUCCESS(f"ok   {label}"))
        if total:
            raise CommandError(f"{total} ledger violation(s) found.")
        self.stdout.write(self.style.SUCCESS("Ledger is consistent."))
