"""Nothing is lost: refused input is kept as a clarification case with its original payload, and
resolving a case by rebooking produces exactly one booking (also when resolved twice at once)."""

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from balance_groups.services import group_close, group_update
from bkm.tests.reliability import figures
from core.errors import BkmError, Conflict, GroupNotValid, PeriodClosed
from core.testing import HOUR
from core.testing import SUMMER_MONDAY as T0
from transactions.bulk import bookings_bulk_ingest
from transactions.models import Booking, ClarificationCase, ClarificationReason, ClarificationStatus
from transactions.services import booking_create, clarification_resolve


def payload(**overrides) -> dict:
    item = {
        "external_id": "z-1",
        "source": "PV",
        "destination": "FLAT",
        "start": "2025-06-02T02:00:00+02:00",  # T0 in local time: offsets are kept as sent
        "end": "2025-06-02T01:00:00Z",
        "energy_wh": 1234,
        "name": "Zählerstand Ü",
    }
    item.update(overrides)
    return item


def _create(tenant, actor, item, channel="api"):
    from transactions.payloads import booking_fields_from_payload

    return booking_create(
        tenant=tenant, actor=actor, payload=item, channel=channel, **booking_fields_from_payload(item)
    )


@pytest.fixture
def groups(make_group):
    return {"PV": make_group("PV", "source", valid_from=T0), "FLAT": make_group("FLAT", "consumer", valid_from=T0)}


def test_closed_period_is_kept_with_the_original_payload(tenant, operator, groups):
    group_close(group=groups["FLAT"], actor=operator, until=T0 + HOUR)
    item = payload()
    with pytest.raises(PeriodClosed):
        _create(tenant, operator, item)
    case = ClarificationCase.objects.get(tenant=tenant)
    assert case.payload == item
    assert (case.reason, case.status, case.channel) == (ClarificationReason.PERIOD_CLOSED, "open", "api")
    assert case.created_by == "user:operator"
    assert not Booking.objects.filter(tenant=tenant).exists()
    figures.add("refusals_kept_as_cases")


def test_group_not_yet_valid_is_kept_and_rebooked_exactly_once(tenant, operator, groups):
    early = payload(start="2025-06-01T22:00:00Z", end="2025-06-01T23:00:00Z")
    with pytest.raises(GroupNotValid):
        _create(tenant, operator, early)
    case = ClarificationCase.objects.get(tenant=tenant)
    assert (case.reason, case.payload) == (ClarificationReason.GROUP_NOT_VALID, early)
    # Still not valid: rebooking fails and the case stays open (nothing half-done).
    with pytest.raises(GroupNotValid):
        clarification_resolve(case=case, actor=operator, action="rebook")
    case.refresh_from_db()
    assert case.status == ClarificationStatus.OPEN
    assert ClarificationCase.objects.filter(tenant=tenant).count() == 1
    for group in groups.values():
        group_update(group=group, actor=operator, valid_from=T0 - dt.timedelta(days=1))
    resolved = clarification_resolve(case=case, actor=operator, action="rebook", note="Zähler früher montiert")
    assert resolved.status == ClarificationStatus.REBOOKED
    booking = Booking.objects.get(tenant=tenant)
    assert (booking.external_id, booking.energy_wh, resolved.booking_id) == ("z-1", 1234, booking.pk)
    with pytest.raises(Conflict):
        clarification_resolve(case=case, actor=operator, action="rebook")
    assert Booking.objects.filter(tenant=tenant).count() == 1
    figures.add("refusals_kept_as_cases")


def test_bulk_refusals_are_cases_too_and_valid_items_are_stored(tenant, operator, groups):
    group_close(group=groups["PV"], actor=operator, until=T0 + HOUR)
    items = [
        payload(external_id="ok", start="2025-06-02T01:00:00Z", end="2025-06-02T02:00:00Z"),
        payload(external_id="closed"),
        payload(external_id=None, start="2025-06-01T00:00:00Z", end="2025-06-01T00:15:00Z"),
        payload(external_id="bad", energy_wh="12"),
    ]
    items[2].pop("external_id")
    result = bookings_bulk_ingest(tenant=tenant, actor=operator, items=items)
    assert result.created == 1
    assert [(r["index"], r["code"]) for r in result.rejected] == [
        (1, "PERIOD_CLOSED"),
        (2, "VALIDATION_ERROR"),
        (3, "VALIDATION_ERROR"),
    ]
    cases = {case.payload.get("external_id"): case for case in ClarificationCase.objects.filter(tenant=tenant)}
    assert set(cases) == {"closed", None}  # a malformed item is an error to the sender, not a case
    assert cases["closed"].payload == items[1] and cases["closed"].channel == "bulk"
    assert cases[None].reason == ClarificationReason.GROUP_NOT_VALID
    assert list(Booking.objects.filter(tenant=tenant).values_list("external_id", flat=True)) == ["ok"]
    figures.add("refusals_kept_as_cases", 2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_operators_resolving_one_case_at_once_make_one_booking(tenant, operator, groups):
    early = payload(external_id=None, start="2025-06-01T22:00:00Z", end="2025-06-01T23:00:00Z")
    early.pop("external_id")
    with pytest.raises(GroupNotValid):
        _create(tenant, operator, early)
    for group in groups.values():
        group_update(group=group, actor=operator, valid_from=T0 - dt.timedelta(days=1))
    case = ClarificationCase.objects.get(tenant=tenant)
    barrier = threading.Barrier(4)
    outcomes = []

    def resolve():
        try:
            barrier.wait()
            clarification_resolve(case=case, actor=operator, action="rebook")
            outcomes.append("rebooked")
        except BkmError as error:
            outcomes.append(error.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=resolve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    connection.close()
    assert sorted(outcomes) == ["CONFLICT", "CONFLICT", "CONFLICT", "rebooked"]
    assert Booking.objects.filter(tenant=tenant).count() == 1
    figures.add("concurrent_resolvers", 4)
