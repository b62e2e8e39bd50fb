"""API tests of bookings; ``booking_payload`` is the item every API suite posts."""

import datetime as dt

from core.testing import MONDAY as T0
from core.testing import iso


def booking_payload(**overrides) -> dict:
    payload = {
        "source": "PV-ROOF",
        "destination": "APT-1",
        "start": iso(T0),
        "end": iso(T0 + dt.timedelta(hours=1)),
        "energy_wh": 1001,
    }
    payload.update(overrides)
    return payload
