"""Pagination: ``{"next", "previous", "results"}`` everywhere; cursors for the large lists."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination as DrfCursorPagination
from rest_framework.pagination import PageNumberPagination

INVALID_CURSOR = "This cursor was not handed out by this list; start again without it."


class CursorPagination(DrfCursorPagination):
    """A cursor that this list did not hand out (tampered, truncated, of another list) is a 400."""

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({"cursor": [INVALID_CURSOR]}) from None
        if cursor is not None and cursor.position is not None:
            field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
            try:
                field.to_python(cursor.position)
            except (DjangoValidationError, ValueError, OverflowError):
                raise exceptions.ValidationError({"cursor": [INVALID_CURSOR]}) from None
        return cursor


class PagePagination(PageNumberPagination):
    """For the small lists (groups, rules, runs, clarification cases)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class BookingCursorPagination(CursorPagination):
    page_size = 500
    page_size_query_param = "page_size"
    max_page_size = 5000
    ordering = ("-start", "id")


class LineCursorPagination(CursorPagination):
    page_size = 1000
    page_size_query_param = "page_size"
    max_page_size = 10000
    ordering = ("quarter_start", "id")


class ImbalanceCursorPagination(CursorPagination):
    """Imbalance pages also say whether the window's figures are up to date (``up_to_date``)."""

    page_size = 1000
    page_size_query_param = "page_size"
    max_page_size = 10000
    ordering = ("quarter_start", "group__code")

    def get_paginated_response_schema(self, schema):
        paginated = super().get_paginated_response_schema(schema)
        paginated["properties"]["up_to_date"] = {
            "type": "boolean",
            "description": "false while a change inside the window is recorded but not yet recomputed.",
        }
        return paginated
