import datetime as dt
import secrets
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from allocation.measurements import measurements_ingest
from allocation.models import AllocationScheme, Measurement
from allocation.mscons.services import bytes_source, mscons_import
from allocation.selectors import scheme_allocation
from allocation.services import scheme_change
from balance_groups.models import BalanceGroup, User
from balance_groups.services import group_close, group_create, group_update, tenant_get_or_create
from core import jobs
from core.quarters import QUARTER, local_date, local_day_bounds
from demo import site as demo
from settlement.dirty import deferred
from settlement.models import DirtyDay, SettlementRule
from settlement.selectors import settlement_run_list
from settlement.services import rule_change
from transactions.models import Booking, BookingKind, ClarificationCase, ClarificationSubject

ACTOR = "system:seed_demo"
WILDCARD_HOSTS = {"0.0.0.0", "::", "[::]", ""}  # noqa: S104 - recognised to show a reachable address, not bound
CHANNEL = "demo"
DAYS_PER_REQUEST = 7


def site_address(host: str, port) -> str:
    """The address to open for a server listening on ``host:port``: on every interface, this machine's."""
    host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{port}/"


class Command(BaseCommand):
    help = (
        "Create (or bring up to date) the demo site: a tenant-electricity building whose meters (PV, "
        "battery discharge, heat pump, wallbox, three apartments, common areas) deliver quarter-hour "
        "values around the spring DST change and for the last four weeks, one allocation scheme (PV "
        "first, battery second, dynamic) from which the product computes every flow, settlement rules, "
        "a closed March, clarification cases and demo logins. Idempotent: running it again adds only "
        "what is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="The host the server listens on (shown at the end).")
        parser.add_argument("--port", default="8000", help="The port the server listens on (shown at the end).")

    def handle(self, *args, **options):
        self.began = time.monotonic()
        now = timezone.now()
        tenant, created = tenant_get_or_create(code=demo.TENANT_CODE, name=demo.TENANT_NAME)
        self.stdout.write(f"Tenant {tenant.code}: {'created' if created else 'exists'}")
        self._refuse_flow_demo(tenant)
        groups = self._groups(tenant)
        self._rules(groups)
        scheme = self._scheme(tenant, groups)
        windows = demo.demo_windows(now)
        values = demo.meter_values(windows)
        deliveries = demo.plan_deliveries(windows, values, now)
        last_run = settlement_run_list(tenant=tenant).first()
        with deferred():
            self._measurements(tenant, windows, values, deliveries)
            changed = DirtyDay.objects.filter(tenant=tenant).values("day_start").distinct().count()
            self.stdout.write(f"Allocating and settling {changed} changed day(s) ...")
        self._report_run(tenant, last_run)
        self._close_and_clarify(tenant, groups, values)
        self._summary(scheme, deliveries)
        password = self._logins(tenant)
        self.stdout.write(self.style.SUCCESS(f"Demo site ready ({time.monotonic() - self.began:.1f} s)."))
        address = site_address(options["host"], options["port"])
        self.stdout.write(f"  Dashboard: {address}  login 'operator' / '{password}'")
        self.stdout.write(f"  Admin:     {address}admin/  login 'admin' / '{password}'")
        self.stdout.write(f"  API docs:  {address}api/docs/")

    def _refuse_flow_demo(self, tenant):
        # The demo of earlier versions booked its flows itself: allocation on top would count them twice.
        if Booking.objects.filter(tenant=tenant, kind=BookingKind.MANUAL, external_id__startswith="demo:").exists():
            raise CommandError(
                "This database holds an older demo site whose flows were booked directly. Seed a fresh database "
                "(remove db.sqlite3, or point DATABASE_URL at an empty one) to get the metered demo site."
            )

    def _groups(self, tenant) -> dict[str, BalanceGroup]:
        groups = {group.code: group for group in BalanceGroup.objects.filter(tenant=tenant)}
        for code, name, kind, metering_point in demo.GROUPS:
            if code not in groups:
                groups[code] = group_create(
                    tenant=tenant,
                    actor=ACTOR,
                    code=code,
                    name=name,
                    kind=kind,
                    valid_from=demo.HISTORY_START,
                    metering_point=metering_point,
                )
            elif groups[code].metering_point != metering_point:
                groups[code] = group_update(group=groups[code], actor=ACTOR, metering_point=metering_point)
        self.stdout.write(f"Groups: {len(groups)} ({len(demo.METERING_POINTS)} metered)")
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

    def _scheme(self, tenant, groups) -> AllocationScheme:
        spec = demo.SCHEME
        scheme = AllocationScheme.objects.filter(tenant=tenant, code=spec["code"]).order_by("effective_from").first()
        if scheme is None:
            scheme = scheme_change(
                tenant=tenant,
                actor=ACTOR,
                code=spec["code"],
                name=spec["name"],
                method=spec["method"],
                sources=[groups[code] for code in spec["sources"]],
                consumers=[(groups[code], share) for code, share in spec["consumers"]],
                surplus_to=groups[spec["surplus_to"]],
                residual_from=groups[spec["residual_from"]],
                effective_from=demo.HISTORY_START,
                prices=spec["prices"],
            )
        self.stdout.write(f"Allocation scheme {scheme.code}: {scheme.method}, sources {' then '.join(spec['sources'])}")
        return scheme

    def _stored(self, tenant, windows) -> tuple[set, set]:
        """The (code, quarter-hour) keys stored in the windows, and those of them that are final."""
        stored, final = set(), set()
        for window in windows:
            rows = Measurement.objects.filter(
                tenant=tenant, quarter_start__gte=window.start, quarter_start__lt=window.end
            ).values_list("group__code", "quarter_start", "status")
            for code, quarter, status in rows:
                stored.add((code, quarter))
                if status == "final":
                    final.add((code, quarter))
        return stored, final

    def _measurements(self, tenant, windows, values, deliveries):
        for window in windows:
            first, last = local_date(window.start), local_date(window.end - QUARTER)
            self.stdout.write(f"Meter values of the local days {first} .. {last} (until {window.end:%H:%M}Z)")
        stored, _ = self._stored(tenant, windows)
        self._deliver("provisional delivery", tenant, windows, demo.first_delivery(values, deliveries, stored=stored))
        _, final = self._stored(tenant, windows)
        self._deliver_mscons(
            f"final delivery (before {deliveries.final_before:%Y-%m-%d %H:%M}Z) as MSCONS",
            tenant,
            windows,
            demo.final_delivery(values, deliveries, final=final),
        )
        if deliveries.gap is not None:
            code, quarter = deliveries.gap
            self.stdout.write(f"  never delivered: {code} at {quarter:%Y-%m-%d %H:%M}Z (a gap)")

    def _deliver(self, label: str, tenant, windows, items: list[dict]):
        """Send ``items`` (ordered by quarter-hour) a week of values per request, as a gateway would.
        A request never spans two windows: the days between them would be marked for recomputation."""
        self.stdout.write(f"  {label}: {len(items)} value(s)")
        totals = {"created": 0, "replaced": 0, "unchanged": 0, "refused": 0}
        for chunk in demo.request_chunks(windows, items, days=DAYS_PER_REQUEST):
            result = measurements_ingest(tenant=tenant, actor=ACTOR, items=chunk, channel=CHANNEL)
            totals["created"] += result.created
            totals["replaced"] += result.replaced
            totals["unchanged"] += result.unchanged
            totals["refused"] += len(result.rejected)
            for refusal in result.rejected[:3]:
                self.stdout.write(self.style.WARNING(f"    refused {chunk[refusal['index']]}: {refusal['detail']}"))
            first, last = (local_date(dt.datetime.fromisoformat(chunk[i]["start"])) for i in (0, -1))
            self.stdout.write(f"    {first} .. {last}: {len(chunk)} value(s), {time.monotonic() - self.began:.0f} s")
        self.stdout.write("    " + ", ".join(f"{key} {value}" for key, value in totals.items()))

    def _deliver_mscons(self, label: str, tenant, windows, items: list[dict]):
        """The true values as the metering point operator sends them: an MSCONS interchange a week,
        imported like any other (the dashboard lists them under "Received interchanges")."""
        self.stdout.write(f"  {label}: {len(items)} value(s)")
        for chunk in demo.request_chunks(windows, items, days=DAYS_PER_REQUEST):
            first = local_date(dt.datetime.fromisoformat(chunk[0]["start"]))
            report = mscons_import(
                tenant=tenant,
                actor=ACTOR,
                source=bytes_source(demo.as_mscons(chunk, reference=f"BKM{first:%y%m%d}")),
                channel="command",
                filename=f"MSCONS_{demo.TENANT_CODE}_{first:%Y%m%d}.edi",
            )
            for refusal in report.rejected[:3]:
                self.stdout.write(self.style.WARNING(f"    refused segment {refusal['segment']}: {refusal['detail']}"))
            self.stdout.write(
                f"    interchange #{report.interchange.pk} from {first}: {report.values} value(s), {report.created} "
                f"created, {report.replaced} replaced, {report.unchanged} unchanged, {len(report.rejected)} refused, "
                f"{time.monotonic() - self.began:.0f} s"
            )

    def _report_run(self, tenant, last_run):
        if not jobs.in_process():
            self.stdout.write("  queued for the worker (allocation and settlement follow there)")
            return
        run = settlement_run_list(tenant=tenant).first()
        if run is not None and run != last_run:
            self.stdout.write(
                f"  run {run.status}: {run.days_done} day(s), {run.bookings_created} booking(s) created, "
                f"{run.bookings_updated} replaced, {run.bookings_finalized} finalized, "
                f"{time.monotonic() - self.began:.0f} s"
            )

    def _close_and_clarify(self, tenant, groups, values):
        """Close March for the whole site; a late value for it and a corrected final value become
        clarification cases for the operator."""
        closed_until = local_day_bounds(demo.CLOSED_UNTIL_LOCAL_DAY)[0]
        for group in groups.values():
            if group.closed_until is None or group.closed_until < closed_until:
                group_close(group=group, actor=ACTOR, until=closed_until)
        self.stdout.write(f"Closed until {closed_until:%Y-%m-%d %H:%M}Z")
        late = demo.LATE_VALUE
        self._clarify(tenant, "late value", late["group"], late["start"], late["energy_wh"])
        correction = demo.CORRECTION
        key = (correction["group"], correction["start"])
        stored = Measurement.objects.filter(
            group=groups[key[0]], quarter_start=key[1], status="final", energy_wh=values.get(key)
        ).exists()
        if stored:  # only when the seeded windows hold that day, final
            self._clarify(tenant, "corrected value", key[0], key[1], values[key] + correction["more_wh"])
        # The months before the previous one are history, closed: the previous month waits for its close.
        history_until = local_day_bounds(demo.previous_month_start(timezone.now()))[0]
        if history_until > closed_until:
            for group in groups.values():
                group.refresh_from_db()
                if group.closed_until is None or group.closed_until < history_until:
                    group_close(group=group, actor=ACTOR, until=history_until)
            self.stdout.write(f"Closed until {history_until:%Y-%m-%d %H:%M}Z (the months before the previous one)")

    def _clarify(self, tenant, label, code, quarter, energy):
        point = demo.METERING_POINTS[code]
        cases = ClarificationCase.objects.filter(
            tenant=tenant, subject=ClarificationSubject.MEASUREMENT, payload__group=point
        )
        if cases.filter(payload__start=quarter.isoformat()).exists():
            return
        item = {"group": point, "start": quarter.isoformat(), "energy_wh": energy, "quality": "measured"}
        result = measurements_ingest(tenant=tenant, actor=ACTOR, items=[{**item, "status": "final"}], channel=CHANNEL)
        for refusal in result.rejected:
            self.stdout.write(f"A {label} for {code} refused as intended ({refusal['code']}): a clarification case")

    def _summary(self, scheme, deliveries):
        """What the scheme allocated on the last final day, in kWh."""
        day = local_date(deliveries.final_before - dt.timedelta(minutes=15))
        start, end = local_day_bounds(day)
        report = scheme_allocation(scheme=scheme, start=start, end=end, resolution="1d")
        codes = dict(BalanceGroup.objects.filter(tenant=scheme.tenant).values_list("pk", "code"))
        for interval in report["intervals"]:
            self.stdout.write(
                f"Allocation {day} ({interval['status']}, {interval['gaps']} gap(s), "
                f"up to date: {report['up_to_date']}):"
            )
            for row in interval["sources"]:
                self.stdout.write(
                    f"  {codes[row['group']]:<10} generated {_kwh(row['generation_wh'])}, "
                    f"surplus {_kwh(row['surplus_wh'])}"
                )
            for row in interval["consumers"]:
                self.stdout.write(
                    f"  {codes[row['group']]:<10} consumed {_kwh(row['consumption_wh'])}: "
                    f"local {_kwh(row['local_wh'])}, residual {_kwh(row['residual_wh'])}, "
                    f"unallocated {_kwh(row['unallocated_wh'])}"
                )

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


def _kwh(wh: int) -> str:
    return f"{wh / 1000:.1f} kWh"
