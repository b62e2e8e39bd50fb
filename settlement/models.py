import uuid

from django.db import models
from django.db.models import F, Q


class SettlementInterval(models.TextChoices):
    QUARTER_HOUR = "15min", "15 minutes"
    HOUR = "1h", "1 hour"
    DAY = "1d", "1 day (local)"


class SettlementRule(models.Model):
    """One version of a group's settlement rule (Ausgleichsregel).

    Versions of a group never overlap: a new version ends the previous one at its
    ``effective_from``. Old versions are kept.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("balance_groups.Tenant", on_delete=models.PROTECT, related_name="settlement_rules")
    group = models.ForeignKey("balance_groups.BalanceGroup", on_delete=models.PROTECT, related_name="rules")
    interval = models.CharField(
        max_length=8, choices=SettlementInterval.choices, default=SettlementInterval.QUARTER_HOUR
    )
    effective_from = models.DateTimeField(help_text="Aligned instant from which this version applies.")
    effective_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Where the next version starts (exclusive)."
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
