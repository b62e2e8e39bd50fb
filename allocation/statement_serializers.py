"""Shapes of the statements API (``/api/v1/statements/``): one consumer's month, or every consumer of a site."""

from rest_framework import serializers

from core.rest.fields import InstantField
from core.status import Status

LINE_KINDS = ["local", "residual", "base_fee", "correction_local", "correction_residual"]


def money():
    return serializers.DecimalField(max_digits=14, decimal_places=2, help_text="EUR, rounded half-up to cents.")


class StatementLocalSerializer(serializers.Serializer):
    source = serializers.UUIDField()
    source_code = serializers.CharField()
    source_name = serializers.CharField()
    energy_wh = serializers.IntegerField()


class StatementLineSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=LINE_KINDS)
    start = InstantField()
    end = InstantField()
    energy_wh = serializers.IntegerField(allow_null=True, help_text="null for the base fee.")
    price = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    price_unit = serializers.CharField(help_text="ct/kWh for energy, EUR/month for the base fee.")
    amount_eur = money()
    corrects = serializers.CharField(
        allow_null=True, help_text="The closed month (YYYY-MM) a correction line corrects; null otherwise."
    )


class StatementAmountsSerializer(serializers.Serializer):
    local_eur = money()
    residual_eur = money()
    base_fee_eur = money()
    corrections_eur = money()
    total_eur = money()


class StatementDaySerializer(serializers.Serializer):
    date = serializers.DateField(help_text="The local day.")
    consumption_wh = serializers.IntegerField()
    local_wh = serializers.IntegerField()
    residual_wh = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Status.choices)


class StatementSchemeSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    code = serializers.CharField()
    name = serializers.CharField()


class StatementSerializer(serializers.Serializer):
    consumer = serializers.UUIDField()
    consumer_code = serializers.CharField()
    consumer_name = serializers.CharField()
    metering_point = serializers.CharField(allow_null=True)
    scheme = StatementSchemeSerializer(help_text="The scheme version in force at the end of the month.")
    month = serializers.CharField(help_text="The local calendar month, YYYY-MM.")
    start = InstantField()
    end = InstantField()
    status = serializers.ChoiceField(
        choices=Status.choices, help_text="final when the month is closed and every quarter-hour of it is final."
    )
    closed = serializers.BooleanField(help_text="Whether the consumer's group is closed to the month's end.")
    up_to_date = serializers.BooleanField(
        help_text="false while a change inside the month is recorded but not yet recomputed (a worker catches up)."
    )
    consumption_wh = serializers.IntegerField()
    local = StatementLocalSerializer(many=True, help_text="Local energy per source, in the scheme's priority order.")
    local_wh = serializers.IntegerField()
    residual_wh = serializers.IntegerField()
    unallocated_wh = serializers.IntegerField(help_text="Consumption in quarter-hours not allocated (gaps).")
    local_share_percent = serializers.DecimalField(max_digits=5, decimal_places=1)
    quarter_hours = serializers.IntegerField(help_text="Quarter-hours of the month the consumer took part in.")
    provisional_quarter_hours = serializers.IntegerField()
    missing_quarter_hours = serializers.IntegerField()
    lines = StatementLineSerializer(many=True)
    amounts = StatementAmountsSerializer(allow_null=True, help_text="null when the scheme names no prices.")
    days = StatementDaySerializer(many=True)


class SiteStatementsSerializer(serializers.Serializer):
    site = serializers.UUIDField(help_text="The top balance group.")
    site_code = serializers.CharField()
    month = serializers.CharField()
    up_to_date = serializers.BooleanField()
    statements = StatementSerializer(many=True)
