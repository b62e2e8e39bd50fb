import uuid

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from core.quarters import QUARTER


class SettlementInterval(models.TextChoices):
    QUARTER_HOUR = "15min", _("15 minutes")
    HOUR = "1h", _("1 hour")
    DAY = "1d", _("1 day (local)")


class SettlementRule(models.Model):
    """One version of a group's settlement rule (Ausgleichsregel).

    Versions of a group never overlap: a new version ends the previous one at its
    ``effective_from``. Old versions are kept.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("balance_groups.Tenant", on_delete=models.PROTECT, related_name="settlement_rules")
    group = models.ForeignKey("balance_groups.BalanceGroup", on_delete=models.CASCADE, related_name="rules")
    interval = models.CharField(
        max_length=8, choices=SettlementInterval.choices, default=SettlementInterval.QUARTER_HOUR
    )
    effective_from = models.DateTimeField(help_text="Aligned instant from which this version applies.")
    effective_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Where the next version starts (exclusive)."
    )
    takes_effect_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When this version really starts settling: its effective_from for a group's first version, "
        "else the first window boundary of the version it follows (an hourly rule changes at a full hour, "
        "a daily one at local midnight), since the version in force at a window's start governs the window.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["group", "effective_from"], name="rule_version_unique"),
            models.CheckConstraint(condition=Q(interval__in=SettlementInterval.values), name="rule_interval_valid"),
            models.CheckConstraint(
                condition=Q(effective_until__isnull=True) | Q(effective_until__gt=F("effective_from")),
                name="rule_version_ordered",
            ),
        ]

    def __str__(self):
        return f"{self.group.code} from {self.effective_from:%Y-%m-%d %H:%M}Z ({self.interval})"


class SettlementTarget(models.Model):
    """A parent balance and its share (basis points) of a rule; a rule's shares sum to 10000."""

    rule = models.ForeignKey(SettlementRule, on_delete=models.CASCADE, related_name="targets")
    parent = models.ForeignKey("balance_groups.BalanceGroup", on_delete=models.PROTECT, related_name="child_targets")
    share = models.PositiveIntegerField(help_text="Basis points, 1 to 10000.")

    class Meta:
        ordering = ["rule", "-share", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "parent"], name="rule_target_unique"),
            models.CheckConstraint(condition=Q(share__gt=0) & Q(share__lte=10000), name="rule_share_range"),
        ]

    def __str__(self):
        return f"{self.parent.code}: {self.share / 100:.2f}%"


class Imbalance(models.Model):
    """A group's inflow, outflow and net in one quarter-hour, materialised by the settlement engine.

    Rows exist only for quarter-hours with lines; a missing row means zero. ``is_final`` is true
    exactly when every contributing line is final.
    """

    # Derived rows, rewritten by every run: the tenant is a copy of the group's, not checked again.
    tenant = models.ForeignKey(
        "balance_groups.Tenant", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    group = models.ForeignKey(
        "balance_groups.BalanceGroup", on_delete=models.CASCADE, related_name="imbalances", db_index=False
    )
    quarter_start = models.DateTimeField()
    inflow_wh = models.BigIntegerField(default=0)
    outflow_wh = models.BigIntegerField(default=0)
    net_wh = models.BigIntegerField(default=0)
    line_count = models.IntegerField(default=0, help_text="Ledger lines touching the group in this quarter-hour.")
    is_final = models.BooleanField(default=False)

    class Meta:
        ordering = ["quarter_start", "group__code"]
        indexes = [models.Index(fields=["tenant", "quarter_start"], name="imbalance_tenant_quarter")]
        constraints = [
            models.UniqueConstraint(fields=["group", "quarter_start"], name="imbalance_one_per_quarter"),
            models.CheckConstraint(condition=Q(net_wh=F("inflow_wh") - F("outflow_wh")), name="imbalance_net"),
        ]

    def __str__(self):
        return f"{self.group_id} {self.quarter_start:%Y-%m-%d %H:%M}Z {self.net_wh} Wh"

    @property
    def status(self) -> str:
        return "final" if self.is_final else "provisional"

    @property
    def end(self):
        return self.quarter_start + QUARTER


class SettlementBooking(models.Model):
    """Links a settlement booking to the rule window it settles.

    One key per (rule version, target, window start, revision). Revision 0 is the normal case;
    a higher revision only exists when input arrived after a final settlement of the window.
    """

    booking = models.OneToOneField("transactions.Booking", on_delete=models.PROTECT, related_name="settlement")
    # Indexed through the unique key and (child, window_start): no single-column indexes to maintain.
    rule = models.ForeignKey(
        SettlementRule, on_delete=models.PROTECT, related_name="settlement_bookings", db_index=False
    )
    # Copies of the booking's tenant, source and destination (themselves constrained there), not
    # foreign-key checked a second time; check_ledger verifies they match the booking.
    tenant = models.ForeignKey(
        "balance_groups.Tenant", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    child = models.ForeignKey(
        "balance_groups.BalanceGroup",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    parent = models.ForeignKey(
        "balance_groups.BalanceGroup",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    revision = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["window_start", "rule", "parent"]
        indexes = [models.Index(fields=["child", "window_start"], name="settlement_child_window")]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "parent", "window_start", "revision"], name="settlement_key_unique"
            ),
            models.CheckConstraint(condition=Q(window_start__lt=F("window_end")), name="settlement_window_ordered"),
        ]

    def __str__(self):
        return f"{self.child_id} -> {self.parent_id} {self.window_start:%Y-%m-%d %H:%M}Z r{self.revision}"


class DirtyDay(models.Model):
    """A mark: the ledger of a tenant's local day (unit of work) changed since it was last settled.

    Writers only insert marks (one per write and day, no unique key), so a write never waits for a
    settlement of the same day; the settlement deletes the marks committed when it begins, and a
    mark written meanwhile stays for the next run. A day is dirty while it has any mark.
    """

    tenant = models.ForeignKey("balance_groups.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    day_start = models.DateTimeField(help_text="UTC start of the local day.")
    marked_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "day_start"]
        indexes = [models.Index(fields=["tenant", "day_start"], name="dirty_day_tenant_day")]

    def __str__(self):
        return f"{self.tenant_id} {self.day_start:%Y-%m-%d %H:%M}Z"


class SettlementCursor(models.Model):
    """How far the periodic job has looked for rule windows that ended (per tenant)."""

    tenant = models.OneToOneField("balance_groups.Tenant", on_delete=models.CASCADE, related_name="+")
    checked_until = models.DateTimeField()

    def __str__(self):
        return f"{self.tenant_id} until {self.checked_until:%Y-%m-%d %H:%M}Z"


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    ABANDONED = "abandoned", _("Abandoned (its worker stopped; retried)")


class RunTrigger(models.TextChoices):
    MANUAL = "manual", _("Manual (API or dashboard)")
    COMMAND = "command", _("manage.py settle")
    SCHEDULE = "schedule", _("Periodic job")
    SERVICE = "service", _("Service call")
    RETRY = "retry", _("Retry of an abandoned run")


class SettlementRun(models.Model):
    """The audit record of one settlement run over a window."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("balance_groups.Tenant", on_delete=models.PROTECT, related_name="settlement_runs")
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.SERVICE)
    requested_by = models.CharField(max_length=200, blank=True)
    groups = models.IntegerField(default=0, help_text="Groups with lines in the window.")
    lines_read = models.BigIntegerField(default=0)
    bookings_created = models.IntegerField(default=0)
    bookings_updated = models.IntegerField(default=0)
    bookings_finalized = models.IntegerField(default=0)
    bookings_deleted = models.IntegerField(default=0)
    days_total = models.IntegerField(default=0)
    days_done = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of a running run (after every day it settles)."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="run_tenant_created")]
        constraints = [
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="run_window_ordered"),
            models.CheckConstraint(condition=Q(status__in=RunStatus.values), name="run_status_valid"),
        ]

    def __str__(self):
        return f"{self.tenant_id} {self.start:%Y-%m-%d %H:%M}Z-{self.end:%Y-%m-%d %H:%M}Z {self.status}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None
