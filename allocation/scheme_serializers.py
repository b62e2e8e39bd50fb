"""Shapes of the allocation-scheme API: a scheme version in and out, and what a scheme allocated.

The serializers only shape input (group references resolved, decimals read exactly); every rule
of a scheme is checked by ``allocation.services.scheme_change``.
"""

import re
from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from allocation.models import AllocationMethod
from balance_groups.rest import GroupRefField
from core.rest.fields import InstantField, format_instant
from core.rest.serializers import RefuseUnknownFieldsMixin
from core.status import Status

DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
PRICE_FIELDS = ("price_local_ct_per_kwh", "price_residual_ct_per_kwh", "base_fee_eur_per_month")


@extend_schema_field({"type": "string", "format": "decimal"})
class DecimalTextField(serializers.Field):
    """A decimal sent as a string (``"12.34"``): a JSON number is refused (it may not be exact), and
    the value is taken as written; places and range are the service's to judge, never rounded."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not DECIMAL_TEXT.fullmatch(data):
            raise serializers.ValidationError('Send a decimal as a string, e.g. "12.5".')
        return Decimal(data)

    def to_representation(self, value):
        return str(value)


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": 10000})
class BasisPointsField(serializers.Field):
    """A share in basis points: JSON integers only (no strings, floats or booleans)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError("Send a whole number of basis points.")
        return data

    def to_representation(self, value):
        return int(value)


class SchemeConsumerSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    group = GroupRefField(help_text="A consumer: id (UUID), code or metering point (output: id).")
    share = BasisPointsField(
        help_text="Basis points; a version's shares sum to 10000 (used by the static methods, informative for "
        "the dynamic one)."
    )


class AllocationSchemeSerializer(RefuseUnknownFieldsMixin, serializers.Serializer):
    """One version of a scheme. A POST with the code of an existing scheme adds its next version."""

    id = serializers.UUIDField(read_only=True)
    code = serializers.CharField(
        trim_whitespace=False, help_text="Unique per tenant; every version of a scheme carries it."
    )
    name = serializers.CharField(trim_whitespace=False)
    sources = serializers.ListField(
        child=GroupRefField(),
        help_text="Source groups in priority order (the first is allocated first): id, code or metering point "
        "(output: ids).",
    )
    consumers = SchemeConsumerSerializer(many=True, help_text="Consumer groups with their shares, in order.")
    method = serializers.ChoiceField(
        choices=AllocationMethod.choices,
        help_text="dynamic: in proportion to each consumer's consumption in the quarter-hour; static: fixed "
        "shares, what a share leaves unused is surplus; static_redistributed: fixed shares, what a share leaves "
        "unused is offered again to the consumers not yet covered.",
    )
    surplus_to = GroupRefField(help_text="Receives generation no participant consumed (grid export).")
    residual_from = GroupRefField(help_text="Supplies consumption local generation did not cover (supplier).")
    effective_from = InstantField(
        required=False,
        help_text="Aligned start of this version; default the next quarter-hour boundary after now. A scheme's "
        "first version may start when all its groups are valid, later versions no earlier than the next "
        "quarter-hour.",
    )
    effective_until = InstantField(read_only=True, allow_null=True, help_text="Where the next version starts.")
    price_local_ct_per_kwh = DecimalTextField(
        required=False, allow_null=True, help_text="ct/kWh for local energy; up to 4 decimal places."
    )
    price_residual_ct_per_kwh = DecimalTextField(
        required=False, allow_null=True, help_text="ct/kWh for residual supply; up to 4 decimal places."
    )
    base_fee_eur_per_month = DecimalTextField(
        required=False, allow_null=True, help_text="EUR per month; up to 2 decimal places."
    )

    def to_representation(self, scheme):
        return {
            "id": str(scheme.pk),
            "code": scheme.code,
            "name": scheme.name,
            "sources": [str(source.group_id) for source in scheme.sources.all()],
            "consumers": [
                {"group": str(consumer.group_id), "share": consumer.share} for consumer in scheme.consumers.all()
            ],
            "method": scheme.method,
            "surplus_to": str(scheme.surplus_to_id),
            "residual_from": str(scheme.residual_from_id),
            "effective_from": format_instant(scheme.effective_from),
            "effective_until": format_instant(scheme.effective_until),
            **{field: _decimal_text(getattr(scheme, field)) for field in PRICE_FIELDS},
        }


def _decimal_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# The read of ``GET /allocation-schemes/{id}/allocation``: documented by the serializers below,
# rendered by ``allocation_payload`` (a test compares both on the same data).


class AllocatedSerializer(serializers.Serializer):
    consumer = serializers.UUIDField()
    consumer_code = serializers.CharField()
    energy_wh = serializers.IntegerField(help_text="Allocated from this source to this consumer.")


class AllocationSourceSerializer(serializers.Serializer):
    group = serializers.UUIDField()
    group_code = serializers.CharField()
    generation_wh = serializers.IntegerField(help_text="Measured generation.")
    surplus_wh = serializers.IntegerField(help_text="Generation no participant consumed (to surplus_to).")
    unallocated_wh = serializers.IntegerField(help_text="Generation of quarter-hours that are gaps, not allocated.")
    allocated = AllocatedSerializer(many=True)


class AllocationConsumerSerializer(serializers.Serializer):
    group = serializers.UUIDField()
    group_code = serializers.CharField()
    consumption_wh = serializers.IntegerField(help_text="Measured consumption.")
    local_wh = serializers.IntegerField(help_text="Covered by the scheme's sources.")
    residual_wh = serializers.IntegerField(help_text="Supplied by residual_from.")
    unallocated_wh = serializers.IntegerField(help_text="Consumption of quarter-hours that are gaps, not allocated.")


class AllocationIntervalSerializer(serializers.Serializer):
    start = InstantField()
    end = InstantField()
    status = serializers.ChoiceField(
        choices=Status.choices,
        help_text="final: no gap, every measurement and allocation is final, and the figures are up to date.",
    )
    gaps = serializers.IntegerField(
        help_text="Quarter-hours that are over with a participant's measurement missing: not allocated."
    )
    sources = AllocationSourceSerializer(many=True)
    consumers = AllocationConsumerSerializer(many=True)


class SchemeAllocationSerializer(serializers.Serializer):
    scheme = serializers.UUIDField(help_text="The version asked for; the figures cover every version of its code.")
    code = serializers.CharField()
    start = InstantField()
    end = InstantField()
    status = serializers.ChoiceField(choices=Status.choices, help_text="final when every interval is final.")
    up_to_date = serializers.BooleanField(
        help_text="false while a change inside the window is recorded but not yet recomputed (a worker catches up)."
    )
    intervals = AllocationIntervalSerializer(many=True)


def allocation_payload(data: dict, codes: dict) -> dict:
    """``scheme_allocation``'s dict as ``SchemeAllocationSerializer`` renders it, with each group's
    code from ``codes`` beside its id. Built by hand: a month of a large site has many rows."""
    ids = {pk: str(pk) for pk in codes}
    formatted: dict = {}  # each interval's end is the next one's start: format every instant once

    def instant(value):
        text = formatted.get(value)
        if text is None:
            text = formatted[value] = format_instant(value)
        return text

    def source(row: dict) -> dict:
        return {
            "group": ids[row["group"]],
            "group_code": codes[row["group"]],
            "generation_wh": int(row["generation_wh"]),
            "surplus_wh": int(row["surplus_wh"]),
            "unallocated_wh": int(row["unallocated_wh"]),
            "allocated": [
                {
                    "consumer": ids[item["consumer"]],
                    "consumer_code": codes[item["consumer"]],
                    "energy_wh": item["energy_wh"],
                }
                for item in row["allocated"]
            ],
        }

    def consumer(row: dict) -> dict:
        return {
            "group": ids[row["group"]],
            "group_code": codes[row["group"]],
            "consumption_wh": int(row["consumption_wh"]),
            "local_wh": int(row["local_wh"]),
            "residual_wh": int(row["residual_wh"]),
            "unallocated_wh": int(row["unallocated_wh"]),
        }

    return {
        "scheme": str(data["scheme"]),
        "code": data["code"],
        "start": instant(data["start"]),
        "end": instant(data["end"]),
        "status": str(data["status"]),
        "up_to_date": bool(data["up_to_date"]),
        "intervals": [
            {
                "start": instant(row["start"]),
                "end": instant(row["end"]),
                "status": str(row["status"]),
                "gaps": int(row["gaps"]),
                "sources": [source(item) for item in row["sources"]],
                "consumers": [consumer(item) for item in row["consumers"]],
            }
            for row in data["intervals"]
        ],
    }
