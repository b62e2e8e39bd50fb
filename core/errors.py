"""Typed domain errors with stable codes.

Services raise these; the API's exception handler and the dashboard turn them into the one
error shape ``{"code", "detail", "errors"}`` and a clear message.
"""


class BkmError(Exception):
    code = "ERROR"
    http_status = 400

    def __init__(self, detail, *, errors: dict[str, list[str]] | None = None):
        # ``detail`` is a text, or a ``core.text.Message`` that can be read again in another language.
        self.message = detail if hasattr(detail, "as_json") else None
        self.detail = str(detail)
        super().__init__(self.detail)
        self.errors = errors or {}

    @classmethod
    def for_field(cls, field: str, message: str) -> "BkmError":
        return cls(message, errors={field: [str(message)]})

    def as_dict(self) -> dict:
        body = {"code": self.code, "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body


class InvalidInput(BkmError):
    code = "VALIDATION_ERROR"
    http_status = 400


class InvalidTimeAlignment(BkmError):
    code = "INVALID_TIME_ALIGNMENT"
    http_status = 400


class NotFound(BkmError):
    code = "NOT_FOUND"
    http_status = 404


class PeriodClosed(BkmError):
    code = "PERIOD_CLOSED"
    http_status = 409


class BookingFinal(BkmError):
    code = "BOOKING_FINAL"
    http_status = 409


class MeasurementFinal(BkmError):
    """A final measurement re-sent with another value: refused and kept as a clarification case."""

    code = "MEASUREMENT_FINAL"
    http_status = 409


class UnknownMeteringPoint(BkmError):
    """A market message names a metering point no group carries: its values are refused and kept."""

    code = "UNKNOWN_METERING_POINT"
    http_status = 422


class Conflict(BkmError):
    code = "CONFLICT"
    http_status = 409


class GroupNotValid(InvalidInput):
    """A group is not valid over the whole period: refused and kept as a clarification case.

    Answered as ``VALIDATION_ERROR`` (the API contract's code for it); the case's reason says
    ``GROUP_NOT_VALID``.
    """


class CsvFormatError(BkmError):
    """An uploaded file as a whole cannot be read (no header, unknown or missing columns, too many rows)."""

    code = "CSV_FORMAT_ERROR"
