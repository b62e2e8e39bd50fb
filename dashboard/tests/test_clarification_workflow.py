"""Clarification cases on the page: correct and rebook, book into an open correction period, dismiss."""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from allocation.measurements import measurements_ingest
from allocation.models import Correction, Measurement
from allocation.services import scheme_change
from balance_groups.models import AuditAction, AuditEntry, BalanceGroup
from balance_groups.services import group_close
from core.errors import PeriodClosed
from core.testing import iso
from dashboard.tests.conftest import local
from transactions.models import Booking, BookingKind, ClarificationCase, ClarificationStatus
from transactions.services import booking_create

URL = reverse("dashboard:clarifications")
NEXT_DAY = local(24)


def resolve_url(case):
    return reverse("dashboard:clarification-resolve", args=[case.pk])


def fields(case, **values):
    return {f"{case.pk}-{name}": value for name, value in values.items()}


def flash(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def late_value(tenant, operator, group="APT", wh=1234, **extra):
    """A value for a closed quarter-hour (10:00 local): refused and kept as a case."""
    item = {"group": group, "start": iso(local(10)), "energy_wh": wh, **extra}
    result = measurements_ingest(tenant=tenant, actor=operator, items=[item])
    assert result.rejected[0]["code"] == "PERIOD_CLOSED"
    return ClarificationCase.objects.get(tenant=tenant, payload__group=group)


@pytest.fixture
def closed_day(site, tenant, operator):
    """PV shares with APT (SUPPLIER takes the surplus and supplies the rest); 10:00 is measured, the day closed."""
    scheme_change(
        tenant=tenant,
        actor=operator,
        code="HAUS",
        name="Haus",
        method="dynamic",
        sources=[site["PV"]],
        consumers=[(site["APT"], 10000)],
        surplus_to=site["SUPPLIER"],
        residual_from=site["SUPPLIER"],
        effective_from=max(g.valid_from for g in site.values()),
    )
    items = [
        {"group": "PV", "start": iso(local(10)), "energy_wh": 100, "status": "final"},
        {"group": "APT", "start": iso(local(10)), "energy_wh": 60, "status": "final"},
    ]
    assert measurements_ingest(tenant=tenant, actor=operator, items=items).rejected == []
    for code in ("PV", "APT", "SUPPLIER"):
        group_close(group=site[code], actor=operator, until=NEXT_DAY)
    return site


@pytest.fixture
def reopened_case(site, tenant, operator):
    """A measurement refused for a closed period that an admin has opened again since."""
    group_close(group=site["APT"], actor=operator, until=NEXT_DAY)
    case = late_value(tenant, operator, wh=120, quality="measured", status="provisional")
    BalanceGroup.objects.filter(pk=site["APT"].pk).update(closed_until=None)
    return case


def test_a_corrected_measurement_is_booked_with_the_edited_value_and_the_original_stays(
    client_in, reopened_case, tenant
):
    page = client_in.get(URL)
    assert "The period is open: Rebook stores the value as a measurement." in page.text
    response = client_in.post(
        resolve_url(reopened_case),
        fields(reopened_case, action="correct", energy_wh="130", quality="measured", status="final", note="re-read"),
        follow=True,
    )
    assert response.status_code == 200
    assert flash(response)[0].startswith("Case rebooked with the corrected values.")
    stored = Measurement.objects.get(group__code="APT", quarter_start=local(10))
    assert (stored.energy_wh, stored.status) == (130, "final")
    reopened_case.refresh_from_db()
    assert reopened_case.status == ClarificationStatus.REBOOKED
    assert reopened_case.payload["energy_wh"] == 120  # as received
    assert reopened_case.corrected_payload["energy_wh"] == 130
    audit = AuditEntry.objects.get(action=AuditAction.CLARIFICATION_REBOOK, object_id=str(reopened_case.pk))
    assert audit.data["corrected"]["energy_wh"] == 130
    done = client_in.get(URL, {"status": "rebooked"})
    assert "Payload as received" in done.text
    assert "received: 120 Wh · booked: 130 Wh" in done.text
    assert "received: Provisional · booked: Final" in done.text


def test_a_corrected_value_is_validated_like_any_input(client_in, reopened_case):
    response = client_in.post(resolve_url(reopened_case), fields(reopened_case, action="correct", energy_wh="-5"))
    assert response.status_code == 400
    assert response.context["rows"][0]["form"].errors["energy_wh"]
    same = client_in.post(resolve_url(reopened_case), fields(reopened_case, action="correct", energy_wh="120"))
    assert "Change at least one value" in same.context["rows"][0]["form"].non_field_errors()[0]
    final_substitute = client_in.post(
        resolve_url(reopened_case),
        fields(reopened_case, action="correct", energy_wh="121", quality="substitute", status="final"),
    )
    assert final_substitute.status_code == 400
    assert "Only a measured value can be final" in final_substitute.context["rows"][0]["form"].errors["status"][0]
    reopened_case.refresh_from_db()
    assert reopened_case.status == ClarificationStatus.OPEN
    assert not Measurement.objects.filter(group__code="APT").exists()


def test_a_closed_period_value_is_explained_and_booked_as_a_correction_from_the_page(
    client_in, closed_day, tenant, operator
):
    case = late_value(tenant, operator, wh=90, quality="substitute")
    page = client_in.get(URL)
    assert "Rebook books this value as a correction in the first open quarter-hour (final)" in page.text
    # A substitute value cannot be booked final: plain rebooking is not offered, correcting the quality is.
    assert "only a measured value can be booked" in page.text
    assert f'name="{case.pk}-action" value="rebook"' not in page.text
    assert f'name="{case.pk}-action" value="correct"' in page.text
    response = client_in.post(
        resolve_url(case), fields(case, action="correct", energy_wh="80", quality="measured"), follow=True
    )
    assert response.status_code == 200, response.context["rows"][0]["form"].errors
    correction = Correction.objects.get(case=case)
    assert (correction.energy_wh, correction.quality, correction.booked_start) == (80, "measured", NEXT_DAY)
    assert Booking.objects.filter(kind=BookingKind.CORRECTION).exists()
    assert Measurement.objects.get(group__code="APT", quarter_start=local(10)).energy_wh == 60  # closed: unchanged
    case.refresh_from_db()
    assert (case.status, case.payload["energy_wh"], case.payload["quality"]) == ("rebooked", 90, "substitute")


def test_a_closed_period_value_is_rebooked_as_received(client_in, closed_day, tenant, operator):
    case = late_value(tenant, operator, wh=90, status="final")
    response = client_in.post(resolve_url(case), fields(case, action="rebook"), follow=True)
    assert response.status_code == 200
    assert Correction.objects.get(case=case).energy_wh == 90


def test_a_closed_period_booking_says_why_it_cannot_be_rebooked(client_in, site, tenant, operator):
    group_close(group=site["PV"], actor=operator, until=NEXT_DAY)
    payload = {"source": "PV", "destination": "APT", "start": iso(local(10)), "end": iso(local(11)), "energy_wh": 40}
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
        )
    case = ClarificationCase.objects.get(tenant=tenant)
    page = client_in.get(URL)
    assert "Rebooking is not possible: Group PV is closed until" in page.text
    assert "A booking is never placed in a closed period" in page.text
    assert 'value="rebook"' not in page.text and 'value="correct"' not in page.text
    assert f'name="{case.pk}-action" value="dismiss"' in page.text


def test_dismiss_with_a_note(client_in, reopened_case):
    missing = client_in.post(resolve_url(reopened_case), fields(reopened_case, action="dismiss"))
    assert missing.context["rows"][0]["form"].errors["note"] == ["Say why the case is dismissed."]
    response = client_in.post(
        resolve_url(reopened_case), fields(reopened_case, action="dismiss", note="duplicate"), follow=True
    )
    assert flash(response) == ["Case dismissed."]
    reopened_case.refresh_from_db()
    assert (reopened_case.status, reopened_case.resolution_note) == ("dismissed", "duplicate")
    assert not Measurement.objects.exists()


def test_each_case_links_its_group_and_day_and_shows_local_times(client_in, reopened_case):
    ClarificationCase.objects.filter(pk=reopened_case.pk).update(created_at=dt.datetime(2026, 3, 10, 13, tzinfo=dt.UTC))
    page = client_in.get(URL)
    assert 'href="/groups/APT/?day=2026-03-10"' in page.text
    assert 'href="/groups/APT/"' in page.text
    assert "2026-03-10 14:00" in page.text  # created 13:00 UTC
    assert "Quarter-hour: 2026-03-10 10:00 (Europe/Berlin)" in page.text
    group_page = client_in.get("/groups/APT/?day=2026-03-10")
    assert group_page.status_code == 200


def test_the_page_in_german(client_in, reopened_case):
    ClarificationCase.objects.filter(pk=reopened_case.pk).update(created_at=dt.datetime(2026, 3, 10, 13, tzinfo=dt.UTC))
    page = client_in.get(URL, HTTP_ACCEPT_LANGUAGE="de")
    assert "Klärfälle" in page.text
    assert "10.03.2026 14:00" in page.text
    assert "Korrigieren und neu buchen" in page.text
    assert "Der Zeitraum ist offen" in page.text
    client_in.post(
        resolve_url(reopened_case),
        fields(reopened_case, action="correct", energy_wh="1234"),
        HTTP_ACCEPT_LANGUAGE="de",
    )
    done = client_in.get(URL, {"status": "rebooked"}, HTTP_ACCEPT_LANGUAGE="de")
    assert "empfangen: 120 Wh · gebucht: 1.234 Wh" in done.text
    assert "Neu gebucht" in done.text


def test_a_value_outside_the_groups_validity_says_why_it_cannot_be_rebooked(client_in, reopened_case, site):
    BalanceGroup.objects.filter(pk=site["APT"].pk).update(valid_from=local(12))
    page = client_in.get(URL)
    assert "Rebooking is not possible: group APT is not valid at 2026-03-10 10:00 (Europe/Berlin)." in page.text
    assert f'name="{reopened_case.pk}-action" value="rebook"' not in page.text
    assert f'name="{reopened_case.pk}-action" value="dismiss"' in page.text


def test_a_case_recorded_in_english_reads_german_on_a_german_page(client_in, api, site, tenant, operator):
    """The API records the case in English (its contract); the German page renders the kept message again."""
    group_close(group=site["APT"], actor=operator, until=NEXT_DAY)
    item = {"group": "APT", "start": iso(local(10)), "energy_wh": 77}
    body = {"measurements": [item]}
    answer = api.post("/api/v1/measurements/bulk", body, format="json", HTTP_ACCEPT_LANGUAGE="de")
    assert "is closed until 2026-03-11 00:00 (Europe/Berlin)" in answer.json()["rejected"][0]["detail"]
    case = ClarificationCase.objects.get(payload__energy_wh=77)
    assert case.detail.startswith("Group APT is closed until 2026-03-11 00:00 (Europe/Berlin)")
    german = client_in.get(URL, HTTP_ACCEPT_LANGUAGE="de").text
    assert "Der Bilanzkreis APT ist bis 11.03.2026 00:00 (Europe/Berlin) abgeschlossen" in german
    assert "the measurement is for" not in german
    assert "Group APT is closed until 2026-03-11 00:00" in client_in.get(URL, HTTP_ACCEPT_LANGUAGE="en").text
    # A case recorded before messages were kept shows its stored text.
    ClarificationCase.objects.filter(pk=case.pk).update(detail_message=None)
    assert "Group APT is closed until 2026-03-11 00:00" in client_in.get(URL, HTTP_ACCEPT_LANGUAGE="de").text


def test_a_case_shows_its_data_in_words_in_local_time(client_in, tenant, operator, closed_day):
    late_value(tenant, operator, wh=1234, quality="substitute")
    page = client_in.get(URL, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    received = iso(local(10))
    assert f'<dt>Beginn</dt><dd title="{received}">10.03.2026 10:00 (Europe/Berlin)</dd>' in page
    assert '<dt>Energie</dt><dd title="1234">1.234 Wh</dd>' in page
    assert '<dt>Qualität</dt><dd title="substitute">Ersatzwert</dd>' in page
    assert "<dt>start</dt>" not in page and "<dt>energy_wh</dt>" not in page
