"""An allocation scheme with a day of measurements on the dashboard's small site (``conftest.site``).

PV and a battery (BAT) share their energy dynamically between APT and APT-2; SUPPLIER takes the
surplus and supplies the rest. DAY is measured in full and final, except APT-2 at 12:00 (missing:
a gap) and APT from 09:00 to 10:00 (substitute values: provisional).
"""

import datetime as dt
import math

from allocation.measurements import measurements_ingest
from allocation.services import scheme_change
from balance_groups.factories import GroupFactory
from core.testing import iso
from dashboard.tests.conftest import local

GAP = local(12)  # APT-2 has no value here
SUBSTITUTES = [local(9, minute) for minute in (0, 15, 30, 45)]  # APT: substitute values


def pv_wh(quarter: int) -> int:
    hours = quarter / 4
    return max(0, round(600 * math.sin(math.pi * (hours - 7) / 11))) if 7 <= hours <= 18 else 0


def build_scheme_site(site, actor, *, code: str = "HAUS") -> dict:
    tenant = site["PV"].tenant
    groups = {
        **site,
        "BAT": GroupFactory(tenant=tenant, code="BAT", kind="source", name="Batterie"),
        "APT-2": GroupFactory(tenant=tenant, code="APT-2", kind="consumer", name="Wohnung 2"),
    }
    scheme = scheme_change(
        tenant=tenant,
        actor=actor,
        code=code,
        name="Mieterstrom Haus",
        method="dynamic",
        sources=[groups["PV"], groups["BAT"]],
        consumers=[(groups["APT"], 6000), (groups["APT-2"], 4000)],
        surplus_to=groups["SUPPLIER"],
        residual_from=groups["SUPPLIER"],
        effective_from=max(g.valid_from for g in groups.values()),
    )
    items = []
    for quarter in range(96):
        start = local(0) + dt.timedelta(minutes=15 * quarter)
        values = {
            "PV": pv_wh(quarter),
            "BAT": 150 if quarter >= 72 else 0,
            "APT": 120 + 10 * (quarter % 4),
            "APT-2": 80 + 20 * (quarter % 3),
        }
        for group, wh in values.items():
            if group == "APT-2" and start == GAP:
                continue
            fields = {"quality": "substitute"} if group == "APT" and start in SUBSTITUTES else {"status": "final"}
            items.append({"group": group, "start": iso(start), "energy_wh": wh, **fields})
    result = measurements_ingest(tenant=tenant, actor=actor, items=items)
    assert result.rejected == [], result.rejected
    return {"scheme": scheme, "groups": groups}
