import datetime as dt

import pytest

from balance_groups.models import AuditEntry, BalanceGroup
from balance_groups.selectors import group_get
from balance_groups.services import group_close, group_create, group_delete, group_update
from core.errors import Conflict, InvalidInput, InvalidTimeAlignment, NotFound
from core.testing import T0, UTC, at
from transactions.services import booking_create


def test_group_create_stores_group_and_audits(tenant, operator):
    group = group_create(tenant=tenant, actor=operator, code="PV-ROOF", name="PV Dach", kind="source", valid_from=T0)
    assert group.tenant == tenant
    entry = AuditEntry.objects.get(object_id=str(group.pk))
    assert (entry.action, entry.actor) == ("group.create", "user:operator")


def test_group_code_is_unique_per_tenant_only(tenant, other_tenant, operator):
    group_create(tenant=tenant, actor=operator, code="PV", name="a", kind="source", valid_from=T0)
    with pytest.raises(InvalidInput) as error:
        group_create(tenant=tenant, actor=operator, code="PV", name="b", kind="source", valid_from=T0)
    assert "code" in error.value.errors
    group_create(tenant=other_tenant, actor=operator, code="PV", name="c", kind="source", valid_from=T0)
    assert BalanceGroup.objects.filter(code="PV").count() == 2


def test_group_valid_from_must_be_aligned_and_aware(tenant, operator):
    with pytest.raises(InvalidTimeAlignment):
        group_create(tenant=tenant, actor=operator, code="X", name="x", kind="balance", valid_from=at(0.1))
    with pytest.raises(InvalidInput):
        group_create(
            tenant=tenant, actor=operator, code="X", name="x", kind="balance", valid_from=dt.datetime(2026, 1, 1)
        )
    assert not BalanceGroup.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"), [("kind", "battery"), ("code", ""), ("code", "has space"), ("name", " "), ("name", "n" * 201)]
)
def test_group_create_rejects_bad_fields(tenant, operator, field, value):
    fields = {"code": "OK", "name": "ok", "kind": "balance"} | {field: value}
    with pytest.raises(InvalidInput) as error:
        group_create(tenant=tenant, actor=operator, valid_from=T0, **fields)
    assert field in error.value.errors


def test_group_get_by_id_or_code_never_across_tenants(tenant, other_tenant, make_group):
    mine = make_group("MINE")
    theirs = make_group("THEIRS", tenant=other_tenant)
    assert group_get(tenant=tenant, ref="MINE") == mine
    assert group_get(tenant=tenant, ref=str(mine.pk)) == mine
    for ref in (str(theirs.pk), "THEIRS", theirs):
        with pytest.raises(NotFound):
            group_get(tenant=tenant, ref=ref)


def test_close_until_refuses_new_entries_before_it(tenant, operator, make_group):
    source, sink = make_group("S", "source"), make_group("C", "consumer")
    group_close(group=sink, actor=operator, until=at(2))
    sink.refresh_from_db()
    assert sink.closed_until == at(2)
    with pytest.raises(InvalidInput):
        group_close(group=sink, actor=operator, until=at(1))
    with pytest.raises(InvalidTimeAlignment):
        group_close(group=sink, actor=operator, until=at(3.1))
    booking_create(tenant=tenant, actor=operator, source=source, destination=sink, start=at(2), end=at(3), energy_wh=5)


def test_closing_the_whole_group_ends_its_validity(tenant, operator, make_group):
    group = make_group("G", valid_until=at(24))
    group_close(group=group, actor=operator)
    group.refresh_from_db()
    assert group.closed_until == group.valid_until == at(24)


def test_closing_an_open_ended_group_refuses_when_later_bookings_exist(tenant, operator, make_group):
    source, sink = make_group("S", "source"), make_group("C", "consumer")
    future = dt.datetime(2099, 1, 1, tzinfo=UTC)
    booking_create(
        tenant=tenant,
        actor=operator,
        source=source,
        destination=sink,
        start=future,
        end=future + dt.timedelta(hours=1),
        energy_wh=5,
    )
    with pytest.raises(Conflict):
        group_close(group=sink, actor=operator)


def test_validity_change_may_not_cut_off_bookings(tenant, operator, make_group):
    source, sink = make_group("S", "source"), make_group("C", "consumer")
    booking_create(tenant=tenant, actor=operator, source=source, destination=sink, start=at(5), end=at(6), energy_wh=5)
    with pytest.raises(Conflict):
        group_update(group=sink, actor=operator, valid_until=at(5))
    updated = group_update(group=sink, actor=operator, valid_until=at(6), name="Renamed")
    assert (updated.valid_until, updated.name) == (at(6), "Renamed")


def test_delete_group_with_bookings_is_a_conflict(tenant, operator, make_group):
    source, sink, spare = make_group("S", "source"), make_group("C", "consumer"), make_group("SPARE")
    booking_create(tenant=tenant, actor=operator, source=source, destination=sink, start=at(0), end=at(1), energy_wh=5)
    with pytest.raises(Conflict):
        group_delete(group=sink, actor=operator)
    group_delete(group=spare, actor=operator)
    assert not BalanceGroup.objects.filter(code="SPARE").exists()
