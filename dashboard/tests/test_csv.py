"""CSV import (preview, row errors, summary) and the balance export."""

import csv
import datetime as dt
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from core.errors import CsvFormatError
from transactions.csv_io import bookings_from_csv
from transactions.models import Booking, ClarificationCase

pytestmark = pytest.mark.django_db

GOOD = (
    "source,destination,start,end,energy_wh,status,external_id\n"
    "PV,APT,2026-03-10T10:00:00+01:00,2026-03-10T10:15:00+01:00,412,provisional,m-1\n"
    "SUPPLIER,APT,2026-03-10T09:15:00Z,2026-03-10T10:15:00Z,1001,final,m-2\n"
)
BAD_ROWS = (
    "PV,APT,2026-03-10T10:07:00+01:00,2026-03-10T10:15:00+01:00,5,provisional,m-3\n"
    "PV,APT,2026-03-10T10:00:00+01:00,2026-03-10T10:15:00+01:00,1.5,provisional,m-4\n"
    "PV,NOPE,2026-03-10T10:00:00+01:00,2026-03-10T10:15:00+01:00,5,provisional,m-5\n"
)


def upload(client, text, action):
    file = SimpleUploadedFile("values.csv", text.encode(), content_type="text/csv")
    return client.post(reverse("dashboard:csv-upload"), {"file": file, "action": action})


def test_parse_csv_semicolons_aliases_and_line_numbers():
    text = "source_code;destination_code;start;end;energy_wh\n\nA;B;2026-03-10T09:00Z;2026-03-10T09:15Z;7\n"
    items, lines = bookings_from_csv(text)
    assert items == [
        {"source": "A", "destination": "B", "start": "2026-03-10T09:00Z", "end": "2026-03-10T09:15Z", "energy_wh": 7}
    ]
    assert lines == [3]


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("source,destination,start,end\n", "Missing column(s): energy_wh"), ("foo\n", "Unknown column")],
)
def test_unreadable_files_are_refused_whole(text, message):
    with pytest.raises(CsvFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        bookings_from_csv(text)


def test_preview_writes_nothing_and_reports_row_errors(client_in, flows):
    before = Booking.objects.count()
    response = upload(client_in, GOOD + BAD_ROWS, "preview")
    assert response.status_code == 200
    result = response.context["result"]
    assert result.dry_run
    assert (result.rows, result.created, len(result.errors)) == (5, 2, 3)
    assert [(error.line, error.code) for error in result.errors] == [
        (4, "INVALID_TIME_ALIGNMENT"),
        (5, "VALIDATION_ERROR"),
        (6, "VALIDATION_ERROR"),
    ]
    assert "whole number" in result.errors[1].detail
    assert "NOPE" in result.errors[2].detail
    assert Booking.objects.count() == before
    assert b"Import 2 valid rows" in response.content
    assert response.context["csv_text"] == GOOD + BAD_ROWS


def test_import_after_preview_and_again_is_unchanged(client_in, flows, tenant):
    response = client_in.post(reverse("dashboard:csv-upload"), {"csv_text": GOOD, "action": "import"})
    result = response.context["result"]
    assert (result.dry_run, result.created, result.errors) == (False, 2, [])
    booking = Booking.objects.get(tenant=tenant, external_id="m-2")
    assert (booking.energy_wh, booking.status, booking.lines.count()) == (1001, "final", 4)
    assert sum(booking.lines.values_list("energy_wh", flat=True)) == 1001
    again = upload(client_in, GOOD, "import").context["result"]
    assert (again.created, again.unchanged) == (0, 2)


def test_import_into_a_closed_period_becomes_a_clarification_case(client_in, site, operator, tenant):
    from balance_groups.services import group_close

    group_close(group=site["PV"], actor=operator, until=dt.datetime(2026, 3, 11, tzinfo=dt.UTC))
    result = upload(client_in, GOOD, "import").context["result"]
    assert (result.created, [(e.line, e.code) for e in result.errors]) == (1, [(2, "PERIOD_CLOSED")])
    case = ClarificationCase.objects.get(tenant=tenant)
    assert (case.channel, case.payload["external_id"]) == ("csv", "m-1")


def test_upload_without_a_file_or_with_a_bad_header(client_in, site):
    response = client_in.post(reverse("dashboard:csv-upload"), {"action": "preview"})
    assert response.status_code == 400
    assert response.context["form"].errors["file"] == ["Choose a CSV file."]
    response = upload(client_in, "source,destination,when\n", "preview")
    assert response.status_code == 400
    assert "Unknown column(s): when" in response.context["form"].errors["file"][0]


def test_balance_export_has_local_and_utc_columns(client_in, site, flows):
    url = reverse("dashboard:group-csv", args=[site["APT"].pk])
    response = client_in.get(url, {"from": "2026-03-10", "to": "2026-03-10", "resolution": "15min"})
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="APT_2026-03-10_2026-03-10_15min.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 96
    ten = rows[40]
    assert (ten["start_local"], ten["start_utc"]) == ("2026-03-10T10:00:00+01:00", "2026-03-10T09:00:00Z")
    assert (ten["inflow_wh"], ten["net_wh"], ten["status"]) == ("150", "0", "provisional")
    assert sum(int(row["inflow_wh"]) for row in rows) == 600


def test_balance_export_on_the_spring_dst_day(client_in, site):
    url = reverse("dashboard:group-csv", args=["PV"])
    rows = list(csv.DictReader(io.StringIO(client_in.get(url, {"from": "2026-03-29"}).content.decode())))
    assert len(rows) == 92
    assert rows[8]["start_local"] == "2026-03-29T03:00:00+02:00"
    daily = client_in.get(url, {"from": "2026-03-28", "to": "2026-03-30", "resolution": "1d"}).content.decode()
    assert [row["start_utc"] for row in csv.DictReader(io.StringIO(daily))] == [
        "2026-03-27T23:00:00Z",
        "2026-03-28T23:00:00Z",
        "2026-03-29T22:00:00Z",
    ]


@pytest.mark.parametrize("code", ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)"])
def test_balance_export_never_writes_a_formula(client_in, make_group, code):
    group = make_group(code, "consumer")
    response = client_in.get(reverse("dashboard:group-csv", args=[group.pk]), {"from": "2026-03-10"})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert {row[0] for row in rows[1:]} == {"'" + code}
    assert all(not row[0].startswith(("=", "+", "-", "@")) for row in rows[1:])


def test_balance_export_file_name_cannot_be_injected(client_in, make_group):
    group = make_group("A\";filename*=UTF-8''evil.exe;x=\"", "consumer")
    response = client_in.get(reverse("dashboard:group-csv", args=[group.pk]), {"from": "2026-03-10"})
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="A_;filename*=UTF-8')
    assert disposition.count('"') == 2 and "evil.exe;x=_" in disposition


def test_balance_export_non_ascii_file_name_uses_rfc_6266(client_in, make_group):
    group = make_group("WÄRMEPUMPE", "consumer")
    response = client_in.get(reverse("dashboard:group-csv", args=[group.pk]), {"from": "2026-03-10"})
    assert response["Content-Disposition"] == (
        "attachment; filename*=utf-8''W%C3%84RMEPUMPE_2026-03-10_2026-03-10_15min.csv"
    )


def test_the_booking_import_in_german(client_in, flows):
    page = client_in.get(reverse("dashboard:csv-upload"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "CSV-Import von Viertelstundenwerten" in page and "Vorschau (Probelauf)" in page
    file = SimpleUploadedFile("values.csv", (GOOD + BAD_ROWS).encode(), content_type="text/csv")
    response = client_in.post(
        reverse("dashboard:csv-upload"), {"file": file, "action": "preview"}, HTTP_ACCEPT_LANGUAGE="de"
    )
    page = response.content.decode()
    assert "<strong>5</strong> Zeilen gelesen:" in page
    assert "würden eine vorläufige Buchung ersetzen" in page
    assert "2 gültige Zeilen importieren (abgelehnte Zeilen werden übersprungen)" in page
