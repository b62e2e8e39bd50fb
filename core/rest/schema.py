"""OpenAPI: every operation documents the error shape for the statuses it can answer."""

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
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "An API client's token, sent as `Token <key>` (`manage.py create_api_client`).",
        }
