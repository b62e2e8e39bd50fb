"""OpenAPI: every operation documents the error shape for the statuses it can answer; every filter is
described; the token comes first wherever the schema lists ways to authenticate."""

from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable error code, e.g. VALIDATION_ERROR, NOT_FOUND, PERIOD_CLOSED.")
    detail = serializers.CharField(help_text="Human-readable explanation.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field, only for field problems.",
    )

    class Meta:
        ref_name = "Error"


ERROR_DESCRIPTIONS = {
    "400": "Invalid input (VALIDATION_ERROR, INVALID_TIME_ALIGNMENT, PARSE_ERROR).",
    "401": "No or an invalid token (NOT_AUTHENTICATED).",
    "403": "Not allowed: no tenant, or a read-only client writing (PERMISSION_DENIED).",
    "404": "Not found, or another tenant's object (NOT_FOUND).",
    "405": "Method not allowed (METHOD_NOT_ALLOWED).",
    "406": "Only application/json is served (NOT_ACCEPTABLE).",
    "409": "Conflict with the current state (CONFLICT, PERIOD_CLOSED, BOOKING_FINAL).",
    "413": "Request body too large (REQUEST_TOO_LARGE).",
    "415": "Only application/json is accepted (UNSUPPORTED_MEDIA_TYPE).",
    "429": "Rate limit exceeded (THROTTLED); see Retry-After.",
}

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
API_CLIENT_SCHEME = "tokenAuth"


class BkmAutoSchema(AutoSchema):
    """AutoSchema that adds the error responses (one shape) to every operation."""

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "404", "405", "406", "429"]
        if self.method in WRITE_METHODS:
            codes += ["409"]
        if self.method in {"POST", "PUT", "PATCH"}:
            codes += ["413", "415"]
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code in responses:
                continue
            body = self._get_response_for_code(ErrorSerializer, code, direction=direction)
            body["description"] = ERROR_DESCRIPTIONS[code]
            if code == "429":
                body["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
                }
            responses[code] = body
        return responses


class ApiClientTokenScheme(OpenApiAuthenticationExtension):
    target_class = "balance_groups.authentication.ApiClientTokenAuthentication"
    name = API_CLIENT_SCHEME

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API client's token (`manage.py create_api_client`, or the admin's API clients). "
            "Paste the key alone: it is sent as `Authorization: Bearer <key>`, which the API takes like "
            "`Authorization: Token <key>`. It is tried before the browser session, so a token entered here is "
            "used even while you are logged in to the dashboard.",
        }


class DescribedFilterExtension(DjangoFilterExtension):
    """A filter whose type is declared (instants, group references) keeps its label as description:
    django-filter's extension drops it as soon as the type comes from ``extend_schema_field``."""

    priority = 1

    def resolve_filter_field(self, auto_schema, model, filterset_class, field_name, filter_field):
        parameters = super().resolve_filter_field(auto_schema, model, filterset_class, field_name, filter_field)
        description = filter_field.extra.get("help_text") or filter_field.label
        for parameter in parameters:
            if not parameter.get("description") and description:
                parameter["description"] = str(description)
        return parameters


def token_first(result, generator, request, public):
    """Swagger UI offers the schemes in the order of ``securitySchemes`` (sorted by name otherwise):
    the API client's token first, the browser session second."""
    schemes = result.get("components", {}).get("securitySchemes", {})
    if API_CLIENT_SCHEME in schemes:
        result["components"]["securitySchemes"] = {
            API_CLIENT_SCHEME: schemes[API_CLIENT_SCHEME],
            **{name: scheme for name, scheme in schemes.items() if name != API_CLIENT_SCHEME},
        }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security")
            if security:
                operation["security"] = sorted(security, key=lambda requirement: API_CLIENT_SCHEME not in requirement)
    return result
