"""Measurements over the API: the bulk rules of API.md item by item, the list, access and isolation."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from allocation.measurements import MAX_ITEMS
from allocation.models import Measurement
from balance_groups.models import AuditEntry
from balance_groups.services import api_client_create
from core.testing import T0, iso
from transactions.models import Booking, BookingKind, ClarificationCase, ClarificationSubject

BULK = "/api/v1/measurements/bulk"
LIST = "/api/v1/measurements/"
Q = dt.timedelta(minutes=15)


def item(group="PV", n=0, energy_wh=100, **fields) -> dict:
    return {"group": group, "start": iso(T0 + n * Q), "energy_wh": energy_wh, **fields}


def send(api, *items, query=""):
    response = api.post(BULK + query, {"measurements": list(items)}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()


def counts(body) -> tuple:
    return body["created"], body["replaced"], body["unchanged"]


def refusals(body) -> list[tuple]:
    return [(entry["index"], entry["code"]) for entry in body["rejected"]]


def stored(group) -> dict:
    return {
        row.quarter_start: (row.energy_wh, row.quality, row.status)
        for row in Measurement.objects.filter(group=group).order_by("quarter_start")
    }


def test_created_replaced_unchanged(api, site):
    body = send(api, item(n=0), item(n=1), item("APT-1", n=0, energy_wh=0))
    assert counts(body) == (3, 0, 0) and body["rejected"] == []
    body = send(api, item(n=0), item(n=1, energy_wh=7), item("APT-1", n=0, energy_wh=0, quality="estimated"), item(n=2))
    assert counts(body) == (1, 2, 1) and body["rejected"] == []
    assert stored(site.pv) == {
        T0: (100, "measured", "provisional"),
        T0 + Q: (7, "measured", "provisional"),
        T0 + 2 * Q: (100, "measured", "provisional"),
    }
    assert stored(site.apt1) == {T0: (0, "estimated", "provisional")}


def test_a_repeated_key_in_one_request_behaves_like_consecutive_requests(api, site):
    body = send(api, item(n=0), item(n=0), item(n=0, energy_wh=5), item(n=1, status="final"), item(n=1, energy_wh=9))
    assert counts(body) == (2, 1, 1)
    assert refusals(body) == [(4, "MEASUREMENT_FINAL")]
    assert stored(site.pv) == {T0: (5, "measured", "provisional"), T0 + Q: (100, "measured", "final")}


def test_end_is_optional_and_must_be_start_plus_15_minutes(api, site):
    body = send(
        api,
        item(n=0, end=iso(T0 + Q)),
        item(n=1, end=iso(T0 + 3 * Q)),
        item(n=2, end=iso(T0 + 2 * Q)),
        item(n=3, end=None),
    )
    assert counts(body) == (2, 0, 0)
    assert refusals(body) == [(1, "VALIDATION_ERROR"), (2, "VALIDATION_ERROR")]
    assert all(set(entry["errors"]) == {"end"} for entry in body["rejected"])


def test_final_re_sent_with_another_value_is_kept_as_a_case_whose_rebook_corrects_it(api, site):
    send(api, item("APT-1", n=0, energy_wh=400, status="final"))
    body = send(
        api, item("APT-1", n=0, energy_wh=400, status="final"), item("APT-1", n=0, energy_wh=410, status="final")
    )
    assert counts(body) == (0, 0, 1)
    assert refusals(body) == [(1, "MEASUREMENT_FINAL")]
    assert "final (400 Wh)" in body["rejected"][0]["detail"]
    assert stored(site.apt1) == {T0: (400, "measured", "final")}
    case = ClarificationCase.objects.get()
    assert (case.reason, case.subject, case.channel) == ("MEASUREMENT_FINAL", ClarificationSubject.MEASUREMENT, "bulk")
    assert case.payload == item("APT-1", n=0, energy_wh=410, status="final")

    listed = api.get("/api/v1/clarifications/").json()["results"]
    assert [entry["id"] for entry in listed] == [str(case.pk)]
    response = api.post(f"/api/v1/clarifications/{case.pk}/resolve", {"action": "rebook"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "rebooked"
    assert stored(site.apt1) == {T0: (410, "measured", "final")}
    audit = AuditEntry.objects.filter(action="measurement.correct").get()
    assert audit.data["corrected"] == [{"group": str(site.apt1.pk), "start": T0.isoformat(), "from_wh": 400}]


def test_closed_period_is_refused_and_kept_as_a_case(api, site):
    response = api.post("/api/v1/balance-groups/APT-2/close", {"until": iso(T0 + 2 * Q)}, format="json")
    assert response.status_code == 200, response.json()
    body = send(api, item("APT-2", n=1), item("APT-2", n=2), item("APT-2", n=0, energy_wh=3))
    assert counts(body) == (1, 0, 0)
    assert refusals(body) == [(0, "PERIOD_CLOSED"), (2, "PERIOD_CLOSED")]
    cases = ClarificationCase.objects.order_by("payload__energy_wh")
    assert [(case.reason, case.payload["start"]) for case in cases] == [
        ("PERIOD_CLOSED", iso(T0)),
        ("PERIOD_CLOSED", iso(T0 + Q)),
    ]


def test_outside_the_groups_validity_is_refused_and_kept_as_a_case(api, site):
    body = send(api, item(n=-1))
    assert refusals(body) == [(0, "VALIDATION_ERROR")]
    assert "valid from" in body["rejected"][0]["detail"]
    assert ClarificationCase.objects.get().reason == "GROUP_NOT_VALID"


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"start": "2026-01-01T00:05:00Z"}, "INVALID_TIME_ALIGNMENT", "start"),
        ({"start": "2026-01-01T01:07:00+01:00"}, "INVALID_TIME_ALIGNMENT", "start"),
        ({"start": "2026-01-01T00:00:00"}, "VALIDATION_ERROR", "start"),
        ({"start": "gestern"}, "VALIDATION_ERROR", "start"),
        ({"start": 1767225600}, "VALIDATION_ERROR", "start"),
        ({"start": None}, "VALIDATION_ERROR", "start"),
        ({"start": "1999-12-31T23:45:00Z"}, "VALIDATION_ERROR", "start"),
        ({"end": "2026-01-01T00:20:00Z"}, "INVALID_TIME_ALIGNMENT", "end"),
        ({"energy_wh": -1}, "VALIDATION_ERROR", "energy_wh"),
        ({"energy_wh": 1.5}, "VALIDATION_ERROR", "energy_wh"),
        ({"energy_wh": 100.0}, "VALIDATION_ERROR", "energy_wh"),
        ({"energy_wh": "100"}, "VALIDATION_ERROR", "energy_wh"),
        ({"energy_wh": True}, "VALIDATION_ERROR", "energy_wh"),
        ({"energy_wh": None}, "VALIDATION_ERROR", "energy_wh"),
        ({"energy_wh": 2**63}, "VALIDATION_ERROR", "energy_wh"),
        ({"quality": "geschätzt"}, "VALIDATION_ERROR", "quality"),
        ({"quality": ["measured"]}, "VALIDATION_ERROR", "quality"),
        ({"status": "endgültig"}, "VALIDATION_ERROR", "status"),
        ({"status": "final", "quality": "substitute"}, "VALIDATION_ERROR", "status"),
        ({"status": "final", "quality": "estimated"}, "VALIDATION_ERROR", "status"),
        ({"tenant": "nachbar"}, "VALIDATION_ERROR", "tenant"),
        ({"group": "GRID"}, "VALIDATION_ERROR", "group"),
        ({"group": "NOPE"}, "VALIDATION_ERROR", "group"),
        ({"group": "   "}, "VALIDATION_ERROR", "group"),
        ({"group": 42}, "VALIDATION_ERROR", "group"),
    ],
)
def test_an_invalid_item_is_refused_alone_with_its_code_and_field(api, site, changes, code, field):
    body = send(api, item(n=0), {**item(n=1), **changes}, item(n=2))
    assert counts(body) == (2, 0, 0)
    assert refusals(body) == [(1, code)]
    assert list(body["rejected"][0]["errors"]) == [field]
    assert set(stored(site.pv)) == {T0, T0 + 2 * Q}
    assert not ClarificationCase.objects.exists()


def test_a_balance_group_is_named_in_the_refusal(api, site):
    body = send(api, item("GRID"))
    assert body["rejected"][0]["detail"] == "Group GRID is a balance; measurements are for sources and consumers."


def test_a_non_object_item_is_refused(api, site):
    body = send(api, "PV;0;100", [item()], None, item(n=3))
    assert counts(body) == (1, 0, 0)
    assert refusals(body) == [(0, "VALIDATION_ERROR"), (1, "VALIDATION_ERROR"), (2, "VALIDATION_ERROR")]


@pytest.mark.parametrize(
    "body",
    [
        {"measurements": "alle"},
        {"measurements": {"group": "PV"}},
        {"measurements": [], "tenant": "nachbar"},
        {"bookings": []},
        [],
    ],
)
def test_the_envelope_is_exactly_a_list_under_measurements(api, site, body):
    response = api.post(BULK, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "measurements" in response.json()["errors"]


def test_more_than_100000_items_are_refused_whole(api, site):
    response = api.post(BULK, {"measurements": [item(n=0)] + [{}] * MAX_ITEMS}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR" and "100000" in body["errors"]["measurements"][0]
    assert not Measurement.objects.exists()


def test_dry_run_reports_the_same_and_stores_nothing(api, site):
    send(api, item(n=0))
    body = send(api, item(n=0), item(n=0, energy_wh=1), item(n=1), item("GRID"), query="?dry_run=true")
    assert counts(body) == (1, 1, 1) and refusals(body) == [(3, "VALIDATION_ERROR")]
    assert stored(site.pv) == {T0: (100, "measured", "provisional")}
    response = api.post(BULK + "?dry_run=vielleicht", {"measurements": []}, format="json")
    assert response.status_code == 400 and "dry_run" in response.json()["errors"]


def test_an_offset_that_lands_on_a_quarter_hour_is_accepted(api, site):
    body = send(api, {**item(), "start": "2026-01-01T06:00:00+05:30", "end": "2026-01-01T00:45:00Z"})
    assert counts(body) == (1, 0, 0)
    assert set(stored(site.pv)) == {T0 + 2 * Q}


def test_a_group_is_referenced_by_id_code_or_metering_point(api, site):
    site.apt2.metering_point = "DE0001234567890000000000000000001"
    site.apt2.save()
    body = send(api, item(str(site.pv.pk)), item("APT-1"), item("DE0001234567890000000000000000001"), item(" PV ", n=1))
    assert counts(body) == (4, 0, 0)
    assert Measurement.objects.filter(group=site.apt2).count() == 1


def test_a_bulk_post_allocates_the_quarter_hours_it_completes(api, site, make_scheme):
    make_scheme("dynamic")
    body = send(api, item("PV", energy_wh=1000), item("BAT", energy_wh=0), item("APT-1", energy_wh=300))
    assert counts(body) == (3, 0, 0)
    assert not Booking.objects.filter(kind=BookingKind.ALLOCATION).exists()  # APT-2 is missing: a gap
    send(api, item("APT-2", energy_wh=500))
    flows = {
        (booking.source.code, booking.destination.code): booking.energy_wh
        for booking in Booking.objects.filter(kind=BookingKind.ALLOCATION).select_related("source", "destination")
    }
    assert flows == {("PV", "APT-1"): 300, ("PV", "APT-2"): 500, ("PV", "GRID"): 200}
    send(api, item("APT-2", energy_wh=900))  # replaced while provisional: allocated anew
    flows = {
        (booking.source.code, booking.destination.code): booking.energy_wh
        for booking in Booking.objects.filter(kind=BookingKind.ALLOCATION, allocation_key__isnull=False).select_related(
            "source", "destination"
        )
    }
    # 1000 Wh in proportion to 300 and 900 Wh consumed; the rest of each from the grid
    assert flows == {("PV", "APT-1"): 250, ("PV", "APT-2"): 750, ("GRID", "APT-1"): 50, ("GRID", "APT-2"): 150}


def test_validity_and_closing_of_the_group_decide_as_documented(api, site):
    site.pv.valid_until = T0 + 2 * Q
    site.pv.save()
    site.apt1.closed_until = T0 + Q
    site.apt1.save()
    body = send(api, item(n=-1), item(n=0), item(n=1), item(n=2), item("APT-1", n=0), item("APT-1", n=1))
    assert counts(body) == (3, 0, 0)
    assert refusals(body) == [(0, "VALIDATION_ERROR"), (3, "VALIDATION_ERROR"), (4, "PERIOD_CLOSED")]
    assert set(stored(site.pv)) == {T0, T0 + Q} and set(stored(site.apt1)) == {T0 + Q}


def test_the_writer_is_recorded_exactly_whatever_its_name(tenant, site):
    _client, key = api_client_create(tenant=tenant, name="Zähler\\Tor\tA")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    send(client, item())
    assert Measurement.objects.get().updated_by == "client:Zähler\\Tor\tA"


def test_the_number_of_queries_does_not_grow_with_the_items(api, site):
    def queries(*items) -> int:
        with CaptureQueriesContext(connection) as captured:
            send(api, *items)
        return len(captured)

    send(api)  # the client's first request also notes when it was last used
    few = queries(*(item(group, n) for group in ("PV", "APT-1") for n in range(2)))
    many = queries(*(item(group, n) for group in ("PV", "BAT", "APT-1", "APT-2") for n in range(2, 90)))
    assert many == few
    replaced = queries(
        *(item(group, n, energy_wh=1) for group in ("PV", "BAT", "APT-1", "APT-2") for n in range(2, 90))
    )
    assert replaced <= few + 3  # the set-based update of the replaced values


def test_one_audit_entry_per_request_and_none_for_nothing_new(api, site):
    before = AuditEntry.objects.filter(action="measurement.ingest").count()
    send(api, *(item(n=n) for n in range(20)))
    send(api, *(item(n=n) for n in range(20)))
    entries = AuditEntry.objects.filter(action="measurement.ingest")
    assert entries.count() - before == 1
    assert entries.latest("at").data["created"] == 20


# -- access ------------------------------------------------------------------------------------


def test_anonymous_is_401_and_a_read_only_client_may_list_but_not_write(anon, readonly_api, site):
    for method, url in (("get", LIST), ("post", BULK)):
        response = getattr(anon, method)(url, {"measurements": []} if method == "post" else None, format="json")
        assert response.status_code == 401 and response.json()["code"] == "NOT_AUTHENTICATED"
    response = readonly_api.post(BULK, {"measurements": [item()]}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "PERMISSION_DENIED"
    assert not Measurement.objects.exists()
    assert readonly_api.get(LIST).status_code == 200


def test_another_tenants_groups_are_not_found_and_its_rows_not_listed(api, other_api, site):
    send(api, item(n=0))
    site.apt1.metering_point = "12345678901"
    site.apt1.save()
    body = send(other_api, item("PV"), item(str(site.pv.pk)), item("12345678901"))
    assert refusals(body) == [(0, "VALIDATION_ERROR"), (1, "VALIDATION_ERROR"), (2, "VALIDATION_ERROR")]
    assert all("not found" in entry["detail"] for entry in body["rejected"])
    assert Measurement.objects.count() == 1 and not ClarificationCase.objects.exists()
    assert other_api.get(LIST).json()["results"] == []
    assert other_api.get(LIST, {"group": str(site.pv.pk)}).json()["results"] == []


def test_the_bulk_endpoint_is_throttled_in_the_bulk_scope(api, site, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "100/min", "bulk": "2/min"},
    }
    statuses = [api.post(BULK, {"measurements": []}, format="json").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert api.get(LIST).status_code == 200  # the client's own budget is untouched


# -- the list ------------------------------------------------------------------------------------


@pytest.fixture
def listed(api, site):
    """Three quarter-hours of PV and APT-1; APT-1's second value is a substitute, PV's first final."""
    send(
        api,
        item("PV", n=0, energy_wh=10, status="final"),
        item("PV", n=1, energy_wh=11),
        item("PV", n=2, energy_wh=12),
        item("APT-1", n=0, energy_wh=20),
        item("APT-1", n=1, energy_wh=21, quality="substitute"),
        item("APT-1", n=2, energy_wh=22),
    )
    return site


def rows(api, **params) -> list[tuple]:
    response = api.get(LIST, params)
    assert response.status_code == 200, response.json()
    return [(row["group"], row["start"], row["energy_wh"]) for row in response.json()["results"]]


def test_rows_have_the_contract_shape(api, listed):
    first = api.get(LIST).json()["results"][0]
    assert first == {
        "group": str(listed.apt1.pk),
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T00:15:00Z",
        "energy_wh": 20,
        "quality": "measured",
        "status": "provisional",
    }


def test_the_list_is_ordered_by_quarter_hour_then_group_code(api, listed):
    pv, apt = str(listed.pv.pk), str(listed.apt1.pk)
    assert [(group, wh) for group, _, wh in rows(api)] == [
        (apt, 20),
        (pv, 10),
        (apt, 21),
        (pv, 11),
        (apt, 22),
        (pv, 12),
    ]


def test_list_filters(api, listed):
    listed.pv.metering_point = "DE0001234567890000000000000000001"
    listed.pv.save()
    pv = str(listed.pv.pk)
    for ref in (pv, "PV", "DE0001234567890000000000000000001"):
        assert [wh for _, _, wh in rows(api, group=ref)] == [10, 11, 12]
    assert rows(api, group="NOPE") == []
    assert [wh for _, _, wh in rows(api, start=iso(T0 + Q), end=iso(T0 + 2 * Q))] == [21, 11]
    assert [wh for _, _, wh in rows(api, start="2026-01-01T01:15:00+01:00")] == [21, 11, 22, 12]
    assert [wh for _, _, wh in rows(api, quality="substitute")] == [21]
    assert [wh for _, _, wh in rows(api, status="final")] == [10]
    assert [wh for _, _, wh in rows(api, group="APT-1", status="provisional", quality="measured")] == [20, 22]


@pytest.mark.parametrize(
    "params",
    [{"quality": "gut"}, {"status": "fertig"}, {"start": "2026-01-01T00:00:00"}, {"end": "morgen"}, {"cursor": "xyz"}],
)
def test_bad_list_filters_are_a_400(api, listed, params):
    response = api.get(LIST, params)
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "VALIDATION_ERROR"


def test_cursor_pagination_walks_every_row_once(api, listed):
    seen, url, pages = [], LIST + "?page_size=4", 0
    while url:
        body = api.get(url).json()
        seen += [(row["group"], row["start"]) for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 2 and len(seen) == len(set(seen)) == 6
    assert seen == [(group, start) for group, start, _ in rows(api)]
    back = api.get(api.get(LIST + "?page_size=4").json()["next"]).json()["previous"]
    assert [row["energy_wh"] for row in api.get(back).json()["results"]] == [20, 10, 21, 11]
