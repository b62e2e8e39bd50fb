"""Group references in the API: a serializer field and a list filter, by id (UUID), code or metering point.

Both resolve a reference exactly as ``balance_groups.selectors.group_get`` does, within the
request's tenant.
"""

import django_filters
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from balance_groups.models import BalanceGroup
from balance_groups.selectors import group_get
from core.errors import NotFound


@extend_schema_field(
    {"type": "string", "description": "A group's id (UUID), code (e.g. PV-ROOF) or metering point (MaLo/MeLo)."}
)
class GroupRefField(serializers.Field):
    """A balance group of the request's tenant, by UUID, code or metering point; output is the UUID."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.strip() or len(data) > 200:
            raise serializers.ValidationError("Send a group id (UUID), code or metering point.")
        tenant = self.context["request"].user.tenant
        try:
            return group_get(tenant=tenant, ref=data)
        except NotFound as error:
            raise serializers.ValidationError(error.detail, code="not_found") from None

    def to_representation(self, value):
        if isinstance(value, BalanceGroup):
            return str(value.pk)
        return str(value)


@extend_schema_field(OpenApiTypes.STR)
class GroupRefFilter(django_filters.CharFilter):
    """A group by id (UUID), code or metering point; with several ``fields`` a row matches on any of them."""

    def __init__(self, *args, fields: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields = fields or (self.field_name,)

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        try:
            group = group_get(tenant=self.parent.request.user.tenant, ref=value)
        except NotFound:
            return qs.none()
        condition = Q()
        for name in self.fields:
            condition |= Q(**{name: group})
        return qs.filter(condition)
