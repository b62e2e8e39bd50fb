"""Allocation schemes over the API: versions, validation per API.md, decimals, access and isolation."""

import datetime as dt

import pytest
from django.utils import timezone

from allocation.models import AllocationScheme
from core.quarters import QUARTER, floor_quarter, next_quarter_after
from core.testing import T0, iso

SCHEMES = "/api/v1/allocation-schemes/"


def scheme_body(**changes) -> dict:
    body = {
        "code": "HAUS",
        "name": "Mieterstrom Haus",
        "method": "dynamic",
        "sources": ["PV", "BAT"],
        "consumers": [{"group": "APT-1", "share": 6000}, {"group": "APT-2", "share": 4000}],
        "surplus_to": "GRID",
        "residual_from": "GRID",
        "effective_from": iso(T0),
    }
    body.update(changes)
    return body


def post(api, **changes):
    return api.post(SCHEMES, scheme_body(**changes), format="json")


def refused(response, field: str) -> list[str]:
    """The messages of a 400 VALIDATION_ERROR for ``field``."""
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR", body
    assert field in body["errors"], body
    return body["errors"][field]


def test_create_returns_the_version_in_the_documented_shape(api, site):
    response = post(
        api,
        method="static_redistributed",
        price_local_ct_per_kwh="21.5",
        price_residual_ct_per_kwh="32.1234",
        base_fee_eur_per_month="4.99",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body == {
        "id": body["id"],
        "code": "HAUS",
        "name": "Mieterstrom Haus",
        "sources": [str(site.pv.pk), str(site.battery.pk)],
        "consumers": [{"group": str(site.apt1.pk), "share": 6000}, {"group": str(site.apt2.pk), "share": 4000}],
        "method": "static_redistributed",
        "surplus_to": str(site.grid.pk),
        "residual_from": str(site.grid.pk),
        "effective_from": "2026-01-01T00:00:00Z",
        "effective_until": None,
        "price_local_ct_per_kwh": "21.5000",
        "price_residual_ct_per_kwh": "32.1234",
        "base_fee_eur_per_month": "4.99",
    }
    assert api.get(f"{SCHEMES}{body['id']}/").json() == body
    assert api.get(SCHEMES).json()["results"] == [body]


def test_groups_are_accepted_by_id_code_or_metering_point(api, site, make_group):
    make_group("APT-3", "consumer", metering_point="DE0001234567890000000000000000003")
    response = post(
        api,
        sources=[str(site.pv.pk)],
        consumers=[
            {"group": str(site.apt1.pk), "share": 5000},
            {"group": "DE0001234567890000000000000000003", "share": 5000},
        ],
        effective_from="2026-01-01T01:00:00+01:00",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    apt3 = AllocationScheme.objects.get().consumers.get(position=1).group
    assert body["consumers"][1] == {"group": str(apt3.pk), "share": 5000} and apt3.code == "APT-3"
    assert body["effective_from"] == "2026-01-01T00:00:00Z" and body["price_local_ct_per_kwh"] is None


def test_first_version_defaults_to_the_next_quarter_hour(api, site):
    before = next_quarter_after(timezone.now())
    body = scheme_body()
    del body["effective_from"]
    response = api.post(SCHEMES, body, format="json")
    assert response.status_code == 201, response.json()
    assert before <= dt.datetime.fromisoformat(response.json()["effective_from"]) <= before + QUARTER


def test_a_post_with_the_same_code_is_the_next_version(api, site):
    first = post(api).json()
    body = scheme_body(
        method="static", consumers=[{"group": "APT-1", "share": 5000}, {"group": "APT-2", "share": 5000}]
    )
    del body["effective_from"]
    before = next_quarter_after(timezone.now())
    second = api.post(SCHEMES, body, format="json")
    assert second.status_code == 201, second.json()
    second = second.json()
    assert second["code"] == "HAUS" and second["id"] != first["id"] and second["method"] == "static"
    assert dt.datetime.fromisoformat(second["effective_from"]) >= before
    assert api.get(f"{SCHEMES}{first['id']}/").json()["effective_until"] == second["effective_from"]
    assert [row["id"] for row in api.get(SCHEMES, {"code": "HAUS"}).json()["results"]] == [first["id"], second["id"]]


def test_a_later_version_in_the_past_is_400(api, site):
    post(api)
    past = floor_quarter(timezone.now()) - QUARTER
    messages = refused(post(api, effective_from=iso(past)), "effective_from")
    assert "never change retroactively" in messages[0]
    assert AllocationScheme.objects.count() == 1 and AllocationScheme.objects.get().effective_until is None


def test_a_first_version_before_its_groups_are_valid_is_400(api, site):
    messages = refused(post(api, effective_from=iso(T0 - QUARTER)), "effective_from")
    assert "2026-01-01" in messages[0]
    assert not AllocationScheme.objects.exists()


def test_misaligned_effective_from_is_an_alignment_error(api, site):
    response = post(api, effective_from="2026-01-01T00:07:00Z")
    assert response.status_code == 400 and response.json()["code"] == "INVALID_TIME_ALIGNMENT"


@pytest.mark.parametrize(
    "consumers",
    [
        [{"group": "APT-1", "share": 6000}, {"group": "APT-2", "share": 3000}],
        [{"group": "APT-1", "share": 6000}, {"group": "APT-2", "share": 5000}],
        [{"group": "APT-1", "share": 10000}, {"group": "APT-2", "share": 0}, {"group": "APT-2", "share": 0}],
    ],
)
def test_shares_must_sum_to_10000_over_distinct_consumers(api, site, consumers):
    refused(post(api, consumers=consumers), "consumers")
    assert not AllocationScheme.objects.exists()


def test_a_source_not_of_kind_source_is_400(api, site):
    messages = refused(post(api, sources=["PV", "APT-1"]), "sources")
    assert messages == ["APT-1 is not a source; only groups of kind source can be sources."]


def test_a_consumer_not_of_kind_consumer_is_400(api, site):
    consumers = [{"group": "APT-1", "share": 5000}, {"group": "GRID", "share": 5000}]
    assert refused(post(api, consumers=consumers), "consumers") == [
        "GRID is not a consumer; only groups of kind consumer can be consumers."
    ]


def test_surplus_and_residual_must_be_outside_the_scheme(api, site):
    refused(post(api, surplus_to="APT-1"), "surplus_to")
    refused(post(api, residual_from="PV"), "residual_from")


def test_a_consumer_in_two_schemes_at_once_is_400(api, site, make_group):
    make_group("PV-2", "source")
    assert post(api).status_code == 201
    other = {"code": "NACHBAR", "sources": ["PV-2"], "consumers": [{"group": "APT-2", "share": 10000}]}
    messages = refused(post(api, **other), "consumers")
    assert messages == ["Already in another scheme at that time: APT-2 (in HAUS)."]
    later = scheme_body(**other)
    del later["effective_from"]
    refused(api.post(SCHEMES, later, format="json"), "consumers")  # HAUS is open-ended
    assert AllocationScheme.objects.filter(code="NACHBAR").count() == 0


def test_a_source_in_two_schemes_at_once_is_400(api, site, make_group):
    make_group("APT-9", "consumer")
    assert post(api).status_code == 201
    other = {"code": "NACHBAR", "sources": ["BAT"], "consumers": [{"group": "APT-9", "share": 10000}]}
    assert refused(post(api, **other), "sources") == ["Already in another scheme at that time: BAT (in HAUS)."]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"method": "proportional"}, "method"),
        ({"sources": []}, "sources"),
        ({"consumers": []}, "consumers"),
        ({"code": "   "}, "code"),
        ({"name": ""}, "name"),
        ({"sources": ["PV", "PV"]}, "sources"),
        ({"sources": "PV"}, "sources"),
        ({"sources": [7]}, "sources.0"),
        ({"surplus_to": None}, "surplus_to"),
        ({"consumers": [{"group": "APT-1", "share": "10000"}]}, "consumers.0.share"),
        ({"consumers": [{"group": "APT-1", "share": 10000.0}]}, "consumers.0.share"),
        ({"consumers": [{"group": "APT-1", "share": True}]}, "consumers.0.share"),
        ({"consumers": [{"group": "APT-1", "share": 10001}]}, "consumers"),
        ({"consumers": [{"group": "APT-1"}]}, "consumers.0.share"),
    ],
)
def test_malformed_fields_are_400_with_the_field(api, site, changes, field):
    refused(post(api, **changes), field)
    assert not AllocationScheme.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"tenant": "nachbar"}, "tenant", "Unknown field."),
        ({"id": "00000000-0000-0000-0000-000000000001"}, "id", "This field is read-only."),
        ({"effective_until": "2027-01-01T00:00:00Z"}, "effective_until", "This field is read-only."),
        ({"consumers": [{"group": "APT-1", "share": 10000, "position": 0}]}, "consumers.0.position", "Unknown field."),
    ],
)
def test_unknown_and_read_only_fields_are_refused(api, site, changes, field, message):
    assert refused(post(api, **changes), field) == [message]
    assert not AllocationScheme.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_local_ct_per_kwh", 21.5),  # a JSON number: not exact, refused
        ("price_local_ct_per_kwh", 21),
        ("price_local_ct_per_kwh", "21.12345"),  # five places: refused, never rounded
        ("price_residual_ct_per_kwh", "-0.5"),
        ("price_residual_ct_per_kwh", "1e3"),
        ("price_residual_ct_per_kwh", " 1.5"),
        ("price_residual_ct_per_kwh", "NaN"),
        ("price_residual_ct_per_kwh", "100000000"),
        ("price_residual_ct_per_kwh", "1" * 40),
        ("base_fee_eur_per_month", "4.999"),
        ("base_fee_eur_per_month", ""),
    ],
)
def test_decimals_are_strings_taken_exactly(api, site, field, value):
    refused(post(api, **{field: value}), field)
    assert not AllocationScheme.objects.exists()


def test_decimals_at_their_limits_are_stored_exactly(api, site):
    body = post(
        api,
        price_local_ct_per_kwh="99999999.9999",
        price_residual_ct_per_kwh="0.0001",
        base_fee_eur_per_month="12.50",
    ).json()
    assert body["price_local_ct_per_kwh"] == "99999999.9999"
    assert body["price_residual_ct_per_kwh"] == "0.0001"
    assert body["base_fee_eur_per_month"] == "12.50"


def test_list_filters(api, site, make_group):
    make_group("PV-2", "source")
    make_group("APT-9", "consumer")
    haus = post(api).json()
    nachbar = post(
        api, code="NACHBAR", sources=["PV-2"], consumers=[{"group": "APT-9", "share": 10000}], effective_from=iso(T0)
    ).json()
    body = scheme_body()
    del body["effective_from"]
    haus_next = api.post(SCHEMES, body, format="json").json()

    def ids(**params):
        response = api.get(SCHEMES, params)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [haus["id"], haus_next["id"], nachbar["id"]]
    assert ids(code="NACHBAR") == [nachbar["id"]]
    assert ids(at=iso(T0 + dt.timedelta(days=1))) == [haus["id"], nachbar["id"]]
    assert ids(at=haus_next["effective_from"]) == [haus_next["id"], nachbar["id"]]
    assert ids(at=iso(T0 - QUARTER)) == []
    assert ids(consumer="APT-9") == [nachbar["id"]]
    assert ids(consumer=str(site.apt1.pk)) == [haus["id"], haus_next["id"]]
    assert ids(source="BAT") == [haus["id"], haus_next["id"]]
    assert ids(source="NOPE") == []
    assert refused(api.get(SCHEMES, {"at": "2026-01-01T00:00:00"}), "at")  # naive: never guessed


def test_a_read_only_client_reads_but_cannot_create(api, readonly_api, site):
    created = post(api).json()
    response = post(readonly_api, code="OTHER")
    assert response.status_code == 403 and response.json()["code"] == "PERMISSION_DENIED"
    assert readonly_api.get(f"{SCHEMES}{created['id']}/").status_code == 200
    assert AllocationScheme.objects.count() == 1


def test_anonymous_requests_are_401(anon, site):
    assert anon.get(SCHEMES).status_code == 401
    assert anon.post(SCHEMES, scheme_body(), format="json").status_code == 401


def test_another_tenants_scheme_is_not_found(api, other_api, site):
    created = post(api).json()
    for path in (f"{SCHEMES}{created['id']}/", f"{SCHEMES}{created['id']}/allocation"):
        response = other_api.get(path, {"start": iso(T0), "end": iso(T0 + QUARTER)})
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    assert other_api.get(SCHEMES).json()["results"] == []
    assert other_api.get(SCHEMES, {"code": "HAUS"}).json()["results"] == []
    assert api.get(f"{SCHEMES}not-a-uuid/").status_code == 404


def test_a_group_of_another_tenant_in_the_body_is_refused_like_an_unknown_one(api, site, other_tenant, make_group):
    make_group("FREMD-PV", "source", tenant=other_tenant)
    theirs = make_group("FREMD-APT", "consumer", tenant=other_tenant)
    foreign = refused(post(api, sources=["PV", "FREMD-PV"]), "sources.1")
    unknown = refused(post(api, sources=["PV", "NOPE-PV"]), "sources.1")
    assert foreign == ["Balance group 'FREMD-PV' not found."] and unknown == ["Balance group 'NOPE-PV' not found."]
    consumers = [{"group": "APT-1", "share": 5000}, {"group": str(theirs.pk), "share": 5000}]
    assert refused(post(api, consumers=consumers), "consumers.1.group") == [f"Balance group '{theirs.pk}' not found."]
    refused(post(api, residual_from="FREMD-APT"), "residual_from")
    assert not AllocationScheme.objects.exists()
