"""Filters shared by the lists: instants with explicit offsets, groups by id or code."""

import contextlib
import uuid

import django_filters
from django import forms
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from bkm.errors import BkmError
from bkm.quarters import parse_instant


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


def group_q(field: str, value: str) -> Q:
    """Match a group foreign key by UUID or by code (the queryset is already tenant-scoped)."""
    value = value.strip()
    condition = Q(**{f"{field}__code": value})
    with contextlib.suppress(ValueError):
        condition |= Q(**{f"{field}_id": uuid.UUID(value)})
    return condition


@extend_schema_field(OpenApiTypes.STR)
class GroupRefFilter(django_filters.CharFilter):
    """A group by id (UUID) or code."""

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        return qs.filter(group_q(self.field_name, value))
