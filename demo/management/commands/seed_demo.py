import datetime as dt
import secrets
from itertools import islice

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from balance_groups.models import BalanceGroup, User
from balance_groups.services import group_close, group_create, tenant_get_or_create
from core.quarters import local_day_bounds, site_zone
from demo import site as demo
from settlement.models import SettlementRule
from settlement.services import rule_change, settlement_run
from transactions.bulk import bookings_bulk_ingest
from transactions.models import ClarificationCase

ACTOR = "system:seed_demo"
CHUNK = 20000
CLOSED_UNTIL_LOCAL_DAY = dt.date(2026, 4, 1)


class Command(BaseCommand):
    help = (
        "Create (or bring up to date) the demo site: a tenant-electricity building with PV, battery, "
        "heat pump, wallbox, three apartments and common areas, their settlement rules, quarter-hour "
        "bookings around the spring DST change and for the last seven days, and demo logins. "
        "Idempotent: running it again adds only what is missing."
    )

    def handle(self, *args, **options):
        now = timezone.now()
        tenant, created = tenant_get_or_create(code=demo.TENANT_CODE, name=demo.TENANT_NAME)
        self.stdout.write(f"Tenant {tenant.code}: {'created' if created else 'exists'}")
        groups = self._groups(tenant)
        self._rules(groups)
        self._bookings(tenant, now)
        self._settle(tenant, now)
        self._close_and_late_value(tenant, groups)
        password = self._logins(tenant)
        self.stdout.write(self.style.SUCCESS("Demo site ready."))
        self.stdout.write(f"  Dashboard: http://127.0.0.1:8000/  login 'operator' / '{password}'")
        self.stdout.write(f"  Admin:     http://127.0.0.1:8000/admin/  login 'admin' / '{password}'")

    def _groups(self, tenant) -> dict[str, BalanceGroup]:
        groups = {group.code: group for group in BalanceGroup.objects.filter(tenant=tenant)}
        for code, name, kind in demo.GROUPS:
            if code not in groups:
                groups[code] = group_create(
                    tenant=tenant, actor=ACTOR, code=code, name=name, kind=kind, valid_from=demo.HISTORY_START
                )
        self.stdout.write(f"Groups: {len(groups)}")
        return groups

    def _rules(self, groups):
        with_rules = set(SettlementRule.objects.filter(group__in=groups.values()).values_list("group__code", flat=True))
        for code, (interval, targets) in demo.RULES.items():
            if code not in with_rules:
                rule_change(
                    group=groups[code],
                    actor=ACTOR,
                    targets=[(groups[parent], share) for parent, share in targets],
                    interval=interval,
                    effective_from=demo.HISTORY_START,
                )
        self.stdout.write(f"Settlement rules: {len(demo.RULES)}")

    def _bookings(self, tenant, now):
        final_before = local_day_bounds((now - dt.timedelta(days=2)).astimezone(site_zone()).date())[0]
        totals = {"created": 0, "replaced": 0, "unchanged": 0, "rejected": 0}
        for window in demo.demo_windows(now):
            self.stdout.write(f"Bookings {window.start:%Y-%m-%d %H:%M}Z to {window.end:%Y-%m-%d %H:%M}Z ...")
            items = demo.booking_items(window, final_before=final_before)
            while chunk := list(islice(items, CHUNK)):
                result = bookings_bulk_ingest(tenant=tenant, actor=ACTOR, items=chunk, channel="demo")
                totals["created"] += result.created
                totals["replaced"] += result.replaced
                totals["unchanged"] += result.unchanged
                totals["rejected"] += len(result.rejected)
                self.stdout.write(f"  {chunk[-1]['start'][:16]}: {sum(totals.values())} values so far")
        self.stdout.write(", ".join(f"{key} {value}" for key, value in totals.items()))

    def _close_and_late_value(self, tenant, groups):
        """Close March for the whole site and send one late value into it: a clarification case."""
        closed_until = local_day_bounds(CLOSED_UNTIL_LOCAL_DAY)[0]
        for group in groups.values():
            if group.closed_until is None or group.closed_until < closed_until:
                group_close(group=group, actor=ACTOR, until=closed_until)
        late_id = "demo:late-meter-reading:APT-2"
        if ClarificationCase.objects.filter(tenant=tenant, payload__external_id=late_id).exists():
            return
        late = {
            "external_id": late_id,
            "name": "Nachgelieferter Zählerwert",
            "source": "SUPPLIER",
            "destination": "APT-2",
            "start": "2026-03-30T18:00:00Z",
            "end": "2026-03-30T19:00:00Z",
            "energy_wh": 412,
        }
        result = bookings_bulk_ingest(tenant=tenant, actor=ACTOR, items=[late], channel="demo")
        for rejection in result.rejected:
            self.stdout.write(f"Late value refused as intended ({rejection['code']}): kept as a clarification case")

    def _settle(self, tenant, now):
        for window in demo.demo_windows(now):
            run = settlement_run(tenant=tenant, start=window.start, end=window.end, trigger="seed_demo")
            self.stdout.write(f"Settlement {window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}: {run.status}")

    def _logins(self, tenant) -> str:
        # A random password kept beside the checkout, so it survives re-seeding but is never a default.
        password_file = settings.BASE_DIR / ".demo_password"
        if not password_file.exists():
            password_file.write_text(secrets.token_urlsafe(12))
            password_file.chmod(0o600)
        password = password_file.read_text().strip()
        with transaction.atomic():
            for username, staff in (("operator", False), ("admin", True)):
                user, _ = User.objects.get_or_create(username=username, defaults={"tenant": tenant})
                user.tenant = tenant
                user.is_staff = user.is_superuser = staff
                if not user.check_password(password):
                    user.set_password(password)
                user.save()
        return password
