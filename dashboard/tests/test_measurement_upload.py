"""CSV import of measurements: reading the file, preview, line-numbered errors, import, access."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from allocation.csv_io import measurements_from_csv
from allocation.models import Measurement
from core.errors import CsvFormatError
from transactions.models import ClarificationCase

pytestmark = pytest.mark.django_db

URL = reverse("dashboard:measurement-upload")
GOOD = (
    "group,start,energy_wh,quality,status\n"
    "PV,2026-03-10T10:00:00+01:00,412,measured,final\n"
    "APT,2026-03-10T09:00:00Z,130,substitute,\n"
)
BAD_ROWS = (
    "PV,2026-03-10T10:07:00+01:00,5,,\n"
    "APT,2026-03-10T10:15:00+01:00,1.5,,\n"
    "NOPE,2026-03-10T10:15:00+01:00,5,,\n"
    "HOUSE,2026-03-10T10:15:00+01:00,5,,\n"
    "APT,2026-03-10T10:15:00,5,,\n"
    "APT,2026-03-10T10:15:00+01:00,5,substitute,final\n"
)
GERMAN = (
    "Group;Start;End;Energy_Wh;Quality\n"
    "PV;2026-03-10T10:00:00+01:00;2026-03-10T10:15:00+01:00;412;measured\n"
    "APT;2026-03-10T10:00:00+01:00;;0,4;measured\n"
    "APT;2026-03-10T10:00:00+01:00;;1.234;measured\n"
    "APT;2026-03-10T10:00:00+01:00;;400;measured\n"
)


def upload(client, text, action="preview"):
    file = SimpleUploadedFile("messwerte.csv", text.encode(), content_type="text/csv")
    return client.post(URL, {"file": file, "action": action})


def test_read_commas_semicolons_optional_columns_and_line_numbers():
    items, lines, errors = measurements_from_csv("group_code;start;energy_wh\n\nPV;2026-03-10T09:00Z;7\nAPT;x;-3\n")
    assert items == [
        {"group": "PV", "start": "2026-03-10T09:00Z", "energy_wh": 7},
        {"group": "APT", "start": "x", "energy_wh": -3},
    ]
    assert (lines, errors) == ([3, 4], [])


def test_a_decimal_value_is_refused_on_its_line_never_rounded():
    items, lines, errors = measurements_from_csv(GERMAN)
    assert [item["energy_wh"] for item in items] == [412, 400] and lines == [2, 5]
    assert [(error.line, error.code) for error in errors] == [(3, "VALIDATION_ERROR"), (4, "VALIDATION_ERROR")]
    assert "'0,4' is not a whole number of Wh" in errors[0].detail and "not converted or rounded" in errors[0].detail


def test_a_decimal_comma_in_a_comma_separated_file_is_named():
    _, _, errors = measurements_from_csv("group,start,energy_wh\nPV,2026-03-10T09:00Z,1,5\n")
    assert errors[0].line == 2 and "decimal comma" in errors[0].detail


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("group,start\n", "Missing column(s): energy_wh"),
        ("group,start,energy_wh,source\n", "Unknown column(s): source"),
        ("group,start,energy_wh,group\n", "named twice: group"),
    ],
)
def test_unreadable_files_are_refused_whole(text, message):
    with pytest.raises(CsvFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        measurements_from_csv(text)


def test_preview_writes_nothing_and_reports_every_refusal_by_line(client_in, site):
    response = upload(client_in, GOOD + BAD_ROWS)
    assert response.status_code == 200
    result = response.context["result"]
    assert result.dry_run and (result.rows, result.created) == (8, 2)
    assert [(error.line, error.code) for error in result.errors] == [
        (4, "INVALID_TIME_ALIGNMENT"),
        (5, "VALIDATION_ERROR"),
        (6, "VALIDATION_ERROR"),
        (7, "VALIDATION_ERROR"),
        (8, "VALIDATION_ERROR"),
        (9, "VALIDATION_ERROR"),
    ]
    details = [error.detail for error in result.errors]
    assert "not a whole number" in details[1] and "NOPE" in details[2] and "balance" in details[3]
    assert "offset" in details[4] and "Only a measured value can be final" in details[5]
    assert not Measurement.objects.exists()
    page = response.content.decode()
    assert "Import 2 valid rows (rejected rows are skipped)" in page and "NOPE" in page
    assert response.context["csv_text"] == GOOD + BAD_ROWS


def test_import_after_preview_then_again_replaced_unchanged_and_final(client_in, site):
    result = client_in.post(URL, {"csv_text": GOOD, "action": "import"}).context["result"]
    assert (result.dry_run, result.created, result.errors) == (False, 2, [])
    pv = Measurement.objects.get(group=site["PV"])
    assert (pv.energy_wh, pv.quality, pv.status) == (412, "measured", "final")
    changed = GOOD.replace(",130,", ",131,").replace(",412,", ",413,")
    again = upload(client_in, changed, "import").context["result"]
    assert (again.created, again.replaced, again.unchanged) == (0, 1, 0)
    assert [(error.line, error.code) for error in again.errors] == [(2, "MEASUREMENT_FINAL")]
    case = ClarificationCase.objects.get()
    assert (case.channel, case.payload["energy_wh"]) == ("csv", 413)
    assert "clarification cases" in upload(client_in, changed, "import").content.decode()


def test_a_nul_character_is_refused_on_its_line(client_in, site):
    result = upload(client_in, "group,start,energy_wh\nP\x00V,2026-03-10T09:00:00Z,5\nPV,2026-03-10T09:00:00Z,6\n")
    assert result.status_code == 200
    errors = result.context["result"].errors
    assert [(error.line, error.code) for error in errors] == [(2, "VALIDATION_ERROR")]
    assert "not found" in errors[0].detail and "\x00" not in errors[0].detail  # quoted, not raw


def test_a_semicolon_file_with_a_metering_point(client_in, site):
    site["APT"].metering_point = "DE0001234567890000000000000000001"
    site["APT"].save()
    text = "group;start;energy_wh\nDE0001234567890000000000000000001;2026-03-10T09:00:00Z;77\n"
    result = upload(client_in, text, "import").context["result"]
    assert (result.created, result.errors) == (1, [])
    assert Measurement.objects.get().group == site["APT"]


def test_a_file_refused_whole_is_a_400_with_the_reason(client_in, site):
    response = upload(client_in, "meter,when,kwh\n")
    assert response.status_code == 400
    assert "Unknown column(s): meter, when, kwh" in response.content.decode()
    assert client_in.post(URL, {"action": "preview"}).status_code == 400  # no file at all


def test_the_page_explains_the_columns_and_the_booking_import_links_to_it(client_in):
    page = client_in.get(URL).content.decode()
    assert "energy_wh" in page and "metering point" in page and reverse("dashboard:csv-upload") in page
    assert URL in client_in.get(reverse("dashboard:csv-upload")).content.decode()


def test_another_tenants_groups_are_not_found(client_in, site, stranger):
    text = "group,start,energy_wh\nFOREIGN-PV,2026-03-10T09:00:00Z,5\n"
    result = upload(client_in, text, "import").context["result"]
    assert [(error.line, error.code) for error in result.errors] == [(2, "VALIDATION_ERROR")]
    assert "not found" in result.errors[0].detail and not Measurement.objects.exists()


def test_login_and_a_tenant_are_required(client, no_tenant_user):
    response = client.get(URL)
    assert response.status_code == 302 and reverse("login") in response["Location"]
    client.force_login(no_tenant_user)
    assert client.get(URL).status_code == 403


def test_the_measurement_import_in_german(client_in, site):
    page = client_in.get(URL, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "CSV-Import von Messwerten" in page and "Ersatzwert" in page
    file = SimpleUploadedFile("messwerte.csv", (GOOD + BAD_ROWS).encode(), content_type="text/csv")
    page = client_in.post(URL, {"file": file, "action": "import"}, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Importiert" in page and "<strong>8</strong> Zeilen gelesen:" in page
    assert "2 angelegt, 0 ersetzt, 0 unverändert," in page
    assert "<strong>6</strong> abgelehnt." in page
