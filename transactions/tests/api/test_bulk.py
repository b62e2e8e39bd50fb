"""Bulk ingestion: per-item results, the single-booking rules, idempotency, dry runs, concurrency."""

import datetime as dt
import threading

import pytest
from django.db import connection

from balance_groups.models import AuditEntry
from core.splitting import split_energy
from core.testing import MONDAY as T0
from core.testing import iso
from transactions import bulk
from transactions.bulk import bookings_bulk_ingest
from transactions.models import Booking, ClarificationCase, LedgerLine
from transactions.tests.api import booking_payload

BULK = "/api/v1/bookings/bulk"


def quarter(n: int, **overrides) -> dict:
    start = T0 + dt.timedelta(minutes=15 * n)
    return booking_payload(
        external_id=f"q{n}", start=iso(start), end=iso(start + dt.timedelta(minutes=15)), energy_wh=100 + n, **overrides
    )


def test_valid_items_are_stored_and_invalid_ones_reported(api, api_site):
    items = [quarter(0), quarter(1), {**quarter(2), "start": "2026-03-02T00:31:00Z"}, quarter(3, source="NOPE"), "x"]
    response = api.post(BULK, {"bookings": items}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["replaced"], body["unchanged"]) == (2, 0, 0)
    assert [(entry["index"], entry["code"]) for entry in body["rejected"]] == [
        (2, "INVALID_TIME_ALIGNMENT"),
        (3, "VALIDATION_ERROR"),
        (4, "VALIDATION_ERROR"),
    ]
    assert "NOPE" in body["rejected"][1]["detail"]
    assert set(Booking.objects.values_list("external_id", flat=True)) == {"q0", "q1"}
    assert LedgerLine.objects.count() == 2


def test_lines_split_exactly_like_split_energy(api, api_site):
    items = [
        booking_payload(external_id="a", energy_wh=1001),  # 4 quarter-hours
        booking_payload(external_id="b", energy_wh=3, end=iso(T0 + dt.timedelta(hours=2))),  # 8 quarters, 3 Wh
        booking_payload(external_id="c", energy_wh=7, status="final", source="GRID-IMPORT", destination="HOUSE"),
    ]
    assert api.post(BULK, {"bookings": items}, format="json").json()["created"] == 3
    for booking in Booking.objects.all():
        lines = list(booking.lines.order_by("quarter_start"))
        quarters = int((booking.end - booking.start).total_seconds() // 900)
        expected = [part for part in split_energy(booking.energy_wh, quarters) if part > 0]
        assert [line.energy_wh for line in lines] == expected
        assert lines[0].quarter_start == booking.start
        assert all(line.is_final == (booking.status == "final") for line in lines)
        assert all(line.source_id == booking.source_id and line.tenant_id == booking.tenant_id for line in lines)
    final = Booking.objects.get(external_id="c")
    assert final.finalized_at is not None and final.kind == "manual"


def test_external_id_semantics(api, api_site):
    api.post(BULK, {"bookings": [quarter(0), quarter(1), quarter(2, status="final")]}, format="json")
    items = [
        quarter(0),
        {**quarter(1), "energy_wh": 999},
        {**quarter(2), "energy_wh": 1, "status": "final"},
        quarter(3),
    ]
    body = api.post(BULK, {"bookings": items}, format="json").json()
    assert (body["created"], body["replaced"], body["unchanged"]) == (1, 1, 1)
    assert body["rejected"] == [
        {"index": 2, "code": "BOOKING_FINAL", "detail": "Booking 'q2' is final; correct it with a reversal booking."}
    ]
    replaced = Booking.objects.get(external_id="q1")
    assert replaced.energy_wh == 999 and list(replaced.lines.values_list("energy_wh", flat=True)) == [999]
    assert Booking.objects.count() == 4


def test_duplicates_inside_one_request_behave_like_consecutive_requests(api, api_site):
    items = [quarter(0), quarter(0), {**quarter(0), "energy_wh": 5}, {**quarter(1), "status": "final"}, quarter(1)]
    body = api.post(BULK, {"bookings": items}, format="json").json()
    assert (body["created"], body["replaced"], body["unchanged"]) == (2, 1, 1)
    assert [(entry["index"], entry["code"]) for entry in body["rejected"]] == [(4, "BOOKING_FINAL")]
    assert Booking.objects.get(external_id="q0").energy_wh == 5
    assert Booking.objects.get(external_id="q1").status == "final"
    assert LedgerLine.objects.count() == 2


def test_closed_period_items_become_clarification_cases(api, api_site):
    api.post("/api/v1/balance-groups/APT-1/close", {"until": iso(T0 + dt.timedelta(minutes=30))}, format="json")
    items = [quarter(0), quarter(1), quarter(2), {**quarter(3), "external_id": None}]
    del items[3]["external_id"]
    body = api.post(BULK, {"bookings": items}, format="json").json()
    assert body["created"] == 2
    assert [(entry["index"], entry["code"]) for entry in body["rejected"]] == [
        (0, "PERIOD_CLOSED"),
        (1, "PERIOD_CLOSED"),
    ]
    cases = ClarificationCase.objects.order_by("payload__external_id")
    assert [case.payload["external_id"] for case in cases] == ["q0", "q1"]
    assert {case.channel for case in cases} == {"bulk"} and {case.reason for case in cases} == {"PERIOD_CLOSED"}


def test_unchanged_resend_into_a_closed_period_is_not_a_case(api, api_site):
    api.post(BULK, {"bookings": [quarter(0)]}, format="json")
    api.post("/api/v1/balance-groups/APT-1/close", {"until": iso(T0 + dt.timedelta(hours=1))}, format="json")
    body = api.post(BULK, {"bookings": [quarter(0), {**quarter(0), "energy_wh": 1}]}, format="json").json()
    assert body["unchanged"] == 1
    assert [(entry["index"], entry["code"]) for entry in body["rejected"]] == [(1, "PERIOD_CLOSED")]
    assert ClarificationCase.objects.count() == 1


def test_one_audit_entry_per_request(api, api_site):
    before = AuditEntry.objects.count()
    api.post(BULK, {"bookings": [quarter(n) for n in range(20)]}, format="json")
    entries = AuditEntry.objects.all()[: AuditEntry.objects.count() - before]
    assert AuditEntry.objects.count() - before == 1
    assert entries[0].action == "booking.bulk_ingest" and entries[0].data["created"] == 20


def test_dry_run_stores_nothing(api, api_site):
    api.post("/api/v1/balance-groups/APT-1/close", {"until": iso(T0 + dt.timedelta(minutes=15))}, format="json")
    audit_before = AuditEntry.objects.count()
    body = api.post(f"{BULK}?dry_run=true", {"bookings": [quarter(0), quarter(1)]}, format="json").json()
    assert body["created"] == 1 and body["rejected"][0]["code"] == "PERIOD_CLOSED"
    assert not Booking.objects.exists() and not ClarificationCase.objects.exists()
    assert AuditEntry.objects.count() == audit_before


@pytest.mark.parametrize("body", [[], {"bookings": "x"}, {"items": []}, {"bookings": [], "extra": 1}])
def test_body_shape_is_checked(api, api_site, body):
    response = api.post(BULK, body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "VALIDATION_ERROR"


def test_item_limit(api, api_site, monkeypatch):
    monkeypatch.setattr(bulk, "MAX_ITEMS", 3)
    response = api.post(BULK, {"bookings": [quarter(n) for n in range(4)]}, format="json")
    assert response.status_code == 400 and "At most 3" in response.json()["detail"]


def test_service_matches_single_booking_messages(tenant, api_site):
    from core.errors import BkmError
    from transactions.payloads import booking_fields_from_payload
    from transactions.services import booking_create

    odd = [
        booking_payload(energy_wh=True),
        booking_payload(name="x" * 201),
        booking_payload(start=T0.isoformat(), end="2026-03-02T00:00:00Z"),
        booking_payload(status=["final"]),
        booking_payload(source=["PV-ROOF"]),
        booking_payload(external_id=5),
    ]
    result = bookings_bulk_ingest(tenant=tenant, actor="system:test", items=odd)
    for entry, item in zip(result.rejected, odd, strict=True):
        with pytest.raises(BkmError) as raised:
            booking_create(tenant=tenant, actor="system:test", **booking_fields_from_payload(item))
        assert (entry["code"], entry["detail"]) == (raised.value.code, raised.value.detail)


def test_sqlite_and_postgres_paths_agree(tenant, api_site, monkeypatch):
    items = [
        booking_payload(external_id=f"x{n}", energy_wh=n + 1, end=iso(T0 + dt.timedelta(minutes=15 * (n % 5 + 1))))
        for n in range(12)
    ]
    with monkeypatch.context() as patch:
        patch.setattr(bulk, "is_postgres", lambda conn=None: False)  # the bulk_create path
        first = bookings_bulk_ingest(tenant=tenant, actor="system:test", items=items)
    lines_first = sorted(LedgerLine.objects.values_list("booking__external_id", "quarter_start", "energy_wh"))
    Booking.objects.all().delete()
    second = bookings_bulk_ingest(tenant=tenant, actor="system:test", items=items)  # COPY on PostgreSQL
    lines_second = sorted(LedgerLine.objects.values_list("booking__external_id", "quarter_start", "energy_wh"))
    assert first == second and first.created == 12
    assert lines_first == lines_second


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_posts_create_each_booking_once(api_site):
    from rest_framework.test import APIClient

    from balance_groups.services import api_client_create

    _client, key = api_client_create(tenant=api_site["pv"].tenant, name="gateway")
    items = [quarter(n) for n in range(300)]
    results, errors = [], []
    barrier = threading.Barrier(3)

    def post():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        try:
            barrier.wait()
            response = client.post(BULK, {"bookings": items}, format="json")
            results.append((response.status_code, response.json()))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [status for status, _ in results] == [200, 200, 200], results
    assert sorted(body["created"] for _, body in results) == [0, 0, 300]
    assert sorted(body["unchanged"] for _, body in results) == [0, 300, 300]
    assert Booking.objects.count() == 300
    assert LedgerLine.objects.count() == 300


def test_replacing_a_booking_in_a_closed_period_is_refused_and_kept(api, api_site):
    api.post(BULK, {"bookings": [quarter(0)]}, format="json")
    api.post("/api/v1/balance-groups/APT-1/close", {"until": iso(T0 + dt.timedelta(minutes=15))}, format="json")
    moved = {**quarter(0), "start": iso(T0 + dt.timedelta(hours=1)), "end": iso(T0 + dt.timedelta(hours=2))}
    body = api.post(BULK, {"bookings": [moved]}, format="json").json()
    assert [(entry["index"], entry["code"]) for entry in body["rejected"]] == [(0, "PERIOD_CLOSED")]
    assert Booking.objects.get(external_id="q0").start == T0
    assert ClarificationCase.objects.get().payload == moved


def test_bulk_query_count_does_not_grow_with_items(api, api_site, django_assert_max_num_queries):
    with django_assert_max_num_queries(40):
        api.post(BULK, {"bookings": [quarter(n) for n in range(5)]}, format="json")
    with django_assert_max_num_queries(40):
        api.post(BULK, {"bookings": [quarter(n) for n in range(5, 80)]}, format="json")  # same local day
    assert Booking.objects.count() == 80


def test_a_lost_insert_race_is_decided_again(tenant, api_site, monkeypatch):
    """If another request inserted the same external ids after we looked, the UNIQUE constraint
    refuses ours; the request is decided again and reports them unchanged."""
    items = [quarter(n) for n in range(3)]
    bookings_bulk_ingest(tenant=tenant, actor="system:test", items=items)
    real, calls = bulk._stored, []

    def stale_first_look(tenant, external_ids, *, lock=False):
        calls.append(lock)
        return {} if len(calls) == 1 else real(tenant, external_ids, lock=lock)

    monkeypatch.setattr(bulk, "_stored", stale_first_look)
    result = bookings_bulk_ingest(tenant=tenant, actor="system:test", items=items)
    assert (result.created, result.unchanged, result.rejected) == (0, 3, [])
    assert len(calls) == 2
    assert Booking.objects.count() == 3 and LedgerLine.objects.count() == 3
