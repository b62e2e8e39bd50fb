import os
import time

from django.core.management.base import BaseCommand, CommandError

from balance_groups.selectors import tenant_by_code
from core.errors import BkmError
from core.integrity import run_checks, usable_jobs

MAX_DEFAULT_JOBS = 4


class Command(BaseCommand):
    help = (
        "Verify the ledger: zero-sum per tenant and quarter-hour, lines summing to their bookings, "
        "line and booking status agreeing, tenancy and alignment, and the figures computed from them. "
        "All checks read one snapshot of the database. Exits non-zero on any violation."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Check only this tenant (code).")
        parser.add_argument(
            "--jobs",
            type=int,
            help=(
                "Checks run at once, each on its own database connection (PostgreSQL only; "
                f"default: the number of CPUs, at most {MAX_DEFAULT_JOBS}; SQLite always runs one)."
            ),
        )

    def handle(self, *args, tenant=None, jobs=None, **options):
        if jobs is not None and jobs < 1:
            raise CommandError("--jobs must be at least 1.")
        jobs = usable_jobs(jobs or min(os.cpu_count() or 1, MAX_DEFAULT_JOBS))
        tenant_ids = None
        if tenant:
            try:
                tenant_ids = [tenant_by_code(tenant).pk]
            except BkmError as error:
                raise CommandError(error.detail) from error
        started = time.perf_counter()
        total = 0
        for result in run_checks(tenant_ids, jobs=jobs):
            seconds = f"({result.seconds:.1f} s)"
            total += len(result.violations)
            if result.violations:
                self.stdout.write(
                    self.style.ERROR(f"FAIL {result.label}: {len(result.violations)} violation(s) {seconds}")
                )
                for violation in result.violations:
                    self.stdout.write(f"  {violation.detail}")
            else:
                self.stdout.write(self.style.SUCCESS(f"ok   {result.label} {seconds}"))
        elapsed = f"{time.perf_counter() - started:.1f} s, {jobs} at once"
        if total:
            raise CommandError(f"{total} ledger violation(s) found ({elapsed}).")
        self.stdout.write(self.style.SUCCESS(f"Ledger is consistent ({elapsed})."))
