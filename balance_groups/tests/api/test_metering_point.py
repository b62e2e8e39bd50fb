"""A group's metering point (MaLo/MeLo): set, changed, cleared, unique per tenant, and a group reference."""

import pytest

from balance_groups import services
from balance_groups.models import AuditEntry, BalanceGroup
from core.testing import MONDAY as T0
from core.testing import iso
from transactions.models import Booking
from transactions.tests.api import booking_payload

GROUPS = "/api/v1/balance-groups/"
MELO = "DE0001234567890000000000000000001"
MALO = "51238696781"


def create(api, code="APT-9", **fields):
    body = {"code": code, "name": "Wohnung 9", "kind": "consumer", "valid_from": iso(T0), **fields}
    return api.post(GROUPS, body, format="json")


def refused(response, field: str) -> str:
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR" and field in body["errors"], body
    return body["errors"][field][0]


def test_create_with_a_metering_point_and_read_the_group_by_it(api, tenant):
    response = create(api, metering_point=f"  {MELO} ")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["metering_point"] == MELO
    assert api.get(f"{GROUPS}{MELO}/").json() == body
    assert [group["code"] for group in api.get(GROUPS, {"metering_point": MELO}).json()["results"]] == ["APT-9"]
    audit = AuditEntry.objects.get(action="group.create", object_id=body["id"])
    assert audit.data["metering_point"] == MELO


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_metering_point_is_null(api, tenant, value):
    response = create(api, metering_point=value)
    assert response.status_code == 201, response.json()
    assert response.json()["metering_point"] is None
    assert create(api, code="APT-10", metering_point=value).status_code == 201  # several groups without one


@pytest.mark.parametrize(
    "value",
    ["DE 0001", "DE-0001", "DE0001/2", "MeLo\u00e4", "x" * 65, "5123\t8696781", "\u0661\u0662\u0663"],
)
def test_only_letters_and_digits_up_to_64(api, tenant, value):
    refused(create(api, metering_point=value), "metering_point")
    assert not BalanceGroup.objects.exists()


def test_a_metering_point_is_unique_per_tenant(api, other_api, tenant):
    assert create(api, metering_point=MALO).status_code == 201
    assert "already" in refused(create(api, code="APT-10", metering_point=MALO), "metering_point")
    assert create(other_api, metering_point=MALO).status_code == 201  # another tenant's is its own


def test_a_metering_point_and_a_code_never_name_two_groups(api, tenant):
    assert create(api, code="WP").status_code == 201
    assert "code of another group" in refused(create(api, code="APT-10", metering_point="WP"), "metering_point")
    assert create(api, code="APT-12", metering_point=MALO).status_code == 201
    assert "metering point of another group" in refused(create(api, code=MALO), "code")
    assert "metering point of another group" in refused(
        api.patch(f"{GROUPS}WP/", {"code": MALO}, format="json"), "code"
    )
    own = api.patch(f"{GROUPS}APT-12/", {"code": MALO}, format="json")  # its own metering point: no ambiguity
    assert own.status_code == 200, own.json()
    assert api.get(f"{GROUPS}{MALO}/").json()["id"] == own.json()["id"]


def test_patch_sets_changes_and_clears_it(api, tenant):
    group_id = create(api).json()["id"]
    url = f"{GROUPS}{group_id}/"
    assert api.patch(url, {"metering_point": MALO}, format="json").json()["metering_point"] == MALO
    assert api.patch(url, {"name": "Umbenannt"}, format="json").json()["metering_point"] == MALO
    assert api.patch(url, {"metering_point": MELO}, format="json").json()["metering_point"] == MELO
    assert api.patch(url, {"metering_point": ""}, format="json").json()["metering_point"] is None
    assert api.patch(url, {"metering_point": MALO}, format="json").status_code == 200
    assert api.patch(url, {"metering_point": None}, format="json").json()["metering_point"] is None
    audit = AuditEntry.objects.filter(action="group.update", object_id=group_id).order_by("at").first()
    assert audit.data == {"before": {"metering_point": "None"}, "after": {"metering_point": MALO}}


def test_patch_to_a_taken_metering_point_is_refused(api, tenant):
    create(api, metering_point=MALO)
    create(api, code="APT-10")
    assert "already" in refused(
        api.patch(f"{GROUPS}APT-10/", {"metering_point": MALO}, format="json"), "metering_point"
    )
    assert BalanceGroup.objects.get(code="APT-10").metering_point is None


def test_a_race_past_the_check_is_still_a_400_naming_the_field(api, tenant, monkeypatch):
    """Two requests may both pass the check; the database constraint stops the second, answered as a 400."""
    create(api, metering_point=MALO)
    create(api, code="APT-10")
    check, calls = services._refuse_ambiguous_reference, []

    def late_check(*args, **kwargs):
        calls.append(kwargs)
        if len(calls) > 1:  # the first look missed the other writer
            check(*args, **kwargs)

    monkeypatch.setattr(services, "_refuse_ambiguous_reference", late_check)
    response = api.patch(f"{GROUPS}APT-10/", {"metering_point": MALO}, format="json")
    assert "already" in refused(response, "metering_point")
    calls.clear()
    response = create(api, code="APT-11", metering_point=MALO)
    assert "already" in refused(response, "metering_point")
    assert BalanceGroup.objects.filter(metering_point=MALO).count() == 1


def test_a_booking_references_groups_by_metering_point(api, api_site):
    api.patch(f"{GROUPS}APT-1/", {"metering_point": MELO}, format="json")
    api.patch(f"{GROUPS}PV-ROOF/", {"metering_point": MALO}, format="json")
    response = api.post("/api/v1/bookings/", booking_payload(source=MALO, destination=MELO), format="json")
    assert response.status_code == 201, response.json()
    booking = Booking.objects.get()
    assert (booking.source, booking.destination) == (api_site["pv"], api_site["apt"])
    assert [row["id"] for row in api.get("/api/v1/bookings/", {"group": MELO}).json()["results"]] == [str(booking.pk)]


def test_another_tenants_metering_point_is_not_found(api, other_api, api_site):
    api.patch(f"{GROUPS}APT-1/", {"metering_point": MELO}, format="json")
    response = other_api.get(f"{GROUPS}{MELO}/")
    assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
