"""The statement as documents: the A4 PDF (text, fonts, banner), the CSV in both languages, the ZIP, the catalogue."""

import csv
import datetime as dt
import gettext
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import polib
import pypdfium2 as pdfium
import pytest
from django.conf import settings
from pypdf import PdfReader

from allocation.measurements import measurements_ingest
from allocation.services import scheme_change
from allocation.statements import consumer_statement
from allocation.tests.conftest import MP_APT
from allocation.tests.test_statements import OCTOBER, PRICES
from core.testing import T0, iso
from dashboard.statement_documents import statement_csv, statement_filename, statement_pdf, statements_zip

NAME = "Wohnung Müller (Erdgeschoß)"
DASH = "\u2013"  # between the first and the last day of a period
SITE = "Mieterstrom Sonnenhof"
CATALOGUE = Path(settings.BASE_DIR) / "locale" / "de" / "LC_MESSAGES"
OUTPUT = Path(settings.BASE_DIR) / "test-output"


@pytest.fixture
def statement(tenant, operator, make_group):
    """APT-1's October: PV shared dynamically with APT-2 over four quarter-hours of 1 October, with prices."""
    pv = make_group("PV", "source", name="PV-Anlage Dach")
    apt1 = make_group("APT-1", "consumer", name=NAME, metering_point=MP_APT)
    apt2 = make_group("APT-2", "consumer", name="Wohnung Schulz")
    grid = make_group("GRID", "balance", name="Netzanschluss")
    scheme_change(
        tenant=tenant,
        actor=operator,
        code="HAUS",
        name="Mieterstrom Haus",
        method="dynamic",
        sources=[pv],
        consumers=[(apt1, 5000), (apt2, 5000)],
        surplus_to=grid,
        residual_from=grid,
        effective_from=T0,
        prices=PRICES,
    )
    series = {pv: [1_000_000, 0, 600_000, 333_000], apt1: [800_000, 500_000, 300_000, 1_000_000], apt2: [400_000] * 4}
    items = [
        {"group": group.code, "start": iso(OCTOBER + dt.timedelta(minutes=15 * i)), "energy_wh": wh, "status": "final"}
        for group, values in series.items()
        for i, wh in enumerate(values)
    ]
    measurements_ingest(tenant=tenant, actor=operator, items=items)
    return consumer_statement(group=apt1, month="2026-10")


def final(statement: dict) -> dict:
    return {**statement, "status": "final", "closed": True, "missing_quarter_hours": 0}


def pdf_text(data: bytes) -> str:
    """The text of every page, whitespace as single spaces (a banner may wrap)."""
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(data)).pages)


pytestmark = pytest.mark.django_db


def test_the_figures_the_documents_show(statement):
    # q0: 1000 kWh for 800 + 400 -> 666.667 kWh; q1 no PV; q2 600 for 300 + 400 -> 257.143; q3 333 for 1000 + 400
    assert (statement["consumption_wh"], statement["local_wh"], statement["residual_wh"]) == (
        2_600_000,
        1_161_667,
        1_438_333,
    )
    assert statement["status"] == "provisional" and statement["missing_quarter_hours"] == 2976
    amounts = [line["amount_eur"] for line in statement["lines"]]
    assert amounts == [Decimal("319.46"), Decimal("559.51"), Decimal("9.90")]
    assert statement["amounts"]["total_eur"] == Decimal("888.87")


def test_the_german_pdf(statement):
    data = statement_pdf(statement, site_name=SITE, language="de")
    text = pdf_text(data)
    assert "Abrechnung 2026-10" in text
    assert NAME in text and "APT-1" in text and MP_APT in text and SITE in text
    assert f"01.10.2026{DASH}31.10.2026 (Europe/Berlin)" in text
    for figure in ("2.600,000", "1.161,667", "1.438,333", "44,7 %", "27,5 ct/kWh", "9,90 EUR/Monat", "888,87"):
        assert figure in text, figure
    assert "VORLÄUFIG: der Monat ist noch nicht abgeschlossen, 2976 fehlende Viertelstunden" in text
    assert "ENDGÜLTIG" not in text and "Lokal aus PV-Anlage Dach" in text
    assert "Seite 1" in text and "erstellt" in text
    metadata = PdfReader(io.BytesIO(data)).metadata
    assert (metadata.title, metadata.author) == ("Abrechnung 2026-10 APT-1", "BKM")


def test_the_english_pdf(statement):
    text = pdf_text(statement_pdf(statement, site_name=SITE, language="en"))
    assert "Statement 2026-10" in text and NAME in text
    assert f"2026-10-01{DASH}2026-10-31" in text
    for figure in ("2,600.000", "1,161.667", "1,438.333", "44.7 %", "38.9 ct/kWh", "9.90 EUR/month", "888.87"):
        assert figure in text, figure
    assert "PROVISIONAL: the month is not closed yet, 2976 missing quarter-hours" in text
    assert "Abrechnung" not in text and "page 1" in text


def test_a_final_statement_says_so_and_has_no_provisional_banner(statement):
    german = pdf_text(statement_pdf(final(statement), site_name=SITE, language="de"))
    assert "ENDGÜLTIG" in german and "VORLÄUFIG" not in german
    english = pdf_text(statement_pdf(final(statement), site_name=SITE, language="en"))
    assert "FINAL" in english and "PROVISIONAL" not in english


def test_every_reason_for_provisional_is_named(statement):
    statement = {**statement, "closed": True, "provisional_quarter_hours": 3, "up_to_date": False}
    text = pdf_text(statement_pdf(statement, site_name=SITE, language="en"))
    assert "the month is not closed" not in text
    assert "3 provisional quarter-hours, 2976 missing quarter-hours, not up to date" in text


def test_a_correction_line_names_the_month_it_corrects(statement):
    start, end = statement["start"], statement["end"]
    line = {"start": start, "end": end, "price": Decimal("27.5"), "price_unit": "ct/kWh", "corrects": "2026-09"}
    lines = [
        {**line, "kind": "correction_local", "energy_wh": -923, "amount_eur": Decimal("-0.25")},
        {**line, "kind": "correction_residual", "energy_wh": 2077, "amount_eur": Decimal("0.81")},
    ]
    german = pdf_text(statement_pdf({**statement, "lines": lines}, site_name=SITE, language="de"))
    assert "Korrektur 2026-09: lokaler Strom" in german and "Korrektur 2026-09: Reststrom (Netzbezug)" in german
    assert "-0,923" in german and "-0,25" in german
    english = statement_csv({**statement, "lines": lines}, language="en")
    assert "Correction of 2026-09: local energy" in english and "Correction of 2026-09: residual supply" in english


def test_a_statement_without_prices_has_no_amounts_table(statement):
    text = pdf_text(statement_pdf({**statement, "lines": [], "amounts": None}, site_name=SITE, language="de"))
    assert "Beträge" not in text and "888,87" not in text
    assert "Verbrauch" in text


def test_markup_characters_in_names_are_text(statement):
    statement = {**statement, "consumer_name": "Müller & Söhne <GmbH>"}
    text = pdf_text(statement_pdf(statement, site_name="Hof & Garten", language="de"))
    assert "Müller & Söhne <GmbH>" in text and "Hof & Garten" in text


def test_the_fonts_are_embedded(statement):
    reader = PdfReader(io.BytesIO(statement_pdf(statement, site_name=SITE, language="de")))
    fonts = [font.get_object() for page in reader.pages for font in page["/Resources"]["/Font"].values()]
    assert fonts
    for font in fonts:
        descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
        assert "/FontFile2" in descendant["/FontDescriptor"].get_object(), font["/BaseFont"]


def read_csv(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def test_the_german_csv(statement):
    rows = read_csv(statement_csv(statement, language="de"), ";")
    header = {row[0]: row[1] for row in rows[:11]}
    assert header["Verbraucher"] == "APT-1" and header["Name"] == NAME and header["Messlokation"] == MP_APT
    assert (header["Monat"], header["Status"]) == ("2026-10", "vorläufig")
    assert (header["Verbrauch kWh"], header["Lokaler Strom kWh"], header["Reststrom (Netzbezug) kWh"]) == (
        "2600,000",
        "1161,667",
        "1438,333",
    )
    assert (header["Lokaler Anteil %"], header["Fehlende Viertelstunden"]) == ("44,7", "2976")
    day = rows.index(["Tag", "Verbrauch Wh", "Lokal Wh", "Reststrom Wh", "Status"])
    assert rows[day + 1] == ["2026-10-01", "2600000", "1161667", "1438333", "provisional"]
    assert len([row for row in rows[day + 1 :] if row and row[0].startswith("2026-10-")]) == 31
    item = rows.index(["Position", "Von", "Bis", "Wh", "Preis", "Einheit", "EUR"])
    assert rows[item + 1][0] == "Lokaler Strom" and rows[item + 1][3:] == ["1161667", "27,5", "ct/kWh", "319,46"]
    assert rows[item + 3][3:] == ["", "9,90", "EUR/month", "9,90"]
    assert rows[-1][0] == "Summe" and rows[-1][-1] == "888,87"


def test_the_english_csv(statement):
    rows = read_csv(statement_csv(statement, language="en"), ",")
    header = {row[0]: row[1] for row in rows[:11]}
    assert (header["Consumer"], header["Name"], header["Status"]) == ("APT-1", NAME, "provisional")
    assert (header["Consumption kWh"], header["Local share %"]) == ("2600.000", "44.7")
    assert rows[rows.index(["Day", "Consumption Wh", "Local Wh", "Residual Wh", "Status"]) + 1][1] == "2600000"
    item = rows.index(["Item", "From", "To", "Wh", "Price", "Unit", "EUR"])
    assert rows[item + 2][0] == "Residual supply" and rows[item + 2][3:] == ["1438333", "38.9", "ct/kWh", "559.51"]
    assert rows[item + 1][1:3] == ["2026-09-30T22:00:00+00:00", "2026-10-31T23:00:00+00:00"]
    assert rows[-1] == ["Total", "", "", "", "", "", "888.87"]


def test_a_csv_without_prices_ends_with_the_days(statement):
    rows = read_csv(statement_csv({**statement, "lines": [], "amounts": None}, language="en"), ",")
    assert rows[-1][0] == "2026-10-31" and ["Total", "", "", "", "", "", "888.87"] not in rows


def test_file_names_and_the_zip(statement):
    assert statement_filename(statement, "de", "pdf") == "Abrechnung_2026-10_APT-1.pdf"
    assert statement_filename(statement, "en", "csv") == "Statement_2026-10_APT-1.csv"
    odd = {**statement, "consumer_code": "WHG/1 Ö"}
    assert statement_filename(odd, "de", "pdf") == "Abrechnung_2026-10_WHG_1__.pdf"
    documents = [
        (statement_filename(statement, lang, "pdf"), statement_pdf(statement, site_name=SITE, language=lang))
        for lang in ("de", "en")
    ]
    documents.append(("Statement_2026-10_APT-1.csv", statement_csv(statement, language="en").encode()))
    archive = zipfile.ZipFile(io.BytesIO(statements_zip(documents)))
    assert archive.namelist() == [name for name, _ in documents]
    assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in archive.infolist())
    assert archive.read(documents[0][0]) == documents[0][1]


@pytest.mark.django_db(False)
def test_the_compiled_catalogue_matches_its_source():
    catalogue = polib.pofile(str(CATALOGUE / "django.po"))
    with open(CATALOGUE / "django.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    keys = [(entry.msgctxt, entry.msgid) for entry in catalogue]
    assert len(keys) == len(set(keys)), "a msgid is in the catalogue twice"
    assert "plural=(n != 1)" in catalogue.metadata["Plural-Forms"]
    assert catalogue.metadata["Content-Type"] == "text/plain; charset=UTF-8"
    checked = 0
    for entry in catalogue:
        if entry.msgid_plural:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 1) == entry.msgstr_plural[0]
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 2) == entry.msgstr_plural[1]
            checked += 1
        elif entry.msgstr and entry.msgctxt:
            assert compiled.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr, entry.msgid
            checked += 1
        elif entry.msgstr:
            assert compiled.gettext(entry.msgid) == entry.msgstr, entry.msgid
            checked += 1
    assert checked == len(catalogue)  # every entry is translated


def test_page_one_renders_to_png_for_a_look(statement):
    OUTPUT.mkdir(exist_ok=True)
    for language in ("de", "en"):
        data = statement_pdf(statement, site_name=SITE, language=language)
        page = pdfium.PdfDocument(data)[0]
        image = page.render(scale=2).to_pil()
        path = OUTPUT / f"statement_{language}.png"
        image.save(path)
        assert abs(image.size[0] - 2 * 595.28) <= 1 and abs(image.size[1] - 2 * 841.89) <= 1  # A4 at scale 2
        assert path.stat().st_size > 10_000
