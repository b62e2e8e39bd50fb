"""Every endpoint x owner / other tenant / anonymous / read-only client.

The other tenant has groups with the same codes: references always resolve within the caller's
tenant, and the owner's objects are 404 for it, exactly like objects that do not exist.
"""

import datetime as dt

import pytest

from balance_groups.services import group_close
from core.errors import PeriodClosed
from core.testing import MONDAY as T0
from core.testing import iso
from settlement.models import SettlementRun
from settlement.services import rule_change
from transactions.models import ClarificationCase
from transactions.services import booking_create
from transactions.tests.api import booking_payload

WINDOW = {"start": iso(T0), "end": iso(T0 + dt.timedelta(hours=2))}


@pytest.fixture
def world(api_site, tenant, other_tenant, make_group):
    for code, kind in (("HOUSE", "balance"), ("PV-ROOF", "source"), ("APT-1", "consumer")):
        make_group(code, kind, tenant=other_tenant)
    house = api_site["house"]
    rule = rule_change(group=api_site["pv"], actor="system:test", targets=[(house, 10000)], effective_from=T0)
    provisional = booking_create(tenant=tenant, actor="system:test", **_fields(external_id="p")).booking
    final = booking_create(tenant=tenant, actor="system:test", **_fields(external_id="f", status="final")).booking
    group_close(group=api_site["grid"], actor="system:test", until=T0 + dt.timedelta(days=1))
    with pytest.raises(PeriodClosed):  # refused, and kept as a clarification case
        booking_create(
            tenant=tenant,
            actor="system:test",
            payload=booking_payload(source="GRID-IMPORT"),
            channel="api",
            **_fields(source="GRID-IMPORT"),
        )
    run = SettlementRun.objects.create(tenant=tenant, start=T0, end=T0 + dt.timedelta(hours=2), requested_by="test")
    return {
        "group": api_site["apt"].pk,
        "rule": rule.pk,
        "booking": provisional.pk,
        "final": final.pk,
        "case": ClarificationCase.objects.get(tenant=tenant).pk,
        "run": run.pk,
    }


def _owner_ids(world) -> set[str]:
    from balance_groups.models import BalanceGroup

    tenant = BalanceGroup.objects.get(pk=world["group"]).tenant
    return {str(pk) for pk in BalanceGroup.objects.filter(tenant=tenant).values_list("pk", flat=True)} | {
        str(value) for value in world.values()
    }


def _fields(**overrides):
    fields = {
        "source": "PV-ROOF",
        "destination": "APT-1",
        "start": T0,
        "end": T0 + dt.timedelta(hours=1),
        "energy_wh": 400,
    }
    fields.update(overrides)
    return fields


# (name, method, path, body, owner status, other tenant status)
CASES = [
    ("groups.list", "get", "/api/v1/balance-groups/", None, 200, 200),
    (
        "groups.create",
        "post",
        "/api/v1/balance-groups/",
        {"code": "NEW", "name": "n", "kind": "balance", "valid_from": iso(T0)},
        201,
        201,
    ),
    ("groups.get", "get", "/api/v1/balance-groups/{group}/", None, 200, 404),
    ("groups.patch", "patch", "/api/v1/balance-groups/{group}/", {"name": "renamed"}, 200, 404),
    ("groups.delete", "delete", "/api/v1/balance-groups/HOUSE/", None, 409, 204),
    ("groups.close", "post", "/api/v1/balance-groups/{group}/close", {"until": iso(T0)}, 200, 404),
    (
        "groups.balance",
        "get",
        "/api/v1/balance-groups/{group}/balance?start=2026-03-02T00:00:00Z&end=2026-03-02T02:00:00Z",
        None,
        200,
        404,
    ),
    ("rules.list", "get", "/api/v1/settlement-rules/", None, 200, 200),
    (
        "rules.create",
        "post",
        "/api/v1/settlement-rules/",
        {"group": "APT-1", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": iso(T0)},
        201,
        201,
    ),
    ("rules.get", "get", "/api/v1/settlement-rules/{rule}/", None, 200, 404),
    ("bookings.list", "get", "/api/v1/bookings/", None, 200, 200),
    ("bookings.create", "post", "/api/v1/bookings/", booking_payload(external_id="new"), 201, 201),
    ("bookings.get", "get", "/api/v1/bookings/{booking}/", None, 200, 404),
    ("bookings.finalize", "post", "/api/v1/bookings/{booking}/finalize", None, 200, 404),
    ("bookings.reverse", "post", "/api/v1/bookings/{final}/reverse", None, 201, 404),
    ("bookings.bulk", "post", "/api/v1/bookings/bulk", {"bookings": [booking_payload(external_id="b1")]}, 200, 200),
    ("lines.list", "get", "/api/v1/ledger-lines/", None, 200, 200),
    ("imbalances.list", "get", "/api/v1/imbalances/", None, 200, 200),
    ("runs.list", "get", "/api/v1/settlement-runs/", None, 200, 200),
    ("runs.create", "post", "/api/v1/settlement-runs/", WINDOW, 202, 202),
    ("runs.get", "get", "/api/v1/settlement-runs/{run}/", None, 200, 404),
    ("clarifications.list", "get", "/api/v1/clarifications/", None, 200, 200),
    ("clarifications.get", "get", "/api/v1/clarifications/{case}/", None, 200, 404),
    (
        "clarifications.resolve",
        "post",
        "/api/v1/clarifications/{case}/resolve",
        {"action": "dismiss", "note": "n"},
        200,
        404,
    ),
]


def _call(client, method, path, body, world):
    return (
        getattr(client, method)(path.format(**world), body, format="json")
        if body is not None
        else getattr(client, method)(path.format(**world))
    )


@pytest.mark.parametrize(("name", "method", "path", "body", "owner", "other"), CASES, ids=[case[0] for case in CASES])
def test_owner(api, world, name, method, path, body, owner, other):
    response = _call(api, method, path, body, world)
    assert response.status_code == owner, response.json()


@pytest.mark.parametrize(("name", "method", "path", "body", "owner", "other"), CASES, ids=[case[0] for case in CASES])
def test_other_tenant(other_api, world, name, method, path, body, owner, other):
    response = _call(other_api, method, path, body, world)
    assert response.status_code == other, response.json()
    if other == 404:
        assert response.json()["code"] == "NOT_FOUND"
    if method == "get" and other == 200:
        # Nothing of the owner's leaks into lists; the other tenant sees its own groups only.
        listed = {str(item.get("id") or item.get("group")) for item in response.json()["results"]}
        assert not listed & _owner_ids(world)
        if name == "groups.list":
            assert {item["code"] for item in response.json()["results"]} == {"HOUSE", "PV-ROOF", "APT-1"}
        else:
            assert response.json()["results"] == []
    if name == "bookings.bulk":
        assert response.json()["created"] == 1  # resolved against its own PV-ROOF and APT-1


@pytest.mark.parametrize(("name", "method", "path", "body", "owner", "other"), CASES, ids=[case[0] for case in CASES])
def test_anonymous(anon, world, name, method, path, body, owner, other):
    response = _call(anon, method, path, body, world)
    assert response.status_code == 401 and response.json()["code"] == "NOT_AUTHENTICATED"


@pytest.mark.parametrize(("name", "method", "path", "body", "owner", "other"), CASES, ids=[case[0] for case in CASES])
def test_read_only(readonly_api, world, name, method, path, body, owner, other):
    response = _call(readonly_api, method, path, body, world)
    if method == "get":
        assert response.status_code == owner
    else:
        assert response.status_code == 403 and response.json()["code"] == "PERMISSION_DENIED"
