"""A statement as documents: a printable A4 PDF (ReportLab, fonts embedded), a CSV, a ZIP of PDFs.

Rendering only: every figure comes from ``allocation.statements``. Texts are gettext'd (English
msgids, German in ``locale/de``); numbers and dates are formatted for the document's language.
"""

import csv
import datetime as dt
import io
import os
import re
import zipfile
from decimal import Decimal
from xml.sax.saxutils import escape

import reportlab
from django.utils import timezone, translation
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from core.quarters import site_zone

FONTS = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
pdfmetrics.registerFont(TTFont("BkmSans", os.path.join(FONTS, "Vera.ttf")))
pdfmetrics.registerFont(TTFont("BkmSans-Bold", os.path.join(FONTS, "VeraBd.ttf")))
TEXT = ParagraphStyle("text", fontName="BkmSans", fontSize=9, leading=12)
SMALL = ParagraphStyle("small", parent=TEXT, fontSize=7.5, leading=9.5, textColor=colors.HexColor("#555555"))
TITLE = ParagraphStyle("title", parent=TEXT, fontName="BkmSans-Bold", fontSize=16, leading=20, spaceAfter=2 * mm)
HEADING = ParagraphStyle(
    "heading", parent=TEXT, fontName="BkmSans-Bold", fontSize=10.5, leading=14, spaceBefore=4 * mm, spaceAfter=1.5 * mm
)
BANNER = ParagraphStyle("banner", parent=TEXT, fontName="BkmSans-Bold", fontSize=11, leading=14, textColor=colors.white)
GRID = colors.HexColor("#c9d2de")
PROVISIONAL_COLOUR, FINAL_COLOUR = colors.HexColor("#b35c00"), colors.HexColor("#1f4e79")


def _kwh(wh: int | None) -> str:
    return "" if wh is None else number_format(Decimal(wh) / 1000, 3, use_l10n=True, force_grouping=True)


def _eur(amount: Decimal) -> str:
    return number_format(amount, 2, use_l10n=True, force_grouping=True)


def _day(value: dt.date, language: str) -> str:
    return value.strftime("%d.%m.%Y" if language == "de" else "%Y-%m-%d")


def _local(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(site_zone())


def _period(start: dt.datetime, end: dt.datetime, language: str) -> str:
    """Local days of [start, end): the last day is the one before the end instant."""
    last = _local(end - dt.timedelta(minutes=15)).date()
    return f"{_day(_local(start).date(), language)}\u2013{_day(last, language)}"


def _line_label(line: dict) -> str:
    labels = {"local": _("Local energy"), "residual": _("Residual supply"), "base_fee": _("Base fee")}
    if line["kind"] in labels:
        return labels[line["kind"]]
    if line["kind"] == "correction_local":
        return _("Correction of %(month)s: local energy") % {"month": line["corrects"]}
    return _("Correction of %(month)s: residual supply") % {"month": line["corrects"]}


def _price_places(line: dict) -> int:
    """Cents for a fee; a ct/kWh price with the places it has (27.5, 27.4999), at least one."""
    if line["price_unit"] == "EUR/month":
        return 2
    return max(1, -line["price"].normalize().as_tuple().exponent)


def _price(line: dict) -> str:
    if line["price"] is None:
        return ""
    unit = _("EUR/month") if line["price_unit"] == "EUR/month" else _("ct/kWh")
    return f"{number_format(line['price'], _price_places(line), use_l10n=True)} {unit}"


def _status_reasons(statement: dict) -> list[str]:
    reasons = []
    if not statement["closed"]:
        reasons.append(_("the month is not closed yet"))
    if statement["provisional_quarter_hours"]:
        reasons.append(_("%(count)s provisional quarter-hours") % {"count": statement["provisional_quarter_hours"]})
    if statement["missing_quarter_hours"]:
        reasons.append(_("%(count)s missing quarter-hours") % {"count": statement["missing_quarter_hours"]})
    if not statement["up_to_date"]:
        reasons.append(_("not up to date: a settlement run is pending"))
    return reasons


def _table(rows, widths, *, header=True, numbers_from=1) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0)
    style = [
        ("FONT", (0, 0), (-1, -1), "BkmSans", 8.5),
        ("ALIGN", (numbers_from, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
    if header:
        style += [
            ("FONT", (0, 0), (-1, 0), "BkmSans-Bold", 8.5),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef2f7")),
        ]
    table.setStyle(TableStyle(style))
    return table


def _footer(statement: dict, language: str, generated: str):
    def draw(canvas, doc):
        canvas.saveState()
        canvas.setFont("BkmSans", 7)
        canvas.setFillColor(colors.HexColor("#666666"))
        with translation.override(language):
            text = _("%(consumer)s · %(month)s · generated %(when)s · page %(page)s") % {
                "consumer": statement["consumer_code"],
                "month": statement["month"],
                "when": generated,
                "page": doc.page,
            }
        canvas.drawString(18 * mm, 10 * mm, text)
        canvas.restoreState()

    return draw


def statement_pdf(statement: dict, *, site_name: str, language: str) -> bytes:
    """The statement as a printable A4 PDF in ``language`` (de or en)."""
    with translation.override(language):
        buffer = io.BytesIO()
        title = _("Statement")
        doc = SimpleDocTemplate(
            buffer,
            pagesize=A4,
            leftMargin=18 * mm,
            rightMargin=18 * mm,
            topMargin=16 * mm,
            bottomMargin=18 * mm,
            title=f"{title} {statement['month']} {statement['consumer_code']}",
            author="BKM",
            initialFontName="BkmSans",  # else every page names Helvetica, a font that is not embedded
        )
        final = statement["status"] == "final"
        story = [Paragraph(escape(f"{title} {statement['month']}"), TITLE)]
        banner_text = _("FINAL") if final else _("PROVISIONAL") + ": " + ", ".join(_status_reasons(statement))
        banner = Table([[Paragraph(escape(banner_text), BANNER)]], colWidths=[174 * mm])
        banner.setStyle(
            TableStyle(
                [
                    ("FONT", (0, 0), (-1, -1), "BkmSans-Bold", 11),  # a cell's default is Helvetica, never embedded
                    ("BACKGROUND", (0, 0), (-1, -1), FINAL_COLOUR if final else PROVISIONAL_COLOUR),
                    ("TOPPADDING", (0, 0), (-1, -1), 5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ]
            )
        )
        story += [banner, Spacer(0, 3 * mm)]
        facts = [
            (_("Site"), site_name),
            (_("Consumer"), f"{statement['consumer_name']} ({statement['consumer_code']})"),
            (_("Metering point"), statement["metering_point"] or "\u2013"),
            (_("Period"), _period(statement["start"], statement["end"], language) + f" ({site_zone()})"),
        ]
        story.append(
            _table(
                [[Paragraph(escape(k), TEXT), Paragraph(escape(v), TEXT)] for k, v in facts],
                [40 * mm, 134 * mm],
                header=False,
                numbers_from=2,
            )
        )
        story.append(Paragraph(escape(_("Energy")), HEADING))
        energy = [[_("Item"), "kWh"], [_("Consumption"), _kwh(statement["consumption_wh"])]]
        for part in statement["local"]:
            energy.append([_("Local from %(source)s") % {"source": part["source_name"]}, _kwh(part["energy_wh"])])
        energy += [
            [_("Local energy"), _kwh(statement["local_wh"])],
            [_("Residual supply"), _kwh(statement["residual_wh"])],
        ]
        if statement["unallocated_wh"]:
            energy.append([_("Not allocated (gaps)"), _kwh(statement["unallocated_wh"])])
        share = number_format(statement["local_share_percent"], 1, use_l10n=True)
        energy += [
            [_("Local share"), f"{share} %"],
            [_("Provisional quarter-hours"), str(statement["provisional_quarter_hours"])],
            [_("Missing quarter-hours"), str(statement["missing_quarter_hours"])],
        ]
        story.append(_table(energy, [130 * mm, 44 * mm]))
        if statement["amounts"] is not None:
            story.append(Paragraph(escape(_("Amounts")), HEADING))
            rows = [[_("Item"), _("Period"), "kWh", _("Price"), "EUR"]]
            for line in statement["lines"]:
                rows.append(
                    [
                        _line_label(line),
                        _period(line["start"], line["end"], language),
                        _kwh(line["energy_wh"]),
                        _price(line),
                        _eur(line["amount_eur"]),
                    ]
                )
            rows.append([_("Total"), "", "", "", _eur(statement["amounts"]["total_eur"])])
            table = _table(rows, [42 * mm, 50 * mm, 24 * mm, 32 * mm, 26 * mm], numbers_from=2)
            table.setStyle(TableStyle([("FONT", (0, -1), (-1, -1), "BkmSans-Bold", 9)]))
            story.append(table)
        story.append(Paragraph(escape(_("Per day")), HEADING))
        days = [[_("Day"), _("Consumption") + " kWh", _("Local") + " kWh", _("Residual") + " kWh", _("Status")]]
        for day in statement["days"]:
            days.append(
                [
                    _day(day["date"], language),
                    _kwh(day["consumption_wh"]),
                    _kwh(day["local_wh"]),
                    _kwh(day["residual_wh"]),
                    _("final") if day["status"] == "final" else _("provisional"),
                ]
            )
        story.append(_table(days, [34 * mm, 38 * mm, 34 * mm, 34 * mm, 34 * mm]))
        generated = _local(timezone.now()).strftime("%d.%m.%Y %H:%M" if language == "de" else "%Y-%m-%d %H:%M")
        footer = _footer(statement, language, generated)
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
        return buffer.getvalue()


def statement_csv(statement: dict, *, language: str) -> str:
    """The statement as CSV: German with ``;`` and decimal comma, English with ``,`` and point."""
    with translation.override(language):
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";" if language == "de" else ",", lineterminator="\r\n")
        share = number_format(statement["local_share_percent"], 1, use_l10n=True)
        for key, value in (
            (_("Consumer"), statement["consumer_code"]),
            (_("Name"), statement["consumer_name"]),
            (_("Metering point"), statement["metering_point"] or ""),
            (_("Month"), statement["month"]),
            (_("Status"), _("final") if statement["status"] == "final" else _("provisional")),
            (_("Consumption") + " kWh", number_format(Decimal(statement["consumption_wh"]) / 1000, 3, use_l10n=True)),
            (_("Local energy") + " kWh", number_format(Decimal(statement["local_wh"]) / 1000, 3, use_l10n=True)),
            (_("Residual supply") + " kWh", number_format(Decimal(statement["residual_wh"]) / 1000, 3, use_l10n=True)),
            (_("Local share") + " %", share),
            (_("Provisional quarter-hours"), statement["provisional_quarter_hours"]),
            (_("Missing quarter-hours"), statement["missing_quarter_hours"]),
        ):
            writer.writerow([key, value])
        writer.writerow([])
        writer.writerow([_("Day"), _("Consumption") + " Wh", _("Local") + " Wh", _("Residual") + " Wh", _("Status")])
        for day in statement["days"]:
            writer.writerow(
                [day["date"].isoformat(), day["consumption_wh"], day["local_wh"], day["residual_wh"], day["status"]]
            )
        if statement["amounts"] is not None:
            writer.writerow([])
            writer.writerow([_("Item"), _("From"), _("To"), "Wh", _("Price"), _("Unit"), "EUR"])
            for line in statement["lines"]:
                price = line["price"]
                price = "" if price is None else number_format(price, _price_places(line), use_l10n=True)
                writer.writerow(
                    [
                        _line_label(line),
                        line["start"].isoformat(),
                        line["end"].isoformat(),
                        "" if line["energy_wh"] is None else line["energy_wh"],
                        price,
                        line["price_unit"],
                        number_format(line["amount_eur"], 2, use_l10n=True),
                    ]
                )
            writer.writerow(
                [_("Total"), "", "", "", "", "", number_format(statement["amounts"]["total_eur"], 2, use_l10n=True)]
            )
        return out.getvalue()


def statement_filename(statement: dict, language: str, extension: str) -> str:
    with translation.override(language):
        name = f"{_('Statement')}_{statement['month']}_{statement['consumer_code']}.{extension}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def statements_zip(documents: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in documents:
            archive.writestr(name, data)
    return buffer.getvalue()
