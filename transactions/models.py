import uuid

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.status import Status

BookingStatus = Status  # a booking's status is one of the ledger's two statuses


class BookingKind(models.TextChoices):
    MANUAL = "manual", _("Manual")
    SETTLEMENT = "settlement", pgettext_lazy("booking kind", "Settlement")
    REVERSAL = "reversal", _("Reversal")
    ALLOCATION = "allocation", _("Allocation")
    CORRECTION = "correction", _("Correction")  # a late value for a closed period, booked in an open one


class Booking(models.Model):
    """Energy moved from one group to another over one or more quarter-hours (Buchung)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No single-column indexes: the composite indexes below lead with these columns.
    tenant = models.ForeignKey(
        "balance_groups.Tenant", on_delete=models.PROTECT, related_name="bookings", db_index=False
    )
    external_id = models.CharField(
        max_length=200, null=True, blank=True, help_text="The sender's id; unique per tenant."
    )
    name = models.CharField(max_length=200, blank=True)
    source = models.ForeignKey(
        "balance_groups.BalanceGroup", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    destination = models.ForeignKey(
        "balance_groups.BalanceGroup", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    energy_wh = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=BookingStatus.choices, default=BookingStatus.PROVISIONAL)
    kind = models.CharField(max_length=16, choices=BookingKind.choices, default=BookingKind.MANUAL)
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=200, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start", "id"]
        indexes = [
            models.Index(fields=["tenant", "start"], name="booking_tenant_start"),
            models.Index(fields=["source", "start"], name="booking_source_start"),
            models.Index(fields=["destination", "start"], name="booking_destination_start"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="booking_external_id_unique"),
            models.CheckConstraint(condition=Q(energy_wh__gt=0), name="booking_energy_positive"),
            models.CheckConstraint(condition=Q(start__lt=F("end")), name="booking_start_before_end"),
            models.CheckConstraint(condition=~Q(source=F("destination")), name="booking_source_not_destination"),
            models.CheckConstraint(condition=Q(status__in=BookingStatus.values), name="booking_status_valid"),
            models.CheckConstraint(condition=Q(kind__in=BookingKind.values), name="booking_kind_valid"),
        ]

    def __str__(self):
        return self.name or self.external_id or str(self.id)

    @property
    def is_final(self) -> bool:
        return self.status == BookingStatus.FINAL


class LedgerLine(models.Model):
    """One quarter-hour of one booking. Denormalised so imbalances are one GROUP BY."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="lines", db_index=False)
    # Copies of the booking's own (constrained) columns, for one-GROUP-BY aggregation. Not
    # foreign-key checked a second time: that doubled the cost of bulk ingestion. check_ledger
    # verifies that they agree with the booking.
    tenant = models.ForeignKey(
        "balance_groups.Tenant", on_delete=models.DO_NOTHING, related_name="+", db_index=False, db_constraint=False
    )
    source = models.ForeignKey(
        "balance_groups.BalanceGroup",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    destination = models.ForeignKey(
        "balance_groups.BalanceGroup",
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    quarter_start = models.DateTimeField()
    energy_wh = models.BigIntegerField()
    is_final = models.BooleanField(default=False)

    class Meta:
        ordering = ["quarter_start", "id"]
        indexes = [models.Index(fields=["quarter_start"], name="line_quarter")]
        constraints = [
            models.UniqueConstraint(fields=["booking", "quarter_start"], name="line_one_per_quarter"),
            models.CheckConstraint(condition=Q(energy_wh__gt=0), name="line_energy_positive"),
            models.CheckConstraint(condition=~Q(source=F("destination")), name="line_source_not_destination"),
        ]

    def __str__(self):
        return f"{self.quarter_start:%Y-%m-%d %H:%M}Z {self.energy_wh} Wh"


class ClarificationReason(models.TextChoices):
    PERIOD_CLOSED = "PERIOD_CLOSED", _("Closed period")
    GROUP_NOT_VALID = "GROUP_NOT_VALID", _("Group not valid for the period")
    MEASUREMENT_FINAL = "MEASUREMENT_FINAL", _("Final measurement re-sent with another value")
    UNKNOWN_METERING_POINT = "UNKNOWN_METERING_POINT", _("Metering point of no group")

    @classmethod
    def for_error(cls, error) -> "ClarificationReason":
        """The reason a refusal (``PeriodClosed`` or ``GroupNotValid``) is kept for."""
        return cls(error.code) if error.code in cls.values else cls.GROUP_NOT_VALID


class ClarificationSubject(models.TextChoices):
    BOOKING = "booking", _("Booking")
    MEASUREMENT = "measurement", _("Measurement")


class ClarificationStatus(models.TextChoices):
    OPEN = "open", _("Open")
    REBOOKED = "rebooked", _("Rebooked")
    DISMISSED = "dismissed", _("Dismissed")


class ClarificationCase(models.Model):
    """Input that could not be booked, kept with its original payload for an operator (Klärfall)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("balance_groups.Tenant", on_delete=models.PROTECT, related_name="clarifications")
    reason = models.CharField(max_length=32, choices=ClarificationReason.choices)
    detail = models.TextField(help_text="Why the input was refused, in English (the API shows it).")
    detail_message = models.JSONField(
        null=True,
        blank=True,
        help_text="The same reason as text and values (core.text.Message), so the dashboard shows it in the "
        "operator's language; empty for cases recorded before it was kept.",
    )
    payload = models.JSONField(help_text="The input exactly as received.")
    origin = models.JSONField(
        null=True,
        blank=True,
        help_text="Where a value of a market message came from: interchange, segment position, segment text.",
    )
    channel = models.CharField(max_length=32, default="api", help_text="api, bulk, csv, mscons or dashboard.")
    subject = models.CharField(
        max_length=16,
        choices=ClarificationSubject.choices,
        default=ClarificationSubject.BOOKING,
        help_text="What the payload is: a booking or a measurement.",
    )
    status = models.CharField(max_length=16, choices=ClarificationStatus.choices, default=ClarificationStatus.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=200, blank=True)
    resolution_note = models.TextField(blank=True)
    corrected_payload = models.JSONField(
        null=True,
        blank=True,
        help_text="The payload as an operator corrected it before rebooking; payload stays as received.",
    )
    booking = models.ForeignKey(Booking, null=True, blank=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant", "status"], name="clarification_tenant_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ClarificationStatus.values), name="clarification_status_valid"
            ),
        ]

    def __str__(self):
        return f"{self.reason} {self.created_at:%Y-%m-%d %H:%M}"
