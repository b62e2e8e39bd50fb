"""Turning a booking payload (API item, CSV row, clarification case) into service arguments."""

from bkm.errors import InvalidInput
from bkm.quarters import parse_instant

BOOKING_FIELDS = ("external_id", "name", "source", "destination", "start", "end", "energy_wh", "status")
REQUIRED_FIELDS = ("source", "destination", "start", "end", "energy_wh")


def booking_fields_from_payload(payload: dict) -> dict:
    """Validate the shape of one booking item and parse its instants.

    Group references stay as given (id or code); ``booking_create`` resolves them within the tenant.
    """
    if not isinstance(payload, dict):
        raise InvalidInput("Each booking must be a JSON object.")
    unknown = sorted(set(payload) - set(BOOKING_FIELDS) - {"id", "kind", "lines"})
    if unknown:
        raise InvalidInput(
            f"Unknown field(s): {', '.join(unknown)}.", errors={field: ["Unknown field."] for field in unknown}
        )
    missing = [field for field in REQUIRED_FIELDS if payload.get(field) in (None, "")]
    if missing:
        raise InvalidInput(
            f"Missing field(s): {', '.join(missing)}.", errors={field: ["This field is required."] for field in missing}
        )
    for field in ("source", "destination"):
        if not isinstance(payload[field], str):
            raise InvalidInput.for_field(field, f"{field} must be a group id or code.")
    fields = {
        "source": payload["source"],
        "destination": payload["destination"],
        "start": parse_instant(payload["start"], "start"),
        "end": parse_instant(payload["end"], "end"),
        "energy_wh": payload["energy_wh"],
        "status": payload.get("status") or "provisional",
        "external_id": payload.get("external_id"),
        "name": payload.get("name") or "",
    }
    return fields
