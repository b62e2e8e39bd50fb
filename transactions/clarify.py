"""Who rebooks a clarification case whose payload is not a booking.

A case about a measurement is rebooked by the app that owns measurements (it registers itself in
its ``AppConfig.ready``), so this app resolves every case without importing the apps above it.
"""

import copy
from collections.abc import Callable

Rebook = Callable[..., str | None]

_rebooks: dict[str, Rebook] = {}


def provide_rebook(subject: str, rebook: Rebook) -> Rebook:
    """Register ``rebook(case=, actor=)`` for cases of ``subject``; it raises a ``BkmError`` to refuse
    and may return a short text of what it did, which leads the case's resolution note."""
    _rebooks[subject] = rebook
    return rebook


def rebook_for(subject: str) -> Rebook:
    try:
        return _rebooks[subject]
    except KeyError:
        raise RuntimeError(f"No rebook is registered for clarification cases about {subject!r}.") from None


# What an operator may correct before rebooking, per subject (the rest of the payload stays as received).
CORRECTABLE_FIELDS = {
    "booking": ("energy_wh",),
    "measurement": ("energy_wh", "quality", "status"),
}


def corrected_payload(payload: dict, changes: dict, subject: str) -> dict:
    """The received payload with the operator's ``changes`` of its correctable fields.

    A field the payload does not carry is only added for the energy; quality and status are
    corrected where the payload has them. The result is validated by the rebook, exactly as on ingestion.
    """
    allowed = CORRECTABLE_FIELDS.get(subject, ())
    corrected = dict(payload) if isinstance(payload, dict) else {}
    for field, value in changes.items():
        if field in allowed and (field == "energy_wh" or field in corrected) and value not in (None, ""):
            corrected[field] = value
    return corrected


def as_booked(case, payload: dict):
    """The case as its rebook sees it: ``payload`` in place of the received one. Never saved, so the
    received payload of the case stays as it came."""
    seen = copy.copy(case)
    seen.payload = payload
    return seen
