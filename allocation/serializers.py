"""Shapes of the allocation API: measurements (rows, the bulk item, the bulk summary)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from allocation.measurements import MAX_ITEMS
from allocation.models import Quality
from core.quarters import QUARTER
from core.rest.fields import InstantField, WattHoursField, format_instant
from core.status import Status


class MeasurementSerializer(serializers.Serializer):
    """One stored measurement: the energy of a group in one quarter-hour."""

    group = serializers.UUIDField(source="group_id", help_text="The measured source or consumer.")
    start = InstantField(source="quarter_start")
    end = serializers.SerializerMethodField()
    energy_wh = serializers.IntegerField(help_text="Whole watt-hours, 0 or more.")
    quality = serializers.ChoiceField(choices=Quality.choices)
    status = serializers.ChoiceField(choices=Status.choices)

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_end(self, measurement) -> str:
        return format_instant(measurement.quarter_start + QUARTER)


class MeasurementWriteSerializer(serializers.Serializer):
    """One measurement as sent by a client (the item of ``POST /measurements/bulk``)."""

    # The schema's shape only: items are validated by ``allocation.measurements.clean_item``.

    group = serializers.CharField(help_text="A source or consumer: id (UUID), code or metering point (MaLo/MeLo).")
    start = InstantField(help_text="Aligned start of the quarter-hour, with offset.")
    end = InstantField(required=False, help_text="Optional; if given it must be start + 15 minutes.")
    energy_wh = WattHoursField(min_value=0, help_text="Whole watt-hours, 0 or more (a measured zero is information).")
    quality = serializers.ChoiceField(choices=Quality.choices, default=Quality.MEASURED)
    status = serializers.ChoiceField(
        choices=Status.choices, default=Status.PROVISIONAL, help_text="Only a measured value can be final."
    )


BULK_EXAMPLE = {
    "measurements": [
        {"group": "PV-ROOF", "start": "2026-03-29T08:00:00Z", "energy_wh": 1000},
        {"group": "DE0001234567890000000000000000001", "start": "2026-03-29T08:00:00Z", "energy_wh": 500},
        {
            "group": "APT-2",
            "start": "2026-03-29T08:00:00Z",
            "end": "2026-03-29T08:15:00Z",
            "energy_wh": 85,
            "quality": "measured",
            "status": "final",
        },
        {"group": "HEAT-PUMP", "start": "2026-03-29T08:00:00Z", "energy_wh": 740, "quality": "substitute"},
    ]
}


@extend_schema_serializer(examples=[OpenApiExample("Four meters", value=BULK_EXAMPLE, request_only=True)])
class MeasurementBulkRequestSerializer(serializers.Serializer):
    measurements = MeasurementWriteSerializer(many=True, help_text=f"Up to {MAX_ITEMS:,} items, one quarter-hour each.")


class MeasurementRejectedSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in `measurements` (0-based).")
    code = serializers.CharField(
        help_text="VALIDATION_ERROR, INVALID_TIME_ALIGNMENT, PERIOD_CLOSED or MEASUREMENT_FINAL."
    )
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False, help_text="Messages per field."
    )


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Three stored, one refused",
            value={
                "created": 2,
                "replaced": 1,
                "unchanged": 0,
                "rejected": [
                    {
                        "index": 2,
                        "code": "MEASUREMENT_FINAL",
                        "detail": "The value of APT-2 for 2026-03-29T08:00:00+00:00 is final (12 Wh); it is kept as "
                        "a clarification case whose resolution applies the correction.",
                    }
                ],
            },
            response_only=True,
        )
    ],
)
class MeasurementBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    replaced = serializers.IntegerField(help_text="Provisional values replaced by a different one.")
    unchanged = serializers.IntegerField(help_text="Values sent again exactly as stored.")
    rejected = MeasurementRejectedSerializer(many=True)


class MsconsRejectedSerializer(serializers.Serializer):
    segment = serializers.IntegerField(
        help_text="Position of the value's QTY segment in the interchange, from 1 (UNA counted when present)."
    )
    code = serializers.CharField(
        help_text="VALIDATION_ERROR, INVALID_TIME_ALIGNMENT, PERIOD_CLOSED, MEASUREMENT_FINAL or "
        "UNKNOWN_METERING_POINT."
    )
    detail = serializers.CharField()
    text = serializers.CharField(help_text="The QTY segment and its DTM segments, as sent.")


class MsconsInterchangeSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="The kept interchange; null for a dry run.")
    reference = serializers.CharField(help_text="UNB interchange reference.")
    sender = serializers.CharField()
    recipient = serializers.CharField()
    messages = serializers.IntegerField()
    values = serializers.IntegerField(help_text="QTY segments read.")
    duplicate_of = serializers.IntegerField(
        allow_null=True, help_text="The earlier interchange with the same bytes: imported again without effect."
    )


MSCONS_EXAMPLE = (
    "UNA:+.? '\n"
    "UNB+UNOC:3+9900000000003:500+9900000000010:500+261202:0600+REF0001'\n"
    "UNH+1+MSCONS:D:04B:UN:2.4c'\nBGM+7+MSG1+9'\nDTM+137:202612020600?+00:303'\nUNS+D'\nNAD+DP'\n"
    "LOC+172+DE0001234567890000000000000000001'\nLIN+1'\nPIA+5+1-1?:1.29.0:SRW'\n"
    "QTY+220:1.234:KWH'\nDTM+163:202612010000?+00:303'\nDTM+164:202612010015?+00:303'\n"
    "UNT+12+1'\nUNZ+1+REF0001'\n"
)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "One value stored",
            value={
                "created": 1,
                "replaced": 0,
                "unchanged": 0,
                "rejected": [],
                "interchange": {
                    "id": 7,
                    "reference": "REF0001",
                    "sender": "9900000000003",
                    "recipient": "9900000000010",
                    "messages": 1,
                    "values": 1,
                    "duplicate_of": None,
                },
            },
            response_only=True,
        )
    ],
)
class MsconsResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    replaced = serializers.IntegerField(help_text="Provisional values replaced by a different one.")
    unchanged = serializers.IntegerField(help_text="Values sent again exactly as stored.")
    rejected = MsconsRejectedSerializer(many=True)
    interchange = MsconsInterchangeSerializer()
