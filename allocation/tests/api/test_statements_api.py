"""Statements over the API: the documented shape, decimals as strings, and bad input refused."""

import datetime as dt
from decimal import Decimal

import pytest

from allocation.tests.test_statements import OCTOBER, PRICES
from balance_groups.factories import GroupFactory
from core.testing import T0
from settlement.services import rule_change

STATEMENTS = "/api/v1/statements/"


@pytest.fixture
def october(site, make_scheme, measure):
    make_scheme("dynamic", sources=[site.pv], prices=PRICES)
    measure(
        {site.pv: [1000, 0, 600, 333], site.apt1: [800, 500, 300, 1000], site.apt2: [400, 500, 300, 0]},
        start=OCTOBER,
        status="final",
    )
    return site


def test_a_statement_in_the_documented_shape(api, october):
    response = api.get(STATEMENTS, {"consumer": "APT-1", "month": "2026-10"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {
        "consumer",
        "month",
        "start",
        "end",
        "status",
        "consumption_wh",
        "local",
        "local_wh",
        "residual_wh",
        "local_share_percent",
        "provisional_quarter_hours",
        "missing_quarter_hours",
        "amounts",
        "up_to_date",
    } <= set(body)
    assert (body["consumer"], body["month"], body["start"], body["end"]) == (
        str(october.apt1.pk),
        "2026-10",
        "2026-09-30T22:00:00Z",
        "2026-10-31T23:00:00Z",
    )
    assert (body["consumption_wh"], body["local_wh"], body["residual_wh"]) == (2600, 1300, 1300)
    assert body["local"] == [
        {"source": str(october.pv.pk), "source_code": "PV", "source_name": october.pv.name, "energy_wh": 1300}
    ]
    assert body["local_share_percent"] == "50.0"
    assert body["amounts"] == {
        "local_eur": "0.36",
        "residual_eur": "0.51",
        "base_fee_eur": "9.90",
        "corrections_eur": "0.00",
        "total_eur": "10.77",
    }
    assert (body["status"], body["up_to_date"], body["missing_quarter_hours"]) == ("provisional", True, 2976)
    assert [line["amount_eur"] for line in body["lines"]] == ["0.36", "0.51", "9.90"]
    assert Decimal(body["lines"][0]["price"]) == PRICES["price_local_ct_per_kwh"]


def test_the_consumer_is_found_by_its_metering_point(api, october):
    october.apt2.metering_point = "DE0001234567890000000000000000009"
    october.apt2.save()
    response = api.get(STATEMENTS, {"consumer": october.apt2.metering_point, "month": "2026-10"})
    assert response.status_code == 200
    assert response.json()["consumption_wh"] == 1200


def test_every_consumer_of_a_site(api, october, operator):
    for group in (october.apt1, october.apt2, october.pv):
        rule_change(group=group, actor=operator, targets=[(october.grid, 10000)], effective_from=T0)
    response = api.get(f"{STATEMENTS}site", {"site": "GRID", "month": "2026-10"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["site_code"], body["month"], body["up_to_date"]) == ("GRID", "2026-10", True)
    assert [(s["consumer_code"], s["amounts"]["total_eur"]) for s in body["statements"]] == [
        ("APT-1", "10.77"),
        ("APT-2", "10.29"),
    ]


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"consumer": "APT-1"}, 400, "month"),
        ({"consumer": "APT-1", "month": "2026-13"}, 400, "month"),
        ({"month": "2026-10"}, 400, "consumer"),
        ({"consumer": "PV", "month": "2026-10"}, 400, "consumer"),
        ({"consumer": "NOPE", "month": "2026-10"}, 404, None),
    ],
)
def test_bad_questions_are_refused(api, october, query, status, field):
    response = api.get(STATEMENTS, query)
    assert response.status_code == status, response.json()
    body = response.json()
    assert body["code"] == ("VALIDATION_ERROR" if status == 400 else "NOT_FOUND")
    if field:
        assert field in body["errors"]


def test_a_consumer_in_no_scheme_is_not_found(api, october, tenant):
    GroupFactory(tenant=tenant, code="SHOP", kind="consumer")
    response = api.get(STATEMENTS, {"consumer": "SHOP", "month": "2026-10"})
    assert response.status_code == 404
    assert "no allocation scheme" in response.json()["detail"]


def test_another_tenants_consumer_is_not_found(api, october, other_tenant):
    GroupFactory(tenant=other_tenant, code="FOREIGN", kind="consumer", valid_from=T0 - dt.timedelta(days=1))
    assert api.get(STATEMENTS, {"consumer": "FOREIGN", "month": "2026-10"}).status_code == 404
