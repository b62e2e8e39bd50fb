"""Serializer behaviour shared by the API's write endpoints."""

from collections.abc import Mapping

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers


class RefuseUnknownFieldsMixin:
    """Refuse a body naming a field the serializer does not declare, instead of ignoring it.

    ``{"tenant": ...}`` must never look accepted: the tenant comes from the principal only.
    Declared read-only fields (``id``, ``status``...) are tolerated, so a fetched object can be sent back.
    Answered like bookings: 400 VALIDATION_ERROR with ``errors: {field: ["Unknown field."]}``.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class RefuseUnknownFieldsSchema(OpenApiSerializerExtension):
    """The schema says so too: request bodies of these serializers have ``additionalProperties: false``."""

    target_class = RefuseUnknownFieldsMixin
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema
