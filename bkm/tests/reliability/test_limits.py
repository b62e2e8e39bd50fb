"""Bounded input: the supported time range and window length, strict JSON, a database that is away,
and pages that no stored value can break (issue findings, each with its exact input)."""

import datetime as dt
import json

import pytest
from django.db import OperationalError
from django.urls import reverse

from balance_groups.factories import GroupFactory
from balance_groups.models import BalanceGroup
from bkm.tests.reliability import figures
from core.testing import MONDAY as T0
from core.testing import iso
from settlement.models import SettlementRun
from transactions.models import Booking
from transactions.tests.api import booking_payload

pytestmark = pytest.mark.django_db

BOOKINGS = "/api/v1/bookings/"
GROUPS = "/api/v1/balance-groups/"
LIMIT = "between 2000-01-01 and 2100-01-01 (UTC)"


def _refused(response, field: str, text: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert text in " ".join(body["errors"][field]), body
    figures.add("bad_inputs")


def test_a_ten_year_booking_is_refused_before_anything_is_written(api, api_site):
    payload = booking_payload(start="2026-12-02T00:00:00Z", end="2036-12-02T00:00:00Z", energy_wh=10**15)
    _refused(api.post(BOOKINGS, payload, format="json"), "end", "at most 400 days after the start")
    assert not Booking.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("end", "9999-12-31T23:45:00Z"), ("start", "1999-12-31T23:00:00Z"), ("end", "2100-01-01T00:15:00Z")],
)
def test_instants_outside_the_supported_range_are_refused(api, api_site, field, value):
    _refused(api.post(BOOKINGS, booking_payload(**{field: value}), format="json"), field, LIMIT)
    assert not Booking.objects.exists()


def test_a_bulk_item_outside_the_range_is_refused_alone(api, api_site):
    items = [booking_payload(external_id="ok"), booking_payload(external_id="far", end="2150-01-01T00:00:00Z")]
    body = api.post(f"{BOOKINGS}bulk", {"bookings": items}, format="json").json()
    assert body["created"] == 1
    assert [(entry["index"], entry["code"]) for entry in body["rejected"]] == [(1, "VALIDATION_ERROR")]
    assert LIMIT in body["rejected"][0]["detail"]


def test_closing_at_the_end_of_time_is_refused(api, api_site):
    response = api.post(f"{GROUPS}APT-1/close", {"until": "9999-12-31T23:45:00Z"}, format="json")
    _refused(response, "until", LIMIT)
    assert BalanceGroup.objects.get(code="APT-1").closed_until is None


def test_a_group_valid_from_year_9999_is_refused(api):
    group = {"code": "FAR", "name": "Far", "kind": "consumer", "valid_from": "9999-12-31T23:45:00Z"}
    _refused(api.post(GROUPS, group, format="json"), "valid_from", LIMIT)


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00Z", "9999-01-01T00:00:00Z"])
def test_a_run_outside_the_range_is_refused_and_not_recorded(api, api_site, start):
    response = api.post("/api/v1/settlement-runs/", {"start": start, "end": iso(T0)}, format="json")
    assert response.status_code == 400, response.content
    assert not SettlementRun.objects.exists()


def test_duplicate_json_keys_are_refused_naming_them(api, api_site):
    body = '{"source": "PV-ROOF", "destination": "APT-1", "start": "%s", "end": "%s", "energy_wh": 1, "energy_wh": 9}'
    response = api.generic(
        "POST", BOOKINGS, body % (iso(T0), iso(T0 + dt.timedelta(hours=1))), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "PARSE_ERROR"
    assert "duplicate key(s) 'energy_wh'" in response.json()["detail"]
    assert not Booking.objects.exists()


@pytest.mark.parametrize("field", ["id", "kind", "lines"])
def test_read_only_booking_fields_are_refused_not_ignored(api, api_site, field):
    response = api.post(BOOKINGS, {**booking_payload(), field: "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {field: ["This field is read-only."]}
    assert not Booking.objects.exists()


def test_read_only_group_fields_are_refused_not_ignored(api):
    group = {"code": "NEW", "name": "New", "kind": "consumer", "valid_from": iso(T0), "status": "final"}
    response = api.post(GROUPS, group, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"status": ["This field is read-only."]}
    assert not BalanceGroup.objects.filter(code="NEW").exists()


def test_a_database_that_is_away_answers_503_with_retry_after(api, api_site, monkeypatch):
    def away(**kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr("transactions.api.booking_create", away)
    response = api.post(BOOKINGS, booking_payload(), format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2100-01-01"])
@pytest.mark.parametrize("page", ["dashboard:overview", "dashboard:imbalances"])
def test_a_day_outside_the_range_is_a_400_page_that_says_so(client, operator, page, day):
    client.force_login(operator)
    response = client.get(reverse(page), {"day": day})
    assert response.status_code == 400
    assert "can be shown" in response.content.decode()


def test_a_stored_instant_at_the_edge_of_time_still_renders(client, operator, tenant, admin_client):
    """A database may already hold values the API now refuses: every dashboard page and every admin
    list and form still renders them (never an OverflowError while formatting a local time)."""
    from django.contrib import admin
    from django.utils import timezone

    from settlement.models import SettlementRule
    from transactions.models import ClarificationCase

    edge = dt.datetime(9999, 12, 31, 23, 45, tzinfo=dt.UTC)
    dawn = dt.datetime(1, 1, 1, 0, 0, tzinfo=dt.UTC)
    group = GroupFactory(
        tenant=tenant, code="EDGE", kind="consumer", valid_from=dawn, valid_until=edge, closed_until=edge
    )
    SettlementRun.objects.create(tenant=tenant, start=edge - dt.timedelta(hours=1), end=edge)
    SettlementRule.objects.create(tenant=tenant, group=group, effective_from=dawn, takes_effect_at=dawn)
    ClarificationCase.objects.create(
        tenant=tenant, reason="PERIOD_CLOSED", detail="edge", payload={"start": "9999-12-31T23:45:00Z"}
    )
    client.force_login(operator)
    today = timezone.now().date().isoformat()
    pages = [
        reverse("dashboard:overview"),
        reverse("dashboard:group", args=[group.pk]),
        reverse("dashboard:group", args=[group.pk]) + "?span=week",
        reverse("dashboard:group-edit", args=[group.pk]),
        reverse("dashboard:group-close", args=[group.pk]),
        reverse("dashboard:rule-edit", args=[group.pk]),
        reverse("dashboard:group-csv", args=[group.pk]) + f"?from={today}",
        reverse("dashboard:imbalances"),
        reverse("dashboard:clarifications"),
        reverse("dashboard:runs"),
        reverse("dashboard:csv-upload"),
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url
        figures.add("access_checks")
    assert "9999-12-31 23:45Z" in client.get(reverse("dashboard:runs")).content.decode()
    for model in admin.site._registry:
        changelist = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert admin_client.get(changelist).status_code == 200, changelist
    change = reverse("admin:balance_groups_balancegroup_change", args=[group.pk])
    assert admin_client.get(change).status_code == 200


# -- text hygiene (core.text): no NUL, no lone surrogate, no control character -------------------


def _raw_post(api, url: str, body: str):
    return api.generic("POST", url, body, content_type="application/json")


@pytest.mark.parametrize("field", ["name", "external_id"])
def test_a_lone_surrogate_is_a_400_not_a_500(api, api_site, field):
    body = '{"source": "PV-ROOF", "destination": "APT-1", "start": "%s", "end": "%s", "energy_wh": 5, "%s": "a\\ud800"}'
    response = _raw_post(api, BOOKINGS, body % (iso(T0), iso(T0 + dt.timedelta(hours=1)), field))
    assert response.status_code == 400, response.content
    assert "lone surrogate" in response.json()["detail"]
    assert not Booking.objects.exists()
    figures.add("bad_inputs")


def test_a_lone_surrogate_in_one_bulk_item_is_a_400_and_nothing_is_written(api, api_site):
    items = [booking_payload(external_id=f"g{n}") for n in range(1000)] + [booking_payload(name="\udfff")]
    body = json.dumps({"bookings": items})  # ASCII JSON: the surrogate travels as its escape
    for dry_run in ("?dry_run=true", ""):
        response = _raw_post(api, f"{BOOKINGS}bulk{dry_run}", body)
        assert response.status_code == 400, response.content[:300]
        assert "bookings.1000.name" in response.json()["errors"]
    assert not Booking.objects.exists()


@pytest.mark.parametrize("value", ["a\tb", "a\nb", "a\x07b", "a\x85b"])
def test_control_characters_are_refused_in_one_line_fields(api, api_site, value):
    response = api.post(BOOKINGS, booking_payload(external_id=value), format="json")
    _refused(response, "external_id", "control characters")
    group = {"code": "NEW", "name": value, "kind": "consumer", "valid_from": iso(T0)}
    _refused(api.post(GROUPS, group, format="json"), "name", "control characters")
    assert not Booking.objects.exists() and not BalanceGroup.objects.filter(code="NEW").exists()


def test_an_unreadable_csv_is_a_400_that_says_why(client, operator):
    from django.core.files.uploadedfile import SimpleUploadedFile

    text = "source,destination,start,end,energy_wh,name\nPV,APT,x,y,1," + "n" * 131_073 + "\n"
    client.force_login(operator)
    file = SimpleUploadedFile("values.csv", text.encode(), content_type="text/csv")
    response = client.post(reverse("dashboard:csv-upload"), {"file": file, "action": "preview"})
    assert response.status_code == 400
    assert "field larger than field limit" in response.context["form"].errors["file"][0]


def test_a_nul_in_a_csv_row_is_refused_on_its_line(client, operator, make_group):
    from django.core.files.uploadedfile import SimpleUploadedFile

    make_group("PV", "source")
    make_group("APT", "consumer")
    text = (
        "source,destination,start,end,energy_wh,name\n"
        "PV,APT,2026-03-02T00:00Z,2026-03-02T00:15Z,1,ok\n"
        "PV,APT,2026-03-02T00:15Z,2026-03-02T00:30Z,1,a\x00b\n"
    )
    client.force_login(operator)
    file = SimpleUploadedFile("values.csv", text.encode(), content_type="text/csv")
    response = client.post(reverse("dashboard:csv-upload"), {"file": file, "action": "preview"})
    result = response.context["result"]
    assert (result.created, [(error.line, error.code) for error in result.errors]) == (1, [(3, "VALIDATION_ERROR")])
    assert "NUL" in result.errors[0].detail


def test_a_5000_digit_energy_in_a_csv_row_is_refused_on_its_line(client, operator, make_group):
    from django.core.files.uploadedfile import SimpleUploadedFile

    make_group("PV", "source")
    make_group("APT", "consumer")
    text = "source,destination,start,end,energy_wh\nPV,APT,2026-03-02T00:00Z,2026-03-02T00:15Z," + "9" * 5000 + "\n"
    client.force_login(operator)
    file = SimpleUploadedFile("values.csv", text.encode(), content_type="text/csv")
    response = client.post(reverse("dashboard:csv-upload"), {"file": file, "action": "preview"})
    errors = response.context["result"].errors
    assert [(error.line, error.code) for error in errors] == [(2, "VALIDATION_ERROR")]
    assert "whole number" in errors[0].detail


# -- login throttling (django-axes) ------------------------------------------------------------


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_user_at_that_address_for_a_while(client, admin_user, url):
    admin_user.set_password("the-right-one-42")
    admin_user.save()
    for _ in range(4):
        response = client.post(url, {"username": admin_user.username, "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    assert client.post(url, {"username": admin_user.username, "password": "wrong"}).status_code == 429  # the 5th
    locked = client.post(url, {"username": admin_user.username, "password": "the-right-one-42"})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    other = client.post(url, {"username": admin_user.username, "password": "the-right-one-42"}, REMOTE_ADDR="10.9.9.9")
    assert other.status_code == 302  # the same user from another address is not locked out
    figures.add("access_checks")


def test_a_csv_upload_past_the_limit_is_refused_while_it_streams(client, operator, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    header = b"source,destination,start,end,energy_wh\n"
    row = b"PV,APT,2026-03-02T00:00Z,2026-03-02T00:15Z,1\n"
    big = header + row * (2 * 1024 * 1024 // len(row))  # 2 MiB
    client.force_login(operator)
    file = SimpleUploadedFile("values.csv", big, content_type="text/csv")
    response = client.post(reverse("dashboard:csv-upload"), {"file": file, "action": "preview"})
    assert response.status_code == 400
    assert response.context["form"].errors["file"] == ["The file is larger than 1 MiB; split it."]
    assert response.context["result"] is None
