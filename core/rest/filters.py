"""Filters shared by the lists: instants with explicit offsets."""

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from core.errors import BkmError
from core.quarters import parse_instant


class InstantFormField(forms.CharField):
    def clean(self, value):
        value = super().clean(value)
        if value in (None, ""):
            return None
        try:
            return parse_instant(value, "value", aligned=False)
        except (BkmError, OverflowError, ValueError):
            raise forms.ValidationError(
                "Send an ISO 8601 date-time with offset, e.g. 2026-03-29T00:00:00+01:00 or ...Z."
            ) from None


@extend_schema_field(OpenApiTypes.DATETIME)
class InstantFilter(django_filters.Filter):
    """An instant with explicit offset (a naive value is a 400, never guessed)."""

    field_class = InstantFormField
