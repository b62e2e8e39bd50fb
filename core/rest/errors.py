"""The one error shape of the API: ``{"code", "detail", "errors"}`` for every 4xx/5xx."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.errors import BkmError

logger = logging.getLogger("bkm.api")
RETRY_AFTER_SECONDS = 5

# DRF exception class -> stable code (most specific first).
CODES = [
    (exceptions.ValidationError, "VALIDATION_ERROR"),
    (exceptions.ParseError, "PARSE_ERROR"),
    (exceptions.NotAuthenticated, "NOT_AUTHENTICATED"),
    (exceptions.AuthenticationFailed, "NOT_AUTHENTICATED"),
    (exceptions.PermissionDenied, "PERMISSION_DENIED"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.Throttled, "THROTTLED"),
]


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "REQUEST_TOO_LARGE"


def _flatten(detail, prefix="") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"field" or "field.0.sub": [messages]}``."""
    errors: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            errors.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            errors[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for position, item in enumerate(detail):
                if item:
                    errors.update(_flatten(item, f"{prefix}.{position}" if prefix else str(position)))
    else:
        errors[prefix or "non_field_errors"] = [str(detail)]
    return errors


def _leaf_codes(codes) -> list[str]:
    if isinstance(codes, dict):
        return [leaf for value in codes.values() for leaf in _leaf_codes(value)]
    if isinstance(codes, list):
        return [leaf for value in codes for leaf in _leaf_codes(value)]
    return [str(codes)]


def error_body(code: str, detail: str, errors: dict | None = None) -> dict:
    body = {"code": code, "detail": detail}
    if errors:
        body["errors"] = errors
    return body


def _code_for(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        leaves = _leaf_codes(exc.get_codes())
        if leaves and all(leaf == "invalid_time_alignment" for leaf in leaves):
            return "INVALID_TIME_ALIGNMENT"
    for klass, code in CODES:
        if isinstance(exc, klass):
            return code
    code = exc.get_codes() if not isinstance(exc.detail, dict | list) else None
    return str(code).upper() if isinstance(code, str) else "ERROR"


def api_exception_handler(exc, context):
    """Map typed domain errors, DRF's errors and Django's to the error shape; never HTML."""
    if isinstance(exc, BkmError):
        set_rollback()
        return Response(exc.as_dict(), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    elif isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError("The request could not be read.")
    elif isinstance(exc, IntegrityError):
        logger.warning("integrity error in %s: %s", context.get("view"), exc)
        set_rollback()
        return Response(
            error_body("CONFLICT", "The request conflicts with the current state; retry it."),
            status=status.HTTP_409_CONFLICT,
        )
    elif isinstance(exc, OperationalError | InterfaceError):
        # The database is unreachable, restarting or overloaded: the same request may succeed soon.
        logger.warning("database unavailable in %s: %s", context.get("view"), exc)
        set_rollback()
        return Response(
            error_body("SERVICE_UNAVAILABLE", "The database is not available right now; retry shortly."),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    elif isinstance(exc, DataError | OverflowError):
        set_rollback()
        return Response(error_body("VALIDATION_ERROR", "A value is out of range."), status=status.HTTP_400_BAD_REQUEST)

    if isinstance(exc, exceptions.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if isinstance(exc, exceptions.Throttled):
            headers["Retry-After"] = str(max(1, int(exc.wait or 1)))
        code = _code_for(exc)
        if isinstance(exc.detail, dict | list):
            errors = _flatten(exc.detail)
            detail = "Invalid input."
            messages = [message for values in errors.values() for message in values]
            if len(messages) == 1:
                detail = messages[0]
            elif "non_field_errors" in errors:
                detail = errors["non_field_errors"][0]
            body = error_body(code, detail, {k: v for k, v in errors.items() if k != "non_field_errors"})
        else:
            detail = str(exc.detail)
            if isinstance(exc, exceptions.Throttled):
                detail = f"Request was throttled; retry in {headers['Retry-After']} seconds."
            body = error_body(code, detail)
        set_rollback()
        return Response(body, status=exc.status_code, headers=headers)

    logger.exception("unexpected error in %s", context.get("view"), exc_info=exc)
    set_rollback()
    return Response(
        error_body("SERVER_ERROR", "An unexpected error occurred; it has been logged."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def api_not_found(request, *args, **kwargs):
    """Any path under /api/ that no endpoint serves: JSON, not Django's HTML 404 page."""
    return JsonResponse(error_body("NOT_FOUND", f"No endpoint at {request.path[:200]}."), status=404)
