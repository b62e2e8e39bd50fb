"""Every dashboard action: success confirms what it did, refusal says why and keeps the form filled."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from balance_groups.models import AuditEntry, BalanceGroup
from core.quarters import next_quarter_after
from dashboard.tests.conftest import DAY, local
from settlement.models import SettlementRule, SettlementRun
from transactions.models import Booking, BookingKind, BookingStatus, ClarificationCase, ClarificationStatus
from transactions.services import booking_create, booking_finalize

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def flash(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# Groups


def test_group_create(client_in, tenant):
    data = {"code": "WP", "name": "Wärmepumpe", "kind": "consumer", "valid_from": "2026-03-01T00:00"}
    response = client_in.post(reverse("dashboard:group-create"), data, follow=True)
    group = BalanceGroup.objects.get(tenant=tenant, code="WP")
    assert group.valid_from == dt.datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # local midnight, CET
    assert "Group WP created." in flash(response)
    assert AuditEntry.objects.filter(action="group.create", object_id=str(group.pk), actor="user:operator").exists()


def test_group_create_refused_keeps_the_form(client_in, site):
    data = {"code": "PV", "name": "Zweite PV", "kind": "source", "valid_from": "2026-03-01T00:07"}
    response = client_in.post(reverse("dashboard:group-create"), data)
    assert response.status_code == 400
    assert "not on a quarter-hour boundary" in response.context["form"].errors["valid_from"][0]
    assert b'value="Zweite PV"' in response.content
    # The error sits next to its field and is tied to the input for screen readers.
    assert b'aria-describedby="id_valid_from_help id_valid_from_error"' in response.content
    assert b'aria-invalid="true"' in response.content
    data["valid_from"] = "2026-03-01T00:00"
    response = client_in.post(reverse("dashboard:group-create"), data)
    assert response.context["form"].errors["code"] == ["A group with code 'PV' exists already."]
    assert BalanceGroup.objects.filter(code="PV").count() == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-03-29T02:30", "does not exist in Europe/Berlin"),
        ("2026-10-25T02:30", "occurs twice in Europe/Berlin"),
        ("yesterday", "Enter a date and time"),
    ],
)
def test_local_times_that_do_not_exist_or_repeat_are_refused(client_in, value, message):
    data = {"code": "X", "name": "X", "kind": "source", "valid_from": value}
    response = client_in.post(reverse("dashboard:group-create"), data)
    assert message in response.context["form"].errors["valid_from"][0]


def test_instants_with_offset_are_taken_as_given(client_in, tenant):
    data = {"code": "X", "name": "X", "kind": "source", "valid_from": "2026-10-25T02:30+01:00"}
    client_in.post(reverse("dashboard:group-create"), data)
    assert BalanceGroup.objects.get(code="X").valid_from == dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_group_edit(client_in, site):
    url = reverse("dashboard:group-edit", args=[site["APT"].pk])
    assert client_in.get(url).context["form"]["code"].value() == "APT"
    data = {"code": "APT-1", "name": "Wohnung 1", "valid_from": "2026-01-01T01:00", "valid_until": ""}
    response = client_in.post(url, data, follow=True)
    site["APT"].refresh_from_db()
    assert (site["APT"].code, site["APT"].name) == ("APT-1", "Wohnung 1")
    assert "Group APT-1 saved (Code, Name)." in flash(response)


def test_group_edit_refused_when_bookings_fall_outside(client_in, site, flows):
    url = reverse("dashboard:group-edit", args=[site["APT"].pk])
    data = {"code": "APT", "name": "Wohnung", "valid_from": "2026-01-01T01:00", "valid_until": "2026-03-01T00:00"}
    response = client_in.post(url, data)
    assert response.status_code == 400
    assert "would leave existing bookings or measurements outside it" in response.context["form"].non_field_errors()[0]
    site["APT"].refresh_from_db()
    assert site["APT"].valid_until is None


def test_group_close_and_never_reopen(client_in, site):
    url = reverse("dashboard:group-close", args=[site["PV"].pk])
    response = client_in.post(url, {"until": "2026-03-11T00:00"}, follow=True)
    site["PV"].refresh_from_db()
    assert site["PV"].closed_until == dt.datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    assert "PV is closed until 2026-03-11 00:00 (Europe/Berlin)." in flash(response)
    response = client_in.post(url, {"until": "2026-03-05T00:00"})
    assert response.status_code == 400
    assert "closing never reopens" in response.context["form"].errors["until"][0]
    assert b'value="2026-03-05T00:00"' in response.content


# Settlement rules


def test_rule_page_explains_when_a_change_takes_effect(client_in, site):
    response = client_in.get(reverse("dashboard:rule-edit", args=[site["APT"].pk]))
    assert b"next quarter-hour" in response.content
    assert response.context["next_change_utc"] == next_quarter_after(timezone.now()) or response.context[
        "next_change_utc"
    ] == next_quarter_after(timezone.now() - dt.timedelta(minutes=15))
    assert response.context["form"]["parent_1"].value() == str(site["GRID-CONNECTION"].pk)


def test_rule_change_takes_effect_at_the_next_quarter_hour(client_in, site):
    before = next_quarter_after(timezone.now())
    data = {"parent_1": str(site["HOUSE"].pk), "share_1": "60", "parent_2": str(site["GRID-CONNECTION"].pk)}
    data.update({"share_2": "40", "interval": "1h", "effective_from": ""})
    response = client_in.post(reverse("dashboard:rule-edit", args=[site["APT"].pk]), data, follow=True)
    versions = list(SettlementRule.objects.filter(group=site["APT"]).order_by("effective_from"))
    assert len(versions) == 2
    new = versions[1]
    assert before <= new.effective_from <= next_quarter_after(timezone.now())
    assert versions[0].effective_until == new.effective_from
    assert sorted((t.parent.code, t.share) for t in new.targets.all()) == [("GRID-CONNECTION", 4000), ("HOUSE", 6000)]
    assert any("takes effect at" in text and "UTC" in text for text in flash(response))


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"share_1": "90"}, "share_1", "must add up to exactly 100 %"),
        ({"effective_from": "2026-01-05T00:00"}, "effective_from", "never change retroactively"),
        ({"share_1": ""}, "share_1", "Give the share"),
    ],
)
def test_rule_change_refused(client_in, site, data, field, message):
    form = {"parent_1": str(site["GRID-CONNECTION"].pk), "share_1": "100", "interval": "15min", **data}
    response = client_in.post(reverse("dashboard:rule-edit", args=[site["APT"].pk]), form)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert any(message in text for text in errors[field]), errors
    assert SettlementRule.objects.filter(group=site["APT"]).count() == 1


def test_rule_change_refuses_a_cycle(client_in, site):
    # HOUSE is settled onto GRID-CONNECTION; settling GRID-CONNECTION onto HOUSE would close a loop.
    form = {"parent_1": str(site["HOUSE"].pk), "share_1": "100", "interval": "15min"}
    response = client_in.post(reverse("dashboard:rule-edit", args=[site["GRID-CONNECTION"].pk]), form)
    assert response.status_code == 400
    assert "cycle" in response.context["form"].errors["parent_1"][0]


# Bookings


def test_finalize_one_booking(client_in, flows):
    booking = flows["supplier_apt"]
    response = client_in.post(reverse("dashboard:booking-finalize", args=[booking.pk]), {"next": "/"}, follow=True)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.FINAL
    assert f"Booking {booking} is final." in flash(response)


def test_finalize_a_settlement_booking_is_refused(client_in, tenant, flows):
    settlement = Booking.objects.filter(tenant=tenant, kind=BookingKind.SETTLEMENT, status="provisional").first()
    assert settlement is not None
    response = client_in.post(reverse("dashboard:booking-finalize", args=[settlement.pk]), follow=True)
    assert any("was not finalized" in text and "becomes final by itself" in text for text in flash(response))


def test_finalize_until_for_a_group(client_in, site, flows, book):
    later = book("SUPPLIER", "APT", local(20), local(21), 80, external_id="late")
    url = reverse("dashboard:group-finalize", args=[site["APT"].pk])
    response = client_in.post(url, {"until": "2026-03-10T12:00"}, follow=True)
    flows["supplier_apt"].refresh_from_db()
    later.refresh_from_db()
    assert (flows["supplier_apt"].status, later.status) == ("final", "provisional")
    assert "1 booking of APT ending by 2026-03-10 12:00 (Europe/Berlin) is now final." in flash(response)


def test_finalize_until_refuses_a_misaligned_instant(client_in, site, flows):
    response = client_in.post(reverse("dashboard:group-finalize", args=[site["APT"].pk]), {"until": "2026-03-10T12:10"})
    assert response.status_code == 400
    assert "not on a quarter-hour boundary" in response.context["form"].errors["until"][0]
    flows["supplier_apt"].refresh_from_db()
    assert flows["supplier_apt"].status == "provisional"


def test_reverse_a_final_booking(client_in, flows):
    booking = flows["pv_apt"]
    response = client_in.post(reverse("dashboard:booking-reverse", args=[booking.pk]), follow=True)
    reversal = Booking.objects.get(reverses=booking)
    assert (reversal.source.code, reversal.destination.code, reversal.energy_wh) == ("APT", "PV", 400)
    assert any("reversal booking of 400 Wh" in text for text in flash(response))
    again = client_in.post(reverse("dashboard:booking-reverse", args=[booking.pk]), follow=True)
    assert any("reversed already" in text for text in flash(again))


def test_reverse_a_provisional_booking_is_refused(client_in, flows):
    response = client_in.post(reverse("dashboard:booking-reverse", args=[flows["supplier_apt"].pk]), follow=True)
    assert any("Only final bookings are reversed" in text for text in flash(response))
    assert not Booking.objects.filter(kind=BookingKind.REVERSAL).exists()


def test_booking_actions_on_another_tenants_booking_are_404(client_in, stranger, other_tenant):
    supplier = stranger["group"].__class__.objects.create(
        tenant=other_tenant, code="X", name="X", kind="balance", valid_from=stranger["group"].valid_from
    )
    booking = booking_create(
        tenant=other_tenant,
        actor="system:test",
        source=stranger["group"],
        destination=supplier,
        start=local(10),
        end=local(11),
        energy_wh=5,
    ).booking
    assert client_in.post(reverse("dashboard:booking-finalize", args=[booking.pk])).status_code == 404
    booking_finalize(booking=booking, actor="system:test")
    assert client_in.post(reverse("dashboard:booking-reverse", args=[booking.pk])).status_code == 404
    assert not Booking.objects.filter(reverses=booking).exists()


def test_actions_need_post_and_csrf(operator, flows):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(operator)
    url = reverse("dashboard:booking-finalize", args=[flows["supplier_apt"].pk])
    assert csrf_client.get(url).status_code == 405
    assert csrf_client.post(url).status_code == 403
    flows["supplier_apt"].refresh_from_db()
    assert flows["supplier_apt"].status == "provisional"


# Clarification cases


@pytest.fixture
def case(client_in, site, tenant, operator):
    """A booking refused because PV is closed: kept as a clarification case."""
    from balance_groups.services import group_close
    from core.errors import PeriodClosed

    group_close(group=site["PV"], actor=operator, until=local(12))
    payload = {"source": "PV", "destination": "APT", "start": "2026-03-10T09:00:00Z", "end": "2026-03-10T10:00:00Z"}
    payload["energy_wh"] = 40
    with pytest.raises(PeriodClosed):
        booking_create(
            tenant=tenant,
            actor=operator,
            source="PV",
            destination="APT",
            start=local(10),
            end=local(11),
            energy_wh=40,
            payload=payload,
            channel="dashboard",
        )
    return ClarificationCase.objects.get(tenant=tenant)


def test_clarification_list_shows_open_cases_only_of_the_tenant(client_in, case, stranger, other_tenant):
    ClarificationCase.objects.create(tenant=other_tenant, reason="PERIOD_CLOSED", detail="foreign", payload={})
    response = client_in.get(reverse("dashboard:clarifications"))
    assert [row["case"].pk for row in response.context["rows"]] == [case.pk]
    assert b"foreign" not in response.content


def test_dismiss_needs_a_note_and_keeps_the_form(client_in, case):
    url = reverse("dashboard:clarification-resolve", args=[case.pk])
    prefix = str(case.pk)
    response = client_in.post(url, {f"{prefix}-action": "dismiss", f"{prefix}-note": "  "})
    assert response.status_code == 400
    assert response.context["rows"][0]["form"].errors["note"] == ["Say why the case is dismissed."]
    response = client_in.post(url, {f"{prefix}-action": "dismiss", f"{prefix}-note": "duplicate reading"}, follow=True)
    case.refresh_from_db()
    assert (case.status, case.resolution_note) == (ClarificationStatus.DISMISSED, "duplicate reading")
    assert "Case dismissed." in flash(response)


def test_rebook_refused_while_closed_then_done(client_in, case, site):
    url = reverse("dashboard:clarification-resolve", args=[case.pk])
    prefix = str(case.pk)
    response = client_in.post(url, {f"{prefix}-action": "rebook", f"{prefix}-note": "meter fixed"})
    assert response.status_code == 400
    assert "closed until" in response.context["rows"][0]["form"].non_field_errors()[0]
    assert response.context["rows"][0]["form"]["note"].value() == "meter fixed"
    case.refresh_from_db()
    assert case.status == ClarificationStatus.OPEN
    BalanceGroup.objects.filter(pk=site["PV"].pk).update(closed_until=None)  # an admin reopened it
    response = client_in.post(url, {f"{prefix}-action": "rebook", f"{prefix}-note": "meter fixed"}, follow=True)
    case.refresh_from_db()
    assert case.status == ClarificationStatus.REBOOKED
    assert case.booking.energy_wh == 40
    assert any(text.startswith("Case rebooked as booking") for text in flash(response))


def test_resolving_another_tenants_case_is_404(client_in, other_tenant):
    foreign = ClarificationCase.objects.create(tenant=other_tenant, reason="PERIOD_CLOSED", detail="x", payload={})
    response = client_in.post(reverse("dashboard:clarification-resolve", args=[foreign.pk]), {})
    assert response.status_code == 404


# Settlement runs


def test_trigger_a_settlement_run(client_in, flows, tenant):
    data = {"start": "2026-03-10T00:00", "end": "2026-03-11T00:00"}
    response = client_in.post(reverse("dashboard:runs"), data, follow=True)
    run = SettlementRun.objects.filter(tenant=tenant, trigger="manual").get()
    assert (run.start, run.end) == (dt.datetime(2026, 3, 9, 23, tzinfo=UTC), dt.datetime(2026, 3, 10, 23, tzinfo=UTC))
    assert run.status == "succeeded"
    assert any("Settlement run for 2026-03-10 00:00 to 2026-03-11 00:00" in text for text in flash(response))
    assert run in list(response.context["runs"])


def test_settlement_run_refused_for_a_bad_window(client_in, tenant):
    response = client_in.post(reverse("dashboard:runs"), {"start": "2026-03-11T00:00", "end": "2026-03-10T00:00"})
    assert response.status_code == 400
    assert response.context["form"].errors["end"] == ["The end must be after the start."]
    assert b'value="2026-03-11T00:00"' in response.content
    assert not SettlementRun.objects.filter(tenant=tenant, trigger="manual").exists()


def test_runs_page_lists_only_own_runs(client_in, tenant, other_tenant, django_assert_max_num_queries):
    window = {"start": dt.datetime(2026, 3, 1, tzinfo=UTC), "end": dt.datetime(2026, 3, 2, tzinfo=UTC)}
    mine = SettlementRun.objects.create(tenant=tenant, **window)
    SettlementRun.objects.create(tenant=other_tenant, **window)
    with django_assert_max_num_queries(6):
        response = client_in.get(reverse("dashboard:runs"))
    assert list(response.context["runs"]) == [mine]


def test_day_parameter_is_tolerant(client_in, site):
    assert client_in.get(reverse("dashboard:overview"), {"day": "not-a-day"}).context["day"] != DAY
