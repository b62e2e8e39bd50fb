from rest_framework import serializers

from balance_groups.models import BalanceGroup, GroupKind
from core.quarters import RESOLUTIONS
from core.rest.fields import InstantField
from core.rest.serializers import RefuseUnknownFieldsMixin
from core.status import Status
from transactions.selectors import group_status


class BalanceGroupSerializer(RefuseUnknownFieldsMixin, serializers.ModelSerializer):
    """A balance group; ``status`` and ``parent`` are read-only (parent: the rule in force now)."""

    code = serializers.CharField(max_length=64, help_text="Unique per tenant, e.g. PV-ROOF.")
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=GroupKind.choices)
    valid_from = InstantField(help_text="Quarter-hour aligned instant from which the group accepts entries.")
    valid_until = InstantField(required=False, allow_null=True, help_text="Aligned end of validity (exclusive).")
    metering_point = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=64,
        help_text="Optional metering point id (MaLo/MeLo, letters and digits), unique per tenant; accepted wherever "
        "a group reference is. Empty or null: none.",
    )
    closed_until = InstantField(read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()
    parent = serializers.SerializerMethodField()

    class Meta:
        model = BalanceGroup
        fields = [
            "id",
            "code",
            "name",
            "kind",
            "valid_from",
            "valid_until",
            "metering_point",
            "closed_until",
            "status",
            "parent",
        ]
        read_only_fields = ["id"]

    def get_status(self, group) -> str:
        """``provisional`` while the group has a provisional booking, else ``final``."""
        return group_status(group=group)

    def get_parent(self, group) -> str | None:
        """The parent balance (largest share) of the settlement rule in force now, if any."""
        parents = self.context.get("parents")
        if parents is None:
            return None
        parent = parents.get(group.pk)
        return str(parent) if parent else None


class BalanceGroupUpdateSerializer(BalanceGroupSerializer):
    class Meta(BalanceGroupSerializer.Meta):
        pass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("code", "name", "kind", "valid_from"):
            self.fields[name].required = False


class GroupCloseSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    until = InstantField(
        required=False,
        allow_null=True,
        help_text="Close every quarter-hour before this aligned instant; without it the whole group is closed.",
    )


class IntervalSerializer(serializers.Serializer):
    start = InstantField()
    end = InstantField()
    inflow_wh = serializers.IntegerField()
    outflow_wh = serializers.IntegerField()
    net_wh = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=Status.choices, help_text="final: every line is final and the figures are up to date."
    )
    line_count = serializers.IntegerField(help_text="Ledger lines in the interval; 0 means no data, not a final zero.")


class GroupBalanceSerializer(IntervalSerializer):
    group = serializers.UUIDField()
    up_to_date = serializers.BooleanField(
        help_text="false while a change inside the window is recorded but not yet recomputed (a worker catches up)."
    )
    intervals = IntervalSerializer(many=True)


class GroupBalanceQuerySerializer(serializers.Serializer):
    start = InstantField(help_text="Aligned start of the window (inclusive), with offset.")
    end = InstantField(help_text="Aligned end of the window (exclusive), with offset.")
    resolution = serializers.ChoiceField(choices=RESOLUTIONS, default="15min")
