"""Balance groups: create, read by id or code, change, close, delete, balance."""

import datetime as dt

from balance_groups.models import AuditEntry, BalanceGroup
from core.testing import MONDAY as T0
from core.testing import iso
from transactions.tests.api import booking_payload

GROUPS = "/api/v1/balance-groups/"


def test_create_group_returns_it_in_utc(api, tenant):
    response = api.post(
        GROUPS,
        {"code": "PV-ROOF", "name": "PV roof", "kind": "source", "valid_from": "2026-03-29T00:00:00+01:00"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["code"] == "PV-ROOF" and body["kind"] == "source"
    assert body["valid_from"] == "2026-03-28T23:00:00Z"
    assert body["valid_until"] is None and body["closed_until"] is None
    assert body["status"] == "final" and body["parent"] is None
    group = BalanceGroup.objects.get(pk=body["id"])
    assert group.tenant == tenant
    assert AuditEntry.objects.filter(action="group.create", object_id=str(group.pk), api_client__isnull=False).exists()


def test_naive_instant_is_refused(api, tenant):
    response = api.post(
        GROUPS, {"code": "A", "name": "A", "kind": "balance", "valid_from": "2026-03-29T00:00:00"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert "offset" in response.json()["errors"]["valid_from"][0]


def test_misaligned_instant_is_refused_not_rounded(api, tenant):
    response = api.post(
        GROUPS, {"code": "A", "name": "A", "kind": "balance", "valid_from": "2026-03-29T00:07:00Z"}, format="json"
    )
    assert response.status_code == 400
    assert "quarter-hour" in response.json()["errors"]["valid_from"][0]
    assert not BalanceGroup.objects.filter(code="A").exists()


def test_duplicate_code_is_400(api, api_site):
    response = api.post(
        GROUPS, {"code": "PV-ROOF", "name": "again", "kind": "source", "valid_from": iso(T0)}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "VALIDATION_ERROR" and "code" in response.json()["errors"]


def test_get_by_id_or_code(api, api_site):
    by_code = api.get(f"{GROUPS}PV-ROOF/")
    assert by_code.status_code == 200
    by_id = api.get(f"{GROUPS}{api_site['pv'].pk}/")
    assert by_id.json() == by_code.json()


def test_list_filters(api, api_site):
    kinds = api.get(GROUPS, {"kind": "source"}).json()["results"]
    assert {group["code"] for group in kinds} == {"PV-ROOF", "GRID-IMPORT"}
    assert api.get(GROUPS, {"kind": "planet"}).status_code == 400


def test_patch_changes_name_and_validity(api, api_site):
    response = api.patch(
        f"{GROUPS}APT-1/", {"name": "Apartment 1", "valid_until": "2027-01-01T00:00:00Z"}, format="json"
    )
    assert response.status_code == 200, response.json()
    api_site["apt"].refresh_from_db()
    assert api_site["apt"].name == "Apartment 1"
    assert response.json()["valid_until"] == "2027-01-01T00:00:00Z"


def test_patch_kind_is_refused(api, api_site):
    response = api.patch(f"{GROUPS}APT-1/", {"kind": "source"}, format="json")
    assert response.status_code == 400
    api_site["apt"].refresh_from_db()
    assert api_site["apt"].kind == "consumer"


def test_close_until_and_whole_group(api, api_site):
    until = iso(T0 + dt.timedelta(days=1))
    response = api.post(f"{GROUPS}APT-1/close", {"until": until}, format="json")
    assert response.status_code == 200
    assert response.json()["closed_until"] == until
    misaligned = api.post(f"{GROUPS}APT-1/close", {"until": "2026-03-05T00:01:00Z"}, format="json")
    assert misaligned.status_code == 400 and misaligned.json()["code"] == "INVALID_TIME_ALIGNMENT"
    whole = api.post(f"{GROUPS}GRID-IMPORT/close", {}, format="json")
    assert whole.status_code == 200
    body = whole.json()
    assert body["valid_until"] is not None and body["closed_until"] == body["valid_until"]


def test_delete_without_bookings_then_with_bookings(api, api_site):
    assert api.delete(f"{GROUPS}HOUSE/").status_code == 204
    assert not BalanceGroup.objects.filter(code="HOUSE").exists()
    assert api.post("/api/v1/bookings/", booking_payload(), format="json").status_code == 201
    response = api.delete(f"{GROUPS}PV-ROOF/")
    assert response.status_code == 409 and response.json()["code"] == "CONFLICT"


def test_status_follows_bookings(api, api_site):
    booking = api.post("/api/v1/bookings/", booking_payload(), format="json").json()
    assert api.get(f"{GROUPS}PV-ROOF/").json()["status"] == "provisional"
    assert api.get(f"{GROUPS}HOUSE/").json()["status"] == "final"
    api.post(f"/api/v1/bookings/{booking['id']}/finalize")
    assert api.get(f"{GROUPS}PV-ROOF/").json()["status"] == "final"


def test_parent_comes_from_the_rule_in_force(api, api_site):
    rule = {"group": "PV-ROOF", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": iso(T0)}
    assert api.post("/api/v1/settlement-rules/", rule, format="json").status_code == 201
    assert api.get(f"{GROUPS}PV-ROOF/").json()["parent"] == str(api_site["house"].pk)
    listed = {group["code"]: group["parent"] for group in api.get(GROUPS).json()["results"]}
    assert listed["PV-ROOF"] == str(api_site["house"].pk) and listed["APT-1"] is None


def test_balance_zero_filled_and_exact(api, api_site):
    api.post("/api/v1/bookings/", booking_payload(energy_wh=1001), format="json")  # PV -> APT over 1 h
    response = api.get(
        f"{GROUPS}APT-1/balance", {"start": iso(T0 - dt.timedelta(hours=1)), "end": iso(T0 + dt.timedelta(hours=2))}
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["group"] == str(api_site["apt"].pk)
    assert body["inflow_wh"] == 1001 and body["outflow_wh"] == 0 and body["net_wh"] == 1001
    assert body["status"] == "provisional"
    assert len(body["intervals"]) == 12
    assert [interval["inflow_wh"] for interval in body["intervals"][4:8]] == [251, 250, 250, 250]
    assert all(interval["net_wh"] == 0 for interval in body["intervals"][:4] + body["intervals"][8:])
    hourly = api.get(
        f"{GROUPS}PV-ROOF/balance",
        {"start": iso(T0), "end": iso(T0 + dt.timedelta(hours=2)), "resolution": "1h"},
    ).json()
    assert [interval["net_wh"] for interval in hourly["intervals"]] == [-1001, 0]


def test_balance_day_resolution_on_dst_day(api, api_site):
    # 2026-03-29 is the spring change in Europe/Berlin: a local day of 92 quarter-hours.
    response = api.get(
        f"{GROUPS}APT-1/balance",
        {"start": "2026-03-29T00:00:00+01:00", "end": "2026-03-30T00:00:00+02:00", "resolution": "15min"},
    )
    assert len(response.json()["intervals"]) == 92
    daily = api.get(
        f"{GROUPS}APT-1/balance",
        {"start": "2026-03-29T00:00:00+01:00", "end": "2026-03-30T00:00:00+02:00", "resolution": "1d"},
    ).json()
    assert len(daily["intervals"]) == 1
    assert daily["intervals"][0]["start"] == "2026-03-28T23:00:00Z"
    assert daily["intervals"][0]["end"] == "2026-03-29T22:00:00Z"


def test_balance_needs_a_valid_window(api, api_site):
    assert api.get(f"{GROUPS}APT-1/balance").status_code == 400
    reversed_window = api.get(f"{GROUPS}APT-1/balance", {"start": iso(T0), "end": iso(T0)})
    assert reversed_window.status_code == 400
    too_long = api.get(f"{GROUPS}APT-1/balance", {"start": iso(T0), "end": "2030-01-01T00:00:00Z"})
    assert too_long.status_code == 400 and too_long.json()["code"] == "VALIDATION_ERROR"
    naive = api.get(f"{GROUPS}APT-1/balance", {"start": "2026-03-02T00:00:00", "end": iso(T0)})
    assert naive.status_code == 400


def test_unknown_group_is_404(api, api_site):
    assert api.get(f"{GROUPS}NOPE/").status_code == 404
    assert (
        api.get(f"{GROUPS}NOPE/balance", {"start": iso(T0), "end": iso(T0 + dt.timedelta(hours=1))}).status_code == 404
    )


def test_group_list_queries_do_not_grow_with_groups(api, api_site, make_group, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        api.get(GROUPS)
    for n in range(30):
        make_group(f"EXTRA-{n}", "consumer")
    with django_assert_max_num_queries(12):
        assert len(api.get(GROUPS).json()["results"]) == 34
