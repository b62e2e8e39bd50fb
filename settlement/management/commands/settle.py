"""``manage.py settle --start ISO --end ISO [--tenant CODE]``: settle a window now, with progress."""

import time

from django.core.management.base import BaseCommand, CommandError

from balance_groups.models import Tenant
from balance_groups.selectors import tenant_by_code
from core.errors import BkmError
from core.quarters import parse_instant
from settlement.models import RunTrigger
from settlement.services import settlement_run


class Command(BaseCommand):
    help = "Compute imbalances and settlement bookings for [start, end) (widened to whole local days)."

    def add_arguments(self, parser):
        parser.add_argument("--start", required=True, help="ISO 8601 instant with offset, quarter-hour aligned.")
        parser.add_argument("--end", required=True, help="ISO 8601 instant with offset, quarter-hour aligned.")
        parser.add_argument("--tenant", help="Tenant code (default: every tenant).")

    def handle(self, *args, start, end, tenant=None, **options):
        try:
            start = parse_instant(start, "start")
            end = parse_instant(end, "end")
        except BkmError as error:
            raise CommandError(error.detail) from error
        try:
            tenants = [tenant_by_code(tenant)] if tenant else Tenant.objects.order_by("code")
        except BkmError as error:
            raise CommandError(error.detail) from error
        failed = False
        for each in tenants:
            began = time.perf_counter()

            def progress(done, total, day_start, code=each.code, began=began):
                self.stdout.write(
                    f"\r{code}: day {done}/{total} ({day_start:%Y-%m-%d %H:%M}Z) {time.perf_counter() - began:6.1f}s",
                    ending="",
                )
                self.stdout.flush()

            try:
                run = settlement_run(
                    tenant=each,
                    start=start,
                    end=end,
                    trigger=RunTrigger.COMMAND,
                    progress=progress if options["verbosity"] > 0 else None,
                )
            except BkmError as error:
                raise CommandError(error.detail) from error
            except Exception as error:
                self.stdout.write("")
                self.stderr.write(f"{each.code}: settlement failed: {error}")
                failed = True
                continue
            self.stdout.write("")
            seconds = run.duration.total_seconds() if run.duration else 0.0
            self.stdout.write(
                f"{each.code}: {run.status} in {seconds:.2f}s: {run.groups} groups, {run.lines_read} lines read, "
                f"settlement bookings {run.bookings_created} created, {run.bookings_updated} updated, "
                f"{run.bookings_finalized} finalized, {run.bookings_deleted} removed"
            )
        if failed:
            raise CommandError("Settlement failed for at least one tenant; see the runs in admin.")
