"""The balance endpoint renders the selector's dicts by hand: its output must equal the documented serializer's."""

import datetime as dt

import pytest
from rest_framework.renderers import JSONRenderer

from balance_groups.serializers import GroupBalanceSerializer
from core.testing import MONDAY as T0
from core.testing import iso
from settlement.selectors import group_balance
from transactions.tests.api import booking_payload

GROUPS = "/api/v1/balance-groups/"


def serializer_output(group, start, end, resolution):
    data = group_balance(group=group, start=start, end=end, resolution=resolution)
    return JSONRenderer().render(GroupBalanceSerializer(data).data)


@pytest.fixture
def booked(api, api_site):
    """A final hour and a provisional hour for APT-1, the second crossing a day boundary."""
    final = api.post("/api/v1/bookings/", booking_payload(energy_wh=1001), format="json").json()
    assert api.post(f"/api/v1/bookings/{final['id']}/finalize").status_code == 200
    late = T0 + dt.timedelta(hours=23, minutes=30)
    response = api.post(
        "/api/v1/bookings/",
        booking_payload(
            source="APT-1",
            destination="GRID-IMPORT",
            start=iso(late),
            end=iso(late + dt.timedelta(hours=1)),
            energy_wh=7,
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    return api_site


@pytest.mark.parametrize(
    ("start", "end", "resolution"),
    [
        (T0 - dt.timedelta(hours=1), T0 + dt.timedelta(days=2), "15min"),
        (T0 - dt.timedelta(minutes=45), T0 + dt.timedelta(days=2, minutes=15), "1h"),
        (T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=2), "1d"),
        # Europe/Berlin spring change: a local day of 92 quarter-hours, window given with offsets.
        (dt.datetime(2026, 3, 28, 23, tzinfo=dt.UTC), dt.datetime(2026, 3, 30, 22, tzinfo=dt.UTC), "1d"),
    ],
)
def test_balance_response_equals_serializer_output(api, booked, start, end, resolution):
    group = booked["apt"]
    params = {"start": start.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat(), "end": iso(end)}
    response = api.get(f"{GROUPS}APT-1/balance", {**params, "resolution": resolution})
    assert response.status_code == 200, response.json()
    assert response.content == serializer_output(group, start, end, resolution)


def test_balance_output_has_documented_keys_and_both_statuses(api, booked):
    start, end = T0, T0 + dt.timedelta(days=1, hours=1)
    body = api.get(f"{GROUPS}APT-1/balance", {"start": iso(start), "end": iso(end)}).json()
    interval_keys = list(GroupBalanceSerializer().fields["intervals"].child.fields)
    assert list(body) == list(GroupBalanceSerializer().fields)
    assert all(list(interval) == interval_keys for interval in body["intervals"])
    assert body["start"] == "2026-03-02T00:00:00Z" and body["end"] == "2026-03-03T01:00:00Z"
    assert body["inflow_wh"] == 1001 and body["outflow_wh"] == 7 and body["net_wh"] == 994
    assert body["status"] == "provisional"
    assert {interval["status"] for interval in body["intervals"][:4]} == {"final"}
    assert body["intervals"][-3]["status"] == "provisional"
