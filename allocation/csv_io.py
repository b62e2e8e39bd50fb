"""CSV import of measurements for operators, with the booking import's preview and line numbers.

Columns (header row required, names case-insensitive, comma or semicolon separated like the
booking import):

    group, start, energy_wh[, end][, quality][, status]

``group`` is a group's code, id or metering point (``group_code`` is accepted as a header too);
``start`` (and the optional ``end`` = start + 15 min) ISO 8601 instants with offset on
quarter-hours; ``energy_wh`` a whole number of Wh. A decimal value (``1,5`` or ``0.25`` kWh) is
refused on its line, never converted or rounded. Rows are validated and written by
``measurements_ingest``, so a CSV row obeys exactly the rules of an API item. Line numbers are the
file's (the header is line 1).
"""

import csv
import io
import re

from django.utils.translation import gettext as _

from allocation.measurements import MAX_ITEMS, measurements_ingest
from core.errors import CsvFormatError
from transactions.csv_io import CsvImportResult, CsvRowError

COLUMNS = ("group", "start", "end", "energy_wh", "quality", "status")
REQUIRED_COLUMNS = ("group", "start", "energy_wh")
ALIASES = {"group_code": "group"}
_INTEGER = re.compile(r"^[+-]?\d{1,19}$")  # longer digit strings are refused by the validation
_DECIMAL = re.compile(r"^[+-]?\d*[.,]\d+$")


def measurements_from_csv(text: str) -> tuple[list[dict], list[int], list[CsvRowError]]:
    """API-shaped items, the file line of each, and the lines refused while reading the file."""
    try:
        return _read_rows(text)
    except csv.Error as error:  # a NUL character, a cell beyond the csv module's size limit
        raise CsvFormatError(_("The file cannot be read as CSV: %(error)s.") % {"error": error}) from None


def _header(reader) -> list[str]:
    header = [ALIASES.get(name.strip().lower(), name.strip().lower()) for name in next(reader)]
    expected = ", ".join(COLUMNS)
    unknown = [name for name in header if name and name not in COLUMNS]
    if unknown:
        raise CsvFormatError(
            _("Unknown column(s): %(columns)s. Expected: %(expected)s.")
            % {"columns": ", ".join(unknown), "expected": expected}
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CsvFormatError(
            _("Missing column(s): %(columns)s. Expected: %(expected)s.")
            % {"columns": ", ".join(missing), "expected": expected}
        )
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:
        raise CsvFormatError(_("Column(s) named twice: %(columns)s.") % {"columns": ", ".join(twice)})
    return header


def _read_rows(text: str) -> tuple[list[dict], list[int], list[CsvRowError]]:
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise CsvFormatError(_("The file is empty."))
    first_line = text.splitlines()[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = _header(reader)
    items, lines, errors = [], [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(items) + len(errors) >= MAX_ITEMS:
            raise CsvFormatError(_("At most %(max)d rows per file; split it.") % {"max": MAX_ITEMS})
        line = reader.line_num
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
            counts = {"cells": len(row), "columns": len(header)}
            if delimiter == ",":
                detail = _(
                    "The line has %(cells)d cells but the header names %(columns)d columns. "
                    "A decimal comma in a comma-separated file splits a value in two."
                )
            else:
                detail = _("The line has %(cells)d cells but the header names %(columns)d columns.")
            detail %= counts
            errors.append(CsvRowError(line=line, code="VALIDATION_ERROR", detail=detail))
            continue
        item = {}
        for name, cell in zip(header, row, strict=False):
            value = cell.strip()
            if name and value:
                item[name] = value
        energy = item.get("energy_wh")
        if energy is not None and _INTEGER.match(energy):
            item["energy_wh"] = int(energy)
        elif energy is not None and _DECIMAL.match(energy):
            detail = (
                f"energy_wh {energy!r} is not a whole number of Wh: give watt-hours without decimal or "
                "thousands separators (1234, not 1.234 or 1,5). A kWh value is not converted or rounded."
            )
            errors.append(CsvRowError(line=line, code="VALIDATION_ERROR", detail=detail))
            continue
        # Anything else (a unit, a thousands separator) is passed on and refused by the validation.
        items.append(item)
        lines.append(line)
    return items, lines, errors


def measurements_csv_import(*, tenant, actor, text: str, dry_run: bool) -> CsvImportResult:
    """Validate (``dry_run``) or import CSV rows of measurements; errors per file line."""
    items, lines, errors = measurements_from_csv(text)
    result = CsvImportResult(rows=len(items) + len(errors), dry_run=dry_run, errors=errors)
    if items:
        ingest = measurements_ingest(tenant=tenant, actor=actor, items=items, channel="csv", dry_run=dry_run)
        result.created, result.replaced, result.unchanged = ingest.created, ingest.replaced, ingest.unchanged
        for rejected in ingest.rejected:
            result.errors.append(
                CsvRowError(line=lines[rejected["index"]], code=rejected["code"], detail=rejected["detail"])
            )
    result.errors.sort(key=lambda error: error.line)
    return result
