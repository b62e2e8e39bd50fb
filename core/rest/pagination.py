"""Pagination: ``{"next", "previous", "results"}`` everywhere; cursors for the large lists."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


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
