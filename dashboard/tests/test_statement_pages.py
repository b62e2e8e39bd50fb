"""The statement pages: one consumer's month (HTML, PDF, CSV), the site's month with its ZIP, the index."""

import io
import zipfile
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation
from pypdf import PdfReader

from allocation.models import AllocationScheme
from allocation.statements import consumer_statement
from dashboard.templatetags.formatting import kwh
from dashboard.tests.scheme_site import build_scheme_site

pytestmark = pytest.mark.django_db
MARCH = "2026-03"


@pytest.fixture
def scheme_site(site, operator):
    return build_scheme_site(site, operator)


def test_the_statement_page_shows_the_figures(client_in, scheme_site):
    response = client_in.get(reverse("dashboard:statement", args=["APT", MARCH]))
    assert response.status_code == 200
    statement = response.context["statement"]
    assert statement == consumer_statement(group=scheme_site["groups"]["APT"], month=MARCH)
    page = response.content.decode()
    whole, rest = divmod(statement["consumption_wh"], 1000)
    assert f"{whole:,}".replace(",", "\u202f") + f".{rest:03d} kWh" in page
    assert "provisional" in page and statement["status"] == "provisional"
    assert reverse("dashboard:statement-pdf", args=["APT", MARCH]) in page


def test_the_page_speaks_german_when_the_operator_does(client_in, scheme_site):
    response = client_in.get(reverse("dashboard:statement", args=["APT", MARCH]), HTTP_ACCEPT_LANGUAGE="de")
    page = response.content.decode()
    assert '<html lang="de">' in page
    assert "Verbrauch" in page and "vorläufig" in page


def test_the_pdf_and_the_csv_download(client_in, scheme_site):
    pdf = client_in.get(reverse("dashboard:statement-pdf", args=["APT", MARCH]), {"language": "de"})
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert "Abrechnung" in pdf["Content-Disposition"]
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "VORLÄUFIG" in text and "Wohnung" in text
    csv = client_in.get(reverse("dashboard:statement-csv", args=["APT", MARCH]), {"language": "en"})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    assert "2026-03-10" in csv.content.decode()


def test_the_site_month_lists_its_consumers_and_zips_their_pdfs(client_in, scheme_site):
    response = client_in.get(reverse("dashboard:site-month", args=["GRID-CONNECTION", MARCH]))
    assert response.status_code == 200
    assert [s["consumer_code"] for s in response.context["statements"]] == ["APT"]
    assert reverse("dashboard:month-close", args=["GRID-CONNECTION", MARCH]) in response.content.decode()
    archive = client_in.get(reverse("dashboard:site-statements-zip", args=["GRID-CONNECTION", MARCH]))
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert len(names) == 1 and names[0].endswith("APT.pdf")


def test_the_index_leads_to_a_site_month(client_in, scheme_site):
    response = client_in.get(reverse("dashboard:statements"))
    assert response.status_code == 200
    assert [top.code for top in response.context["tops"]] == ["GRID-CONNECTION"]
    site_id = str(scheme_site["groups"]["GRID-CONNECTION"].pk)
    response = client_in.get(reverse("dashboard:statements"), {"site": site_id, "month": MARCH})
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:site-month", args=["GRID-CONNECTION", MARCH])


@pytest.mark.parametrize(
    ("name", "args", "query", "status"),
    [
        ("statement", ["APT", "2026-13"], {}, 400),
        ("statement", ["NOPE", MARCH], {}, 404),
        ("statement", ["PV", MARCH], {}, 404),  # a source has no statement
        ("statement-pdf", ["APT", MARCH], {"language": "fr"}, 400),
        ("statement-csv", ["APT", "März"], {}, 400),
        ("site-month", ["GRID-CONNECTION", "2026-00"], {}, 400),
        ("site-statements-zip", ["SUPPLIER", MARCH], {}, 404),  # nobody below it
        ("statements", [], {"site": "GRID-CONNECTION", "month": "soon"}, 400),
    ],
)
def test_bad_requests_are_refused_with_a_reason(client_in, scheme_site, name, args, query, status):
    response = client_in.get(reverse(f"dashboard:{name}", args=args), query)
    assert response.status_code == status


def test_another_tenants_consumer_is_not_found(client, scheme_site, stranger):
    client.force_login(stranger["user"])
    assert client.get(reverse("dashboard:statement", args=["APT", MARCH])).status_code == 404
    assert client.get(reverse("dashboard:site-month", args=["GRID-CONNECTION", MARCH])).status_code == 404


def german(wh: int) -> str:
    return f"{wh / 1000:,.3f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def test_the_pdf_holds_the_figures_umlauts_and_its_fonts(client_in, scheme_site):
    apt = scheme_site["groups"]["APT"]
    apt.name = "Wohnung Müller (Erdgeschoß)"
    apt.save()
    statement = consumer_statement(group=apt, month=MARCH)
    for language, number, marker, title in (
        ("de", german, "VORLÄUFIG", "Abrechnung"),
        ("en", lambda wh: f"{wh / 1000:,.3f}", "PROVISIONAL", "Statement"),
    ):
        data = client_in.get(reverse("dashboard:statement-pdf", args=["APT", MARCH]), {"language": language}).content
        reader = PdfReader(io.BytesIO(data))
        text = "\n".join(page.extract_text() for page in reader.pages)
        assert f"{title} {MARCH}" in text and marker in text
        assert "Wohnung Müller (Erdgeschoß)" in text
        assert number(statement["consumption_wh"]) in text
        assert number(statement["local_wh"]) in text and number(statement["residual_wh"]) in text
        fonts = [font.get_object() for font in reader.pages[0]["/Resources"]["/Font"].values()]
        embedded = [font for font in fonts if font["/Subtype"] == "/TrueType"]  # the text's fonts: Vera, embedded
        assert {str(font["/BaseFont"]).split("+")[1] for font in embedded} == {
            "BitstreamVeraSans-Roman",
            "BitstreamVeraSans-Bold",
        }
        assert all("/FontFile2" in font["/FontDescriptor"].get_object() for font in embedded)


def test_the_csv_uses_the_languages_separators(client_in, scheme_site):
    statement = consumer_statement(group=scheme_site["groups"]["APT"], month=MARCH)
    de = client_in.get(reverse("dashboard:statement-csv", args=["APT", MARCH]), {"language": "de"}).content.decode()
    en = client_in.get(reverse("dashboard:statement-csv", args=["APT", MARCH]), {"language": "en"}).content.decode()
    assert f"Verbrauch kWh;{german(statement['consumption_wh']).replace('.', '')}" in de
    assert f"Consumption kWh,{statement['consumption_wh'] / 1000:.3f}" in en
    assert f"2026-03-10,{statement['days'][9]['consumption_wh']}," in en


def test_the_compiled_german_catalogue_matches_its_po():
    import gettext

    import polib
    from django.conf import settings

    folder = settings.BASE_DIR / "locale" / "de" / "LC_MESSAGES"
    compiled = gettext.GNUTranslations((folder / "django.mo").open("rb"))
    entries = [entry for entry in polib.pofile(str(folder / "django.po")) if entry.translated()]
    assert entries
    for entry in entries:
        if entry.msgid_plural:
            assert compiled.ngettext(entry.msgid, entry.msgid_plural, 2) == entry.msgstr_plural[1], entry.msgid
        elif entry.msgctxt:
            assert compiled.pgettext(entry.msgctxt, entry.msgid) == entry.msgstr, entry.msgid
        else:
            assert compiled.gettext(entry.msgid) == entry.msgstr, entry.msgid


def test_the_page_shows_prices_and_amounts_in_german(client_in, scheme_site):
    AllocationScheme.objects.filter(code="HAUS").update(
        price_local_ct_per_kwh=Decimal("27.5"),
        price_residual_ct_per_kwh=Decimal("30"),
        base_fee_eur_per_month=Decimal("48.90"),
    )
    response = client_in.get(reverse("dashboard:statement", args=["APT", MARCH]), HTTP_ACCEPT_LANGUAGE="de")
    page = response.content.decode()
    statement = response.context["statement"]
    base_fee = next(line for line in statement["lines"] if line["kind"] == "base_fee")
    assert base_fee["amount_eur"] == Decimal("48.90")
    assert '<td class="num">48,90</td>' in page
    assert "27,5 ct/kWh" in page and "30 ct/kWh" in page and "48,90 EUR/Monat" in page
    assert "<td>01.03.\u201331.03.2026</td>" in page and "01.04.2026 00:00" not in page  # a line ends on its last day
    total = statement["amounts"]["total_eur"]
    assert f'data-testid="total">{total:.2f}</td>'.replace(".", ",") in page
    with translation.override("de"):
        assert f"{kwh(statement['consumption_wh'])} kWh" in page  # three places: the exact figure
    assert "Abrechnung 03/2026" in page and "10.03.2026" in page
    assert f"{statement['local_share_percent']}\u202f%".replace(".", ",") in page


def test_the_site_month_and_the_index_speak_german(client_in, scheme_site):
    AllocationScheme.objects.filter(code="HAUS").update(base_fee_eur_per_month=Decimal("48.90"))
    page = client_in.get(
        reverse("dashboard:site-month", args=["GRID-CONNECTION", MARCH]), HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    assert "Abrechnungen 03/2026" in page and "← 02/2026" in page and "04/2026 →" in page
    assert "Verbrauch (kWh)" in page and "48,90" in page
    index = client_in.get(reverse("dashboard:statements"), HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Abrechnungen" in index and "Monat" in index
