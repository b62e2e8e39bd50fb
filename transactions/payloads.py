"""The one validation of a booking, for every channel (single API call, bulk item, CSV row, case).

``booking_fields_from_payload`` checks the shape of an API-shaped item and parses its instants;
``clean_booking`` checks the values (groups already resolved) and returns them normalised.
``booking_create`` and bulk ingestion both call these, so a booking is refused with the same
code and message whichever way it arrives.
"""

from django.utils.translation import gettext as _

from core.errors import InvalidInput
from core.quarters import parse_instant, require_window
from core.text import require_clean_text
from transactions.models import BookingStatus

BOOKING_FIELDS = ("external_id", "name", "source", "destination", "start", "end", "energy_wh", "status")
REQUIRED_FIELDS = ("source", "destination", "start", "end", "energy_wh")
READ_ONLY_FIELDS = frozenset({"id", "kind", "lines"})  # what the API writes out, never reads
ALLOWED_FIELDS = frozenset(BOOKING_FIELDS)
MAX_ENERGY_WH = 10**15  # a petawatt-hour: far above any site, far below BIGINT overflow
MAX_TEXT = 200
STATUSES = frozenset(BookingStatus.values)


def booking_fields_from_payload(payload: dict, instants: dict | None = None) -> dict:
    """Validate the shape of one booking item and parse its instants.

    Group references stay as given (id or code); the caller resolves them within the tenant.
    ``instants`` caches parsed instants by their text across the items of one request.
    """
    if type(payload) is not dict:
        raise InvalidInput(_("Each booking must be a JSON object."))
    unknown = payload.keys() - ALLOWED_FIELDS
    if unknown:
        read_only = sorted(unknown & READ_ONLY_FIELDS)
        unknown = sorted(unknown - READ_ONLY_FIELDS)
        if unknown:
            raise InvalidInput(
                _("Unknown field(s): %(fields)s.") % {"fields": ", ".join(unknown)},
                errors={field: [_("Unknown field.")] for field in unknown},
            )
        raise InvalidInput(
            _("Read-only field(s): %(fields)s; the API writes them, never reads them.")
            % {"fields": ", ".join(read_only)},
            errors={field: [_("This field is read-only.")] for field in read_only},
        )
    missing = [field for field in REQUIRED_FIELDS if payload.get(field) in (None, "")]
    if missing:
        raise InvalidInput(
            _("Missing field(s): %(fields)s.") % {"fields": ", ".join(missing)},
            errors={field: [_("This field is required.")] for field in missing},
        )
    for field in ("source", "destination"):
        if not isinstance(payload[field], str):
            raise InvalidInput.for_field(field, _("Give the group by its id or code."))
        require_clean_text(payload[field], field)
    return {
        "source": payload["source"],
        "destination": payload["destination"],
        "start": _instant(payload["start"], "start", instants),
        "end": _instant(payload["end"], "end", instants),
        "energy_wh": payload["energy_wh"],
        "status": payload.get("status") or BookingStatus.PROVISIONAL.value,
        "external_id": payload.get("external_id"),
        "name": payload.get("name") or "",
    }


def _instant(value, field: str, instants: dict | None):
    if instants is None or type(value) is not str:
        return parse_instant(value, field)
    parsed = instants.get(value)
    if parsed is None:
        parsed = instants[value] = parse_instant(value, field)
    return parsed


def validate_energy(energy_wh) -> int:
    if isinstance(energy_wh, bool) or not isinstance(energy_wh, int):
        raise InvalidInput.for_field("energy_wh", _("The energy must be a whole number of watt-hours."))
    if energy_wh <= 0:
        raise InvalidInput.for_field("energy_wh", _("The energy must be greater than 0 Wh."))
    if energy_wh > MAX_ENERGY_WH:
        raise InvalidInput.for_field("energy_wh", _("The energy may be at most %(max)s Wh.") % {"max": MAX_ENERGY_WH})
    return energy_wh


def validate_status(status) -> str:
    if not isinstance(status, str) or status not in STATUSES:
        raise InvalidInput.for_field(
            "status", _("The status must be one of %(choices)s.") % {"choices": ", ".join(BookingStatus.values)}
        )
    return status


def clean_booking(fields: dict, *, source, destination) -> dict:
    """The booking's values (``fields`` as ``booking_fields_from_payload`` gives them) checked and
    normalised, instants in UTC; ``source`` and ``destination`` are the resolved groups. The keys
    of the result are the booking's own fields."""
    if source.pk == destination.pk:
        raise InvalidInput.for_field("destination", _("Source and destination must be different groups."))
    start, end = require_window(fields["start"], fields["end"])
    energy_wh = validate_energy(fields["energy_wh"])
    status = validate_status(fields["status"])
    external_id, name = fields["external_id"], fields["name"]
    if external_id is not None and (
        not isinstance(external_id, str) or not external_id.strip() or len(external_id) > MAX_TEXT
    ):
        raise InvalidInput.for_field(
            "external_id", _("The external id must be non-empty text of at most 200 characters.")
        )
    if not isinstance(name, str) or len(name) > MAX_TEXT:
        raise InvalidInput.for_field("name", _("The name must be text of at most 200 characters."))
    if external_id is not None:
        require_clean_text(external_id, "external_id")
    require_clean_text(name, "name")
    return {
        "source_id": source.pk,
        "destination_id": destination.pk,
        "start": start,
        "end": end,
        "energy_wh": energy_wh,
        "status": status,
        "name": name,
        "external_id": external_id,
    }
