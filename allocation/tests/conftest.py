"""A small tenant-electricity site: PV and a battery, two apartments, the grid."""

import datetime as dt

import pytest

from allocation.measurements import measurements_ingest
from allocation.services import scheme_change
from core.testing import T0, iso

MP_PV = "DE0001234567890000000000000000001"  # metering points of the MSCONS suites' meters
MP_APT = "DE0001234567890000000000000000002"


@pytest.fixture
def site(make_group):
    class Site:
        pv = make_group("PV", "source")
        battery = make_group("BAT", "source")
        apt1 = make_group("APT-1", "consumer")
        apt2 = make_group("APT-2", "consumer")
        grid = make_group("GRID", "balance")

    return Site


@pytest.fixture
def make_scheme(tenant, operator, site):
    def make(method="dynamic", *, sources=None, consumers=None, code="HAUS", effective_from=T0, **kwargs):
        return scheme_change(
            tenant=tenant,
            actor=operator,
            code=code,
            name=kwargs.pop("name", "Mieterstrom Haus"),
            method=method,
            sources=sources or [site.pv, site.battery],
            consumers=consumers or [(site.apt1, 5000), (site.apt2, 5000)],
            surplus_to=kwargs.pop("surplus_to", site.grid),
            residual_from=kwargs.pop("residual_from", site.grid),
            effective_from=effective_from,
            **kwargs,
        )

    return make


@pytest.fixture
def measure(tenant, operator):
    """``measure({group: [Wh, ...]}, start=T0, quality=..., status=...)``: consecutive quarter-hours per group."""

    def send(values: dict, start: dt.datetime = T0, **fields):
        items = [
            {"group": group.code, "start": iso(start + dt.timedelta(minutes=15 * i)), "energy_wh": wh, **fields}
            for group, series in values.items()
            for i, wh in enumerate(series)
        ]
        return measurements_ingest(tenant=tenant, actor=operator, items=items)

    return send


@pytest.fixture
def meters(make_group):
    """A PV source and an apartment that carry metering points (MSCONS matches on them)."""

    class Meters:
        pv = make_group("PV", "source", metering_point=MP_PV)
        apt = make_group("APT-1", "consumer", metering_point=MP_APT)

    return Meters
