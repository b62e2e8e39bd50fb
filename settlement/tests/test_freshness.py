"""Figures say whether they are up to date (API.md "Freshness"): read right after a write with a
broker, a balance is marked not up to date and never final; once recomputed it is both."""

import pytest
from django.urls import reverse

from settlement.selectors import group_balance
from settlement.services import settlement_dirty_process
from settlement.tests.conftest import at

pytestmark = pytest.mark.django_db


def test_a_balance_read_before_its_recomputation_says_so_and_is_not_final(site, book, broker_mode):
    book(site["GRID"], site["APT"], at(10), at(11), 400, status="final")  # marks the day, enqueues on commit

    stale = group_balance(group=site["APT"], start=at(10), end=at(11))
    assert stale["up_to_date"] is False
    assert stale["status"] == "provisional"  # a final booking, but the figure is not computed yet
    assert [row["status"] for row in stale["intervals"]] == ["provisional"] * 4

    settlement_dirty_process(tenant_id=site["APT"].tenant_id)
    fresh = group_balance(group=site["APT"], start=at(10), end=at(11))
    assert (fresh["up_to_date"], fresh["status"], fresh["inflow_wh"]) == (True, "final", 400)
    assert [row["line_count"] for row in fresh["intervals"]] == [1, 1, 1, 1]


def test_no_data_is_not_a_final_zero(site, book):
    balance = group_balance(group=site["APT"], start=at(10), end=at(10, 30))
    assert [(row["net_wh"], row["status"], row["line_count"]) for row in balance["intervals"]] == [
        (0, "final", 0),
        (0, "final", 0),
    ]
    book(site["GRID"], site["APT"], at(10), at(10, 15), 7, status="final")
    balance = group_balance(group=site["APT"], start=at(10), end=at(10, 30))
    assert [(row["net_wh"], row["line_count"]) for row in balance["intervals"]] == [(7, 1), (0, 0)]


def test_the_api_and_the_dashboard_show_the_same_freshness(site, book, broker_mode, client, operator):
    from rest_framework.test import APIClient

    from balance_groups.services import api_client_create

    book(site["GRID"], site["APT"], at(10), at(11), 400, status="final")
    _, key = api_client_create(tenant=site["APT"].tenant, name="reader")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    window = {"start": at(10).isoformat(), "end": at(11).isoformat()}
    balance = api.get(f"/api/v1/balance-groups/{site['APT'].pk}/balance", window).json()
    imbalances = api.get("/api/v1/imbalances/", {**window, "group": "APT"}).json()
    assert (balance["up_to_date"], balance["status"]) == (False, "provisional")
    assert imbalances["up_to_date"] is False
    client.force_login(operator)
    page = client.get(reverse("dashboard:group", args=[site["APT"].pk]), {"day": "2026-01-15"})
    assert 'data-testid="recomputing"' in page.content.decode()

    settlement_dirty_process(tenant_id=site["APT"].tenant_id)
    balance = api.get(f"/api/v1/balance-groups/{site['APT'].pk}/balance", window).json()
    imbalances = api.get("/api/v1/imbalances/", {**window, "group": "APT"}).json()
    assert (balance["up_to_date"], balance["status"]) == (True, "final")
    assert imbalances["up_to_date"] is True
    assert [row["status"] for row in imbalances["results"]] == ["final"] * 4
    page = client.get(reverse("dashboard:group", args=[site["APT"].pk]), {"day": "2026-01-15"})
    assert 'data-testid="recomputing"' not in page.content.decode()
