"""Serializer fields shared by the API: instants with explicit offsets, whole watt-hours."""

import datetime as dt

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.errors import BkmError
from core.quarters import UTC, parse_instant


def format_instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantField(serializers.Field):
    """An ISO 8601 instant with an explicit offset; naive values are refused, never guessed.

    ``aligned`` instants must fall on a quarter-hour boundary (never rounded). Output is UTC ``Z``.
    """

    default_error_messages = {"invalid": "Send an ISO 8601 date-time with offset, e.g. 2026-03-29T00:00:00+01:00."}

    def __init__(self, *, aligned: bool = True, **kwargs):
        self.aligned = aligned
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str | dt.datetime):
            self.fail("invalid")
        try:
            return parse_instant(data, self.field_name or "value", aligned=self.aligned)
        except BkmError as error:
            raise serializers.ValidationError(error.detail, code=error.code.lower()) from None
        except (OverflowError, ValueError):
            raise serializers.ValidationError("This instant is out of range.", code="invalid") from None

    def to_representation(self, value):
        return format_instant(value)


@extend_schema_field(OpenApiTypes.INT64)
class WattHoursField(serializers.Field):
    """A whole number of watt-hours: JSON integers only (no strings, floats or booleans)."""

    def __init__(self, *, min_value: int | None = None, **kwargs):
        self.min_value = min_value
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError("Send a whole number of watt-hours.")
        if self.min_value is not None and data < self.min_value:
            raise serializers.ValidationError(f"Must be at least {self.min_value}.")
        return data

    def to_representation(self, value):
        return int(value)
