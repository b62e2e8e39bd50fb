"""Imbalances and settlement runs over the API."""

import datetime as dt

from core.testing import MONDAY as T0
from core.testing import iso
from transactions.tests.api import booking_payload

IMBALANCES = "/api/v1/imbalances/"
RUNS = "/api/v1/settlement-runs/"


def test_imbalances_per_group_and_quarter(api, api_site):
    api.post("/api/v1/bookings/", booking_payload(energy_wh=1001), format="json")
    rows = api.get(IMBALANCES, {"group": "APT-1"}).json()["results"]
    assert [(row["start"], row["inflow_wh"], row["outflow_wh"], row["net_wh"]) for row in rows] == [
        (iso(T0 + dt.timedelta(minutes=15 * n)), energy, 0, energy) for n, energy in enumerate([251, 250, 250, 250])
    ]
    assert all(row["group"] == str(api_site["apt"].pk) and row["status"] == "provisional" for row in rows)
    window = {"start": iso(T0 + dt.timedelta(minutes=15)), "end": iso(T0 + dt.timedelta(minutes=45))}
    both = api.get(IMBALANCES, window).json()["results"]
    assert len(both) == 4  # PV-ROOF and APT-1, two quarter-hours each
    assert sum(row["net_wh"] for row in both) == 0  # double entry: nets of a quarter-hour sum to zero
    assert [row["group_code"] for row in both[:2]] == ["APT-1", "PV-ROOF"]  # ordered by quarter, then code


def test_imbalance_filters_are_validated(api, api_site):
    assert api.get(IMBALANCES, {"start": "2026-03-02T00:00:00"}).status_code == 400
    assert api.get(IMBALANCES, {"status": "sometimes"}).status_code == 400
    assert api.get(IMBALANCES, {"group": "NOPE"}).json()["results"] == []


def test_imbalances_cursor_pagination(api, api_site):
    api.post("/api/v1/bookings/", booking_payload(energy_wh=1001), format="json")
    page = api.get(IMBALANCES, {"page_size": 3}).json()
    assert len(page["results"]) == 3 and page["next"]
    seen = [(row["group"], row["start"]) for row in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [(row["group"], row["start"]) for row in page["results"]]
    assert len(seen) == len(set(seen)) == 8
    assert seen == sorted(seen, key=lambda key: (key[1], key[0] != str(api_site["apt"].pk)))


def test_settlement_run_request_and_list(api, api_site):
    response = api.post(RUNS, {"start": iso(T0), "end": iso(T0 + dt.timedelta(days=1))}, format="json")
    assert response.status_code == 202, response.json()
    run = response.json()
    assert run["start"] == iso(T0) and run["status"] in {"queued", "running", "succeeded"}
    assert run["requested_by"] == "client:gateway"
    listed = api.get(RUNS).json()["results"]
    assert [item["id"] for item in listed] == [run["id"]]
    assert api.get(f"{RUNS}{run['id']}/").json()["id"] == run["id"]


def test_settlement_run_window_is_validated(api, api_site):
    misaligned = api.post(RUNS, {"start": "2026-03-02T00:05:00Z", "end": iso(T0 + dt.timedelta(days=1))}, format="json")
    assert misaligned.status_code == 400 and misaligned.json()["code"] == "INVALID_TIME_ALIGNMENT"
    backwards = api.post(RUNS, {"start": iso(T0), "end": iso(T0)}, format="json")
    assert backwards.status_code == 400
    assert api.get(RUNS).json()["results"] == []
