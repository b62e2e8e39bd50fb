"""Single bookings: create, idempotency by external_id, closed periods, finalize, reverse, lists."""

import datetime as dt

import pytest

from core.testing import MONDAY as T0
from core.testing import iso
from transactions.models import Booking, ClarificationCase, LedgerLine
from transactions.tests.api import booking_payload

BOOKINGS = "/api/v1/bookings/"


def test_create_returns_201_with_exact_lines(api, api_site):
    response = api.post(BOOKINGS, booking_payload(external_id="m-1", name="PV to apartment"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["source"] == str(api_site["pv"].pk) and body["destination"] == str(api_site["apt"].pk)
    assert body["status"] == "provisional" and body["kind"] == "manual" and body["external_id"] == "m-1"
    assert [line["energy_wh"] for line in body["lines"]] == [251, 250, 250, 250]
    assert body["lines"][0] == {"start": iso(T0), "end": iso(T0 + dt.timedelta(minutes=15)), "energy_wh": 251}
    assert sum(line["energy_wh"] for line in body["lines"]) == body["energy_wh"] == 1001


def test_offsets_are_accepted_and_answered_in_utc(api, api_site):
    payload = booking_payload(start="2026-03-02T01:00:00+01:00", end="2026-03-02T01:15:00+01:00", energy_wh=5)
    body = api.post(BOOKINGS, payload, format="json").json()
    assert body["start"] == "2026-03-02T00:00:00Z" and body["end"] == "2026-03-02T00:15:00Z"


def test_same_external_id_identical_is_200_unchanged(api, api_site):
    first = api.post(BOOKINGS, booking_payload(external_id="m-1"), format="json")
    again = api.post(BOOKINGS, booking_payload(external_id="m-1"), format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert Booking.objects.count() == 1


def test_same_external_id_different_content_replaces_provisional(api, api_site):
    first = api.post(BOOKINGS, booking_payload(external_id="m-1"), format="json").json()
    replaced = api.post(BOOKINGS, booking_payload(external_id="m-1", energy_wh=400), format="json")
    assert replaced.status_code == 200
    assert replaced.json()["id"] == first["id"] and replaced.json()["energy_wh"] == 400
    assert [line["energy_wh"] for line in replaced.json()["lines"]] == [100, 100, 100, 100]
    assert LedgerLine.objects.count() == 4


def test_same_external_id_final_is_409(api, api_site):
    api.post(BOOKINGS, booking_payload(external_id="m-1", status="final"), format="json")
    response = api.post(BOOKINGS, booking_payload(external_id="m-1", energy_wh=7), format="json")
    assert response.status_code == 409 and response.json()["code"] == "BOOKING_FINAL"


def test_closed_period_is_409_and_clarification_case_survives(api, api_site):
    api.post("/api/v1/balance-groups/APT-1/close", {"until": iso(T0 + dt.timedelta(days=1))}, format="json")
    payload = booking_payload(external_id="late-1")
    response = api.post(BOOKINGS, payload, format="json")
    assert response.status_code == 409 and response.json()["code"] == "PERIOD_CLOSED"
    case = ClarificationCase.objects.get()
    assert case.reason == "PERIOD_CLOSED" and case.channel == "api" and case.payload == payload
    assert not Booking.objects.exists()
    listed = api.get("/api/v1/clarifications/").json()["results"]
    assert [item["id"] for item in listed] == [str(case.pk)]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"destination": "PV-ROOF"}, "VALIDATION_ERROR", "destination"),
        ({"source": "NOPE"}, "VALIDATION_ERROR", "source"),
        ({"energy_wh": 0}, "VALIDATION_ERROR", "energy_wh"),
        ({"energy_wh": 1.5}, "VALIDATION_ERROR", "energy_wh"),
        ({"energy_wh": "100"}, "VALIDATION_ERROR", "energy_wh"),
        ({"start": "2026-03-02T00:05:00Z"}, "INVALID_TIME_ALIGNMENT", "start"),
        ({"start": "2026-03-02T00:00:00"}, "VALIDATION_ERROR", "start"),
        ({"end": iso(T0)}, "VALIDATION_ERROR", "end"),
        ({"status": "done"}, "VALIDATION_ERROR", "status"),
        ({"colour": "red"}, "VALIDATION_ERROR", "colour"),
        ({"external_id": ""}, "VALIDATION_ERROR", "external_id"),
    ],
)
def test_invalid_bookings_are_400(api, api_site, overrides, code, field):
    response = api.post(BOOKINGS, booking_payload(**overrides), format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == code
    assert field in response.json()["errors"]
    assert not Booking.objects.exists()


def test_group_not_valid_is_400_with_clarification(api, api_site):
    api.patch("/api/v1/balance-groups/APT-1/", {"valid_from": iso(T0 + dt.timedelta(days=1))}, format="json")
    response = api.post(BOOKINGS, booking_payload(), format="json")
    assert response.status_code == 400
    assert ClarificationCase.objects.get().reason == "GROUP_NOT_VALID"


def test_body_must_be_an_object(api, api_site):
    response = api.post(BOOKINGS, [booking_payload()], format="json")
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"


def test_finalize_and_again(api, api_site):
    booking = api.post(BOOKINGS, booking_payload(), format="json").json()
    response = api.post(f"{BOOKINGS}{booking['id']}/finalize")
    assert response.status_code == 200 and response.json()["status"] == "final"
    assert response.json()["finalized_at"] is not None
    again = api.post(f"{BOOKINGS}{booking['id']}/finalize")
    assert again.status_code == 200 and again.json()["finalized_at"] == response.json()["finalized_at"]
    assert LedgerLine.objects.filter(is_final=False).count() == 0


def test_reverse_creates_a_mirror_booking(api, api_site):
    booking = api.post(BOOKINGS, booking_payload(status="final"), format="json").json()
    response = api.post(f"{BOOKINGS}{booking['id']}/reverse")
    assert response.status_code == 201
    reversal = response.json()
    assert reversal["kind"] == "reversal" and reversal["reverses"] == booking["id"]
    assert reversal["source"] == booking["destination"] and reversal["destination"] == booking["source"]
    assert [line["energy_wh"] for line in reversal["lines"]] == [line["energy_wh"] for line in booking["lines"]]
    again = api.post(f"{BOOKINGS}{booking['id']}/reverse")
    assert again.status_code == 409 and again.json()["code"] == "CONFLICT"


def test_reverse_provisional_is_409(api, api_site):
    booking = api.post(BOOKINGS, booking_payload(), format="json").json()
    assert api.post(f"{BOOKINGS}{booking['id']}/reverse").status_code == 409


def test_unknown_and_malformed_ids_are_404(api, api_site):
    assert api.get(f"{BOOKINGS}00000000-0000-0000-0000-000000000000/").status_code == 404
    assert api.get(f"{BOOKINGS}not-a-uuid/").json()["code"] == "NOT_FOUND"
    assert api.post(f"{BOOKINGS}not-a-uuid/finalize").status_code == 404


def test_list_filters_and_cursor_pagination(api, api_site):
    for hour in range(5):
        start = T0 + dt.timedelta(hours=hour)
        payload = booking_payload(start=iso(start), end=iso(start + dt.timedelta(hours=1)), external_id=f"h{hour}")
        api.post(BOOKINGS, payload, format="json")
    api.post(BOOKINGS, booking_payload(source="GRID-IMPORT", destination="HOUSE"), format="json")
    page = api.get(BOOKINGS, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"] and page["previous"] is None
    seen = [item["id"] for item in page["results"]]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += [item["id"] for item in page["results"]]
    assert len(seen) == len(set(seen)) == 6
    assert len(api.get(BOOKINGS, {"group": "HOUSE"}).json()["results"]) == 1
    assert len(api.get(BOOKINGS, {"source": "PV-ROOF"}).json()["results"]) == 5
    assert len(api.get(BOOKINGS, {"destination": str(api_site["apt"].pk)}).json()["results"]) == 5
    window = {"start": iso(T0 + dt.timedelta(hours=1)), "end": iso(T0 + dt.timedelta(hours=3))}
    assert {item["external_id"] for item in api.get(BOOKINGS, {**window, "source": "PV-ROOF"}).json()["results"]} == {
        "h1",
        "h2",
    }
    assert api.get(BOOKINGS, {"start": "2026-03-02T00:00:00"}).status_code == 400
    assert len(api.get(BOOKINGS, {"status": "final"}).json()["results"]) == 0
    assert len(api.get(BOOKINGS, {"kind": "manual"}).json()["results"]) == 6


def test_ledger_lines_list(api, api_site):
    booking = api.post(BOOKINGS, booking_payload(), format="json").json()
    lines = api.get("/api/v1/ledger-lines/", {"booking": booking["id"]}).json()["results"]
    assert [line["energy_wh"] for line in lines] == [251, 250, 250, 250]
    assert lines[0]["start"] == iso(T0) and lines[0]["status"] == "provisional"
    window = {"start": iso(T0 + dt.timedelta(minutes=15)), "end": iso(T0 + dt.timedelta(minutes=45)), "group": "APT-1"}
    assert len(api.get("/api/v1/ledger-lines/", window).json()["results"]) == 2


def test_clarification_resolve_rebook_and_dismiss(api, api_site):
    api.post("/api/v1/balance-groups/APT-1/close", {"until": iso(T0 + dt.timedelta(hours=1))}, format="json")
    api.post(BOOKINGS, booking_payload(external_id="a"), format="json")
    api.post(BOOKINGS, booking_payload(external_id="b", energy_wh=5), format="json")
    first, second = ClarificationCase.objects.order_by("created_at")
    missing_note = api.post(f"/api/v1/clarifications/{first.pk}/resolve", {"action": "dismiss"}, format="json")
    assert missing_note.status_code == 400
    unknown = api.post(
        f"/api/v1/clarifications/{first.pk}/resolve", {"action": "dismiss", "note": "x", "by": "me"}, format="json"
    )
    assert unknown.status_code == 400 and unknown.json()["errors"] == {"by": ["Unknown field."]}
    dismissed = api.post(
        f"/api/v1/clarifications/{first.pk}/resolve", {"action": "dismiss", "note": "duplicate reading"}, format="json"
    )
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    # Still closed: rebooking is refused, and the case stays open.
    refused = api.post(f"/api/v1/clarifications/{second.pk}/resolve", {"action": "rebook"}, format="json")
    assert refused.status_code == 409
    second.refresh_from_db()
    assert second.status == "open"
    again = api.post(f"/api/v1/clarifications/{first.pk}/resolve", {"action": "dismiss", "note": "x"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "CONFLICT"
    assert api.get("/api/v1/clarifications/", {"status": "open"}).json()["results"][0]["id"] == str(second.pk)


def test_clarification_rebook_books_once(api, api_site, make_group):
    api.patch("/api/v1/balance-groups/APT-1/", {"valid_from": iso(T0 + dt.timedelta(hours=1))}, format="json")
    api.post(BOOKINGS, booking_payload(external_id="early"), format="json")
    case = ClarificationCase.objects.get()
    api.patch("/api/v1/balance-groups/APT-1/", {"valid_from": iso(T0)}, format="json")
    response = api.post(f"/api/v1/clarifications/{case.pk}/resolve", {"action": "rebook", "note": "ok"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "rebooked" and response.json()["booking"]
    assert Booking.objects.filter(external_id="early").count() == 1


def test_booking_list_queries_do_not_grow_with_bookings(api, api_site, django_assert_max_num_queries):
    api.post(BOOKINGS, booking_payload(external_id="first"), format="json")
    with django_assert_max_num_queries(10):
        api.get(BOOKINGS)
    api.post(
        "/api/v1/bookings/bulk",
        {"bookings": [booking_payload(external_id=f"n{n}", energy_wh=n + 1) for n in range(40)]},
        format="json",
    )
    with django_assert_max_num_queries(10):
        assert len(api.get(BOOKINGS).json()["results"]) == 41
