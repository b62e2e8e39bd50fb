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
        {"group": "PV-ROOF", "start": "2026-03-29T10:00:00+02:00", "energy_wh": 1000},
        {"group": "DE0001234567890000000000000000001", "start": "2026-03-29T08:00:00Z", "energy_wh": 500},
        {
            "group": "APT-2",
            "start": "2026-03-29T08:00:00Z",
            "end": "2026-03-29T08:15:00Z",
            "energy_wh": 0,
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
