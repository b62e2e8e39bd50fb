"""Settlement rules: versions, first rule at valid_from, no retroactive change, no cycles."""

import datetime as dt

from django.utils import timezone

from core.quarters import next_quarter_after
from core.testing import MONDAY as T0
from core.testing import iso
from settlement.models import SettlementRule

RULES = "/api/v1/settlement-rules/"


def test_first_rule_may_start_at_valid_from(api, api_site):
    response = api.post(
        RULES,
        {
            "group": "PV-ROOF",
            "targets": [{"parent": "HOUSE", "share": 10000}],
            "interval": "1h",
            "effective_from": iso(T0),
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["group"] == str(api_site["pv"].pk)
    assert body["targets"] == [{"parent": str(api_site["house"].pk), "share": 10000}]
    assert body["interval"] == "1h" and body["effective_from"] == iso(T0) and body["effective_until"] is None
    assert api.get(f"{RULES}{body['id']}/").json() == body


def test_later_version_defaults_to_next_quarter_and_ends_the_previous(api, api_site):
    first = api.post(
        RULES,
        {"group": "PV-ROOF", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": iso(T0)},
        format="json",
    ).json()
    before = next_quarter_after(timezone.now())
    second = api.post(RULES, {"group": "PV-ROOF", "targets": [{"parent": "HOUSE", "share": 10000}]}, format="json")
    assert second.status_code == 201, second.json()
    starts = dt.datetime.fromisoformat(second.json()["effective_from"])
    assert starts >= before
    assert api.get(f"{RULES}{first['id']}/").json()["effective_until"] == second.json()["effective_from"]
    assert SettlementRule.objects.filter(group=api_site["pv"]).count() == 2


def test_retroactive_change_is_400(api, api_site):
    api.post(
        RULES,
        {"group": "PV-ROOF", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": iso(T0)},
        format="json",
    )
    response = api.post(
        RULES,
        {
            "group": "PV-ROOF",
            "targets": [{"parent": "HOUSE", "share": 10000}],
            "effective_from": iso(T0 + dt.timedelta(days=1)),
        },
        format="json",
    )
    assert response.status_code == 400 and "effective_from" in response.json()["errors"]


def test_shares_must_sum_to_10000(api, api_site, make_group):
    make_group("HOUSE-2", "balance")
    response = api.post(
        RULES,
        {"group": "PV-ROOF", "targets": [{"parent": "HOUSE", "share": 6000}, {"parent": "HOUSE-2", "share": 3000}]},
        format="json",
    )
    assert response.status_code == 400 and "targets" in response.json()["errors"]


def test_cycle_is_400(api, api_site, make_group):
    make_group("TOP", "balance")
    ok = api.post(
        RULES,
        {"group": "HOUSE", "targets": [{"parent": "TOP", "share": 10000}], "effective_from": iso(T0)},
        format="json",
    )
    assert ok.status_code == 201
    cycle = api.post(
        RULES,
        {"group": "TOP", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": iso(T0)},
        format="json",
    )
    assert cycle.status_code == 400 and "cycle" in cycle.json()["detail"]


def test_unknown_target_is_400_and_list_filters(api, api_site, other_tenant, make_group):
    response = api.post(RULES, {"group": "PV-ROOF", "targets": [{"parent": "NOPE", "share": 10000}]}, format="json")
    assert response.status_code == 400 and "targets.0.parent" in response.json()["errors"]
    api.post(
        RULES,
        {"group": "PV-ROOF", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": iso(T0)},
        format="json",
    )
    api.post(
        RULES,
        {"group": "APT-1", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": iso(T0)},
        format="json",
    )
    assert len(api.get(RULES).json()["results"]) == 2
    assert len(api.get(RULES, {"group": "APT-1"}).json()["results"]) == 1
    assert len(api.get(RULES, {"at": iso(T0 - dt.timedelta(days=1))}).json()["results"]) == 0
