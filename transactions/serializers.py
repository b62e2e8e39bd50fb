from drf_spectacular.utils import OpenApiExample, extend_schema_serializer
from rest_framework import serializers

from core.quarters import QUARTER
from core.rest.fields import InstantField, WattHoursField, format_instant
from core.rest.serializers import RefuseUnknownFieldsMixin
from transactions.models import BookingKind, BookingStatus, ClarificationStatus


class BookingWriteSerializer(serializers.Serializer):
    """One booking as sent by a client (also the item shape of the bulk endpoint)."""

    external_id = serializers.CharField(
        required=False, allow_null=True, max_length=200, help_text="The sender's id, unique per tenant (idempotency)."
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    source = serializers.CharField(help_text="Group delivering the energy: id (UUID) or code.")
    destination = serializers.CharField(help_text="Group receiving the energy: id (UUID) or code; not the source.")
    start = InstantField(help_text="Aligned start (inclusive), with offset.")
    end = InstantField(help_text="Aligned end (exclusive), with offset; after start.")
    energy_wh = WattHoursField(min_value=1, help_text="Whole watt-hours, > 0.")
    status = serializers.ChoiceField(choices=BookingStatus.choices, default="provisional")


class LineSerializer(serializers.Serializer):
    start = InstantField(source="quarter_start")
    end = serializers.SerializerMethodField()
    energy_wh = serializers.IntegerField()

    def get_end(self, line) -> str:
        return format_instant(line.quarter_start + QUARTER)


class BookingSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_blank=True)
    source = serializers.UUIDField(source="source_id")
    destination = serializers.UUIDField(source="destination_id")
    start = InstantField()
    end = InstantField()
    energy_wh = serializers.IntegerField()
    status = serializers.ChoiceField(choices=BookingStatus.choices)
    kind = serializers.ChoiceField(choices=BookingKind.choices)
    reverses = serializers.UUIDField(source="reverses_id", allow_null=True)
    created_at = InstantField(aligned=False)
    created_by = serializers.CharField()
    updated_at = InstantField(aligned=False)
    finalized_at = InstantField(aligned=False, allow_null=True)


class BookingDetailSerializer(BookingSerializer):
    lines = LineSerializer(many=True, help_text="One per quarter-hour; they sum to energy_wh.")


class LedgerLineSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    booking = serializers.UUIDField(source="booking_id")
    source = serializers.UUIDField(source="source_id")
    destination = serializers.UUIDField(source="destination_id")
    start = InstantField(source="quarter_start")
    energy_wh = serializers.IntegerField()
    status = serializers.SerializerMethodField()

    def get_status(self, line) -> str:
        return BookingStatus.FINAL if line.is_final else BookingStatus.PROVISIONAL


BULK_EXAMPLE = {
    "bookings": [
        {
            "external_id": "meter-4711-2026-03-29T00:00Z",
            "source": "PV-ROOF",
            "destination": "APT-1",
            "start": "2026-03-29T00:00:00Z",
            "end": "2026-03-29T00:15:00Z",
            "energy_wh": 125,
        },
        {
            "external_id": "meter-4712-2026-03-29T00:00Z",
            "name": "Heat pump, first hour",
            "source": "GRID-IMPORT",
            "destination": "HEAT-PUMP",
            "start": "2026-03-29T00:00:00Z",
            "end": "2026-03-29T01:00:00Z",
            "energy_wh": 2001,
            "status": "final",
        },
    ]
}


@extend_schema_serializer(
    examples=[OpenApiExample("Two readings", value=BULK_EXAMPLE, request_only=True)],
)
class BulkRequestSerializer(serializers.Serializer):
    bookings = BookingWriteSerializer(many=True, help_text="Up to 100 000 items, each in the shape of POST /bookings/.")


class RejectedItemSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in `bookings` (0-based).")
    code = serializers.CharField(help_text="VALIDATION_ERROR, INVALID_TIME_ALIGNMENT, PERIOD_CLOSED, BOOKING_FINAL…")
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "One stored, one refused",
            value={
                "created": 1,
                "replaced": 0,
                "unchanged": 0,
                "rejected": [
                    {
                        "index": 1,
                        "code": "PERIOD_CLOSED",
                        "detail": "Group HEAT-PUMP is closed until 2026-04-01T00:00:00+00:00; the booking starts "
                        "2026-03-29T00:00:00+00:00.",
                    }
                ],
            },
            response_only=True,
        )
    ],
)
class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    replaced = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rejected = RejectedItemSerializer(many=True)


class ClarificationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    reason = serializers.CharField()
    detail = serializers.CharField()
    payload = serializers.JSONField(help_text="The input exactly as received.")
    channel = serializers.CharField()
    status = serializers.ChoiceField(choices=ClarificationStatus.choices)
    created_at = InstantField(aligned=False)
    created_by = serializers.CharField()
    resolved_at = InstantField(aligned=False, allow_null=True)
    resolved_by = serializers.CharField()
    resolution_note = serializers.CharField(allow_blank=True)
    booking = serializers.UUIDField(source="booking_id", allow_null=True)


class ClarificationResolveSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    action = serializers.ChoiceField(choices=[("rebook", "rebook"), ("dismiss", "dismiss")])
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
