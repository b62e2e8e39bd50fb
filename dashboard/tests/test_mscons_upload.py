"""MSCONS import in the dashboard: preview and its import step, import directly, refusals, the received interchanges."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from allocation.models import Interchange, InterchangeStatus, Measurement
from allocation.mscons.services import bytes_source, mscons_import
from allocation.mscons.writer import Reading, write_interchange
from core.testing import T0
from transactions.models import ClarificationCase

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:mscons-upload")
LIST_URL = reverse("dashboard:mscons-interchanges")
MP_PV = "DE0001234567890000000000000000001"
MP_APT = "DE0001234567890000000000000000002"
MP_UNKNOWN = "DE0009999999990000000000000000009"
Q = dt.timedelta(minutes=15)


@pytest.fixture
def meters(make_group):
    return {
        "PV": make_group("PV", "source", metering_point=MP_PV),
        "APT": make_group("APT-1", "consumer", metering_point=MP_APT),
    }


def readings(point, count=4, quantity="1.234", **fields):
    return [Reading(point, T0 + i * Q, quantity, **fields) for i in range(count)]


GOOD = write_interchange([readings(MP_PV) + readings(MP_APT, 2, "0.5", qualifier="67")], reference="REF-DASH")


def upload(client, data: bytes, action="preview", name="messwerte.edi"):
    return client.post(
        URL, {"file": SimpleUploadedFile(name, data, content_type="application/edifact"), "action": action}
    )


def detail_url(interchange) -> str:
    return reverse("dashboard:mscons-interchange", args=[interchange.pk])


def test_preview_writes_no_value_and_keeps_a_previewed_interchange(client_in, meters):
    response = upload(client_in, GOOD)
    assert response.status_code == 200
    report = response.context["report"]
    assert report.dry_run and (report.created, report.messages, report.values) == (6, 1, 6)
    assert not Measurement.objects.exists()
    previewed = Interchange.objects.get()
    assert (previewed.status, previewed.channel, previewed.filename) == (
        InterchangeStatus.PREVIEWED,
        "dashboard",
        "messwerte.edi",
    )
    page = response.content.decode()
    assert "Preview: nothing was written" in page and "REF-DASH" in page
    assert "<strong>6</strong> would be created" in page
    assert "4.936" in page and "1.000" in page  # 4 x 1.234 kWh for the PV, 2 x 0.5 kWh for the apartment
    assert MP_PV in page and "Measured 4" in page and "Substitute value 2" in page
    assert f'name="interchange" value="{previewed.pk}"' in page


def test_the_import_step_imports_the_previewed_interchange(client_in, meters):
    previewed = upload(client_in, GOOD).context["report"].interchange
    response = client_in.post(URL, {"interchange": previewed.pk})
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.dry_run, report.created) == (False, 6)
    assert list(Measurement.objects.filter(group=meters["PV"]).values_list("energy_wh", flat=True)) == [1234] * 4
    imported = Interchange.objects.get(status=InterchangeStatus.IMPORTED)
    assert (imported.channel, imported.filename, imported.created) == ("dashboard", "messwerte.edi", 6)
    assert "<strong>6</strong> created" in response.content.decode()


def test_only_a_preview_is_imported_in_the_second_step(client_in, meters):
    imported = upload(client_in, GOOD, "import").context["report"].interchange
    response = client_in.post(URL, {"interchange": imported.pk})
    assert response.status_code == 400
    assert "only a preview is imported" in response.content.decode()
    assert Measurement.objects.count() == 6


def test_import_directly(client_in, meters):
    response = upload(client_in, GOOD, "import")
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.dry_run, report.created, report.rejected) == (False, 6, [])
    assert Measurement.objects.count() == 6
    assert Interchange.objects.get().status == InterchangeStatus.IMPORTED
    again = upload(client_in, GOOD, "import")
    assert again.context["report"].duplicate_of.pk == report.interchange.pk
    assert "These exact bytes were imported before" in again.content.decode()


def test_refused_values_are_listed_with_their_segment_and_unknown_points_kept_as_cases(client_in, meters):
    data = write_interchange(
        [readings(MP_PV, 2) + readings(MP_UNKNOWN, 1) + [Reading(MP_PV, T0 + 5 * Q, "1.0", unit="KWT")]]
    )
    preview = upload(client_in, data)
    page = preview.content.decode()
    assert [row["code"] for row in preview.context["report"].rejected] == ["UNKNOWN_METERING_POINT", "VALIDATION_ERROR"]
    assert "UNKNOWN_METERING_POINT" in page and "power, not energy" in page and "QTY+220:1.0:KWT" in page
    assert "<strong>2</strong> refused" in page
    result = client_in.post(URL, {"interchange": preview.context["report"].interchange.pk})
    assert "clarification cases" in result.content.decode()
    case = ClarificationCase.objects.get()
    cases = client_in.get(reverse("dashboard:clarifications")).content.decode()
    assert f"interchange #{case.origin['interchange']}" in cases and f"LOC+172+{MP_UNKNOWN}" in cases


@pytest.mark.parametrize("action", ["preview", "import"])
def test_a_refused_interchange_is_a_400_with_the_reason(client_in, meters, action):
    response = upload(client_in, GOOD[: len(GOOD) // 2], action)
    assert response.status_code == 400
    assert "truncated" in response.context["form"].errors["file"][0]
    assert "truncated" in response.content.decode()
    assert not Measurement.objects.exists()
    refused = Interchange.objects.get()
    assert refused.status == InterchangeStatus.REFUSED and "truncated" in refused.error


def test_no_file_and_a_file_too_large_are_refused_with_a_reason(client_in, meters, settings):
    response = client_in.post(URL, {"action": "preview"})
    assert response.status_code == 400 and "Choose an MSCONS file." in response.content.decode()
    settings.UPLOAD_MAX_BYTES = 1024 * 1024
    response = upload(client_in, GOOD + b" " * settings.UPLOAD_MAX_BYTES)
    assert (
        response.status_code == 400
        and "larger than 1 MiB; send larger interchanges to the API or to manage.py import_mscons."
        in response.content.decode()
    )
    assert not Interchange.objects.exists()


def test_another_tenants_interchange_is_not_found(client_in, meters, stranger, other_tenant):
    foreign = mscons_import(
        tenant=other_tenant,
        actor=stranger["user"],
        source=bytes_source(GOOD),
        channel="dashboard",
        dry_run=True,
        keep_preview=True,
    ).interchange
    assert client_in.post(URL, {"interchange": foreign.pk}).status_code == 404
    for garbled in ("not-a-number", "", str(2**64)):
        response = client_in.post(URL, {"interchange": garbled})
        assert response.status_code == 400 and "preview the file again" in response.content.decode()
    assert client_in.get(detail_url(foreign)).status_code == 404
    assert client_in.get(reverse("dashboard:mscons-interchange-download", args=[foreign.pk])).status_code == 404
    assert Interchange.objects.get().status == InterchangeStatus.PREVIEWED


def test_the_list_and_the_detail_of_received_interchanges(client_in, meters):
    first = upload(client_in, GOOD, "import").context["report"].interchange
    copy = upload(client_in, GOOD, "import", name="again.edi").context["report"].interchange
    upload(client_in, b"hello world", name="junk.txt")
    response = client_in.get(LIST_URL)
    assert response.status_code == 200
    rows = list(response.context["page"])
    assert [row.filename for row in rows] == ["junk.txt", "again.edi", "messwerte.edi"]  # newest first
    page = response.content.decode()
    assert f'same bytes as <a href="{detail_url(first)}">#{first.pk}</a>' in page
    assert "Refused as a whole" in page and "the file is not an MSCONS interchange" not in page.lower()
    assert [(row.created, row.unchanged, row.refused) for row in rows] == [(0, 0, 0), (0, 6, 0), (6, 0, 0)]
    detail = client_in.get(detail_url(copy)).content.decode()
    assert "Same bytes as" in detail and "REF-DASH" in detail
    detail = client_in.get(detail_url(first)).content.decode()
    assert (
        "4.936" in detail
        and MP_APT in detail
        and reverse("dashboard:mscons-interchange-download", args=[first.pk]) in detail
    )


def test_a_previewed_interchange_can_be_imported_from_its_page(client_in, meters):
    previewed = upload(client_in, GOOD).context["report"].interchange
    page = client_in.get(detail_url(previewed)).content.decode()
    assert "would be created" in page and f'name="interchange" value="{previewed.pk}"' in page
    client_in.post(URL, {"interchange": previewed.pk})
    copy = upload(client_in, GOOD).context["report"]
    assert (
        copy.duplicate_of is not None
        and 'name="interchange"' not in client_in.get(detail_url(copy.interchange)).content.decode()
    )


def test_the_download_returns_the_exact_bytes(client_in, meters):
    data = write_interchange([readings(MP_PV)], name="Stadtwerke Düsseldorf")  # ISO 8859-1, not UTF-8
    first = upload(client_in, data, "import", name="Zählerwerte März.edi").context["report"].interchange
    copy = upload(client_in, data, "import").context["report"].interchange
    for interchange in (first, copy):  # a copy keeps no bytes of its own: the first one's are sent
        response = client_in.get(reverse("dashboard:mscons-interchange-download", args=[interchange.pk]))
        assert response.status_code == 200 and response.content == data
        assert response["Content-Type"] == "application/edifact"
    assert "attachment" in response["Content-Disposition"] and "messwerte.edi" in response["Content-Disposition"]


def test_an_operator_of_another_tenant_sees_none_of_them(client, meters, stranger, operator):
    client.force_login(operator)
    upload(client, GOOD, "import", name="sonnenhof.edi")
    client.force_login(stranger["user"])
    response = client.get(LIST_URL)
    assert response.status_code == 200 and list(response.context["page"]) == []
    assert "sonnenhof.edi" not in response.content.decode()


def test_the_navigation_links_the_import_and_login_is_required(client, client_in, no_tenant_user):
    assert URL in client_in.get(reverse("dashboard:overview")).content.decode()
    client.logout()
    response = client.get(LIST_URL)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    client.force_login(no_tenant_user)
    assert client.get(URL).status_code == 403


def test_the_mscons_pages_in_german(client_in, meters):
    page = client_in.post(
        URL,
        {"file": SimpleUploadedFile("messwerte.edi", GOOD, content_type="application/edifact"), "action": "preview"},
        HTTP_ACCEPT_LANGUAGE="de",
    ).content.decode()
    assert "Vorschau: nichts wurde geschrieben" in page
    assert "<strong>6</strong> würden angelegt" in page
    assert "4,936" in page and "01.01.2026" in page  # kWh with a decimal comma, the local day
    assert "Gemessen 4" in page and "Ersatzwert 2" in page
    interchange = Interchange.objects.get()
    Interchange.objects.filter(pk=interchange.pk).update(received_at=dt.datetime(2026, 3, 10, 13, tzinfo=dt.UTC))
    listing = client_in.get(LIST_URL, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Empfangene MSCONS-Übertragungsdateien" in listing and "10.03.2026 14:00" in listing
    assert "Vorschau, nicht importiert" in listing
    detail = client_in.get(detail_url(interchange), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Diese Übertragungsdatei importieren" in detail and "10.03.2026 14:00 von " in detail
