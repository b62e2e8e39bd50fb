import hashlib
import secrets
import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _


class Tenant(models.Model):
    """The organisation that owns groups, users and API clients (Mandant)."""

    code = models.SlugField(max_length=64, unique=True, help_text="Short stable code, e.g. 'sonnenhof'.")
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return self.code


class User(AbstractUser):
    """A dashboard user; operators belong to exactly one tenant (superusers may have none)."""

    tenant = models.ForeignKey(Tenant, null=True, blank=True, on_delete=models.PROTECT, related_name="users")


class ApiClient(models.Model):
    """An external system's credential. Only a hash of the token is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_clients")
    name = models.CharField(max_length=200)
    key_prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(default=False, help_text="Read-only clients get 403 on every write.")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="A revoked token is refused (401).")
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tenant", "name"]

    def __str__(self):
        return f"{self.name} ({self.tenant.code})"

    # DRF's permission classes ask the principal this; the throttles count clients apart from users.
    is_authenticated = True
    principal_kind = "client"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @staticmethod
    def generate_key() -> str:
        return secrets.token_hex(20)


class GroupKind(models.TextChoices):
    BALANCE = "balance", _("Balance")
    SOURCE = "source", _("Source")
    CONSUMER = "consumer", _("Consumer")


class BalanceGroup(models.Model):
    """An energy account (Bilanzkreis): a balance, a source or a consumer."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="groups")
    code = models.CharField(max_length=64, help_text="Unique per tenant, e.g. PV-ROOF.")
    name = models.CharField(max_length=200, help_text="Speaking name shown to operators.")
    kind = models.CharField(max_length=16, choices=GroupKind.choices)
    valid_from = models.DateTimeField(help_text="Quarter-hour aligned instant from which the group accepts entries.")
    valid_until = models.DateTimeField(null=True, blank=True, help_text="Aligned end of validity (exclusive).")
    metering_point = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        help_text="Metering point id (MaLo/MeLo), unique per tenant; market messages are matched on it.",
    )
    closed_until = models.DateTimeField(
        null=True, blank=True, help_text="Every quarter-hour before this instant is closed: no new entries."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "code"], name="group_code_unique_per_tenant"),
            models.UniqueConstraint(fields=["tenant", "metering_point"], name="group_metering_point_unique_per_tenant"),
            models.CheckConstraint(condition=Q(kind__in=GroupKind.values), name="group_kind_valid"),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gt=F("valid_from")),
                name="group_validity_ordered",
            ),
        ]

    def __str__(self):
        return f"{self.code}: {self.name}"


class AuditAction(models.TextChoices):
    """Every kind of write, as the audit trail names it."""

    API_CLIENT_CREATE = "api_client.create", _("API client created")
    API_CLIENT_REVOKE = "api_client.revoke", _("API client revoked")
    GROUP_CREATE = "group.create", _("Group created")
    GROUP_UPDATE = "group.update", _("Group changed")
    GROUP_CLOSE = "group.close", _("Group closed")
    GROUP_DELETE = "group.delete", _("Group deleted")
    RULE_CHANGE = "rule.change", _("Settlement rule changed")
    BOOKING_CREATE = "booking.create", _("Booking created")
    BOOKING_REPLACE = "booking.replace", _("Booking replaced")
    BOOKING_FINALIZE = "booking.finalize", _("Booking finalized")
    BOOKING_REVERSE = "booking.reverse", _("Booking reversed")
    BOOKING_BULK_INGEST = "booking.bulk_ingest", _("Bookings ingested in bulk")
    CLARIFICATION_CREATE = "clarification.create", _("Clarification case recorded")
    CLARIFICATION_REBOOK = "clarification.rebook", _("Clarification case rebooked")
    CLARIFICATION_DISMISS = "clarification.dismiss", _("Clarification case dismissed")
    SETTLEMENT_REQUEST = "settlement.request", _("Settlement run requested")
    SETTLEMENT_RUN = "settlement.run", _("Settlement run finished")
    SETTLEMENT_APPLY = "settlement.apply", _("Settlement bookings written")
    MEASUREMENT_INGEST = "measurement.ingest", _("Measurements ingested")
    MEASUREMENT_CORRECT = "measurement.correct", _("Final measurement corrected")
    SCHEME_CHANGE = "scheme.change", _("Allocation scheme version added")
    SITE_MONTH_CLOSE = "site.month_close", _("Month closed for a site")


class AuditEntry(models.Model):
    """Who changed what, when. Written in the same transaction as the change."""

    tenant = models.ForeignKey(Tenant, null=True, on_delete=models.PROTECT, related_name="audit_entries")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=200, help_text="user:<name>, client:<name> or system:<job>.")
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    api_client = models.ForeignKey(ApiClient, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=64, db_index=True, choices=AuditAction.choices)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64, db_index=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.object_type} {self.object_id}"
