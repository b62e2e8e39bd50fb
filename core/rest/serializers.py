"""Serializer behaviour shared by the API's write endpoints."""

from collections.abc import Mapping

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

READ_ONLY = "This field is read-only."


class RefuseUnknownFieldsMixin:
    """Refuse a body naming a field the serializer does not declare, or one it only writes out
    (``id``, ``status``...), instead of ignoring it.

    ``{"tenant": ...}`` must never look accepted: the tenant comes from the principal only.
    Answered like bookings: 400 VALIDATION_ERROR with ``errors: {field: ["Unknown field."]}`` or
    ``["This field is read-only."]``.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            errors = {}
            for name in sorted(str(name) for name in data):
                field = self.fields.get(name)
                if field is None:
                    errors[name] = ["Unknown field."]
                elif field.read_only:
                    errors[name] = [READ_ONLY]
            if errors:
                raise serializers.ValidationError(errors)
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
