from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from balance_groups.rest import GroupRefField
from core.rest.fields import InstantField
from core.rest.serializers import RefuseUnknownFieldsMixin
from settlement.models import SettlementInterval
from transactions.models import BookingStatus


class TargetSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    parent = GroupRefField(help_text="The parent balance (id or code; output: id).")
    share = serializers.IntegerField(
        min_value=1, max_value=10000, help_text="Basis points; a rule's shares sum to 10000."
    )


class SettlementRuleSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    group = GroupRefField(help_text="The source, consumer or balance settled by this rule (id or code; output: id).")
    targets = TargetSerializer(many=True, allow_empty=False)
    interval = serializers.ChoiceField(choices=SettlementInterval.choices, default=SettlementInterval.QUARTER_HOUR)
    effective_from = InstantField(
        required=False,
        help_text="Aligned start of this version; default the next quarter-hour boundary after now. A group's "
        "first rule may start at its valid_from, later versions no earlier than the next quarter-hour.",
    )
    effective_until = InstantField(read_only=True, allow_null=True, help_text="Where the next version starts.")
    takes_effect = InstantField(
        read_only=True,
        help_text="When this version really starts settling: effective_from, or for a change of an hourly or "
        "daily rule the next full hour or local midnight (the version in force at a window's start governs it).",
    )

    def to_representation(self, rule):
        return {
            "id": str(rule.pk),
            "group": str(rule.group_id),
            "targets": [{"parent": str(target.parent_id), "share": target.share} for target in rule.targets.all()],
            "interval": rule.interval,
            "effective_from": InstantField().to_representation(rule.effective_from),
            "effective_until": InstantField().to_representation(rule.effective_until),
            "takes_effect": InstantField().to_representation(rule.takes_effect_at or rule.effective_from),
        }


class ImbalanceSerializer(serializers.Serializer):
    group = serializers.UUIDField(source="group_id")
    group_code = serializers.CharField(source="group.code")
    start = InstantField(source="quarter_start")
    end = InstantField()
    inflow_wh = serializers.IntegerField()
    outflow_wh = serializers.IntegerField()
    net_wh = serializers.IntegerField()
    status = serializers.SerializerMethodField(help_text="final: every line is final and the row is up to date.")
    line_count = serializers.IntegerField()

    @extend_schema_field(serializers.ChoiceField(choices=BookingStatus.choices))
    def get_status(self, row) -> str:
        stale = self.context.get("stale", ())
        if any(d0 <= row.quarter_start < d1 for d0, d1 in stale):
            return BookingStatus.PROVISIONAL.value
        return row.status


class SettlementRunSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    start = InstantField()
    end = InstantField()
    status = serializers.CharField(read_only=True, help_text="queued, running, succeeded or failed.")
    trigger = serializers.CharField(read_only=True)
    requested_by = serializers.CharField(read_only=True)
    groups = serializers.IntegerField(read_only=True)
    lines_read = serializers.IntegerField(read_only=True)
    bookings_created = serializers.IntegerField(read_only=True)
    bookings_updated = serializers.IntegerField(read_only=True)
    bookings_finalized = serializers.IntegerField(read_only=True)
    created_at = InstantField(read_only=True, aligned=False)
    started_at = InstantField(read_only=True, aligned=False, allow_null=True)
    finished_at = InstantField(read_only=True, aligned=False, allow_null=True)
    duration_seconds = serializers.SerializerMethodField()
    error = serializers.CharField(read_only=True)

    def get_duration_seconds(self, run) -> float | None:
        duration = getattr(run, "duration", None)
        return round(duration.total_seconds(), 3) if duration is not None else None
