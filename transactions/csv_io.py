"""CSV in and out for operators: quarter-hour values in, a group's balance out.

Import columns (header row required, names case-insensitive, comma or semicolon separated):

    source, destination, start, end, energy_wh, status, external_id[, name]

``source``/``destination`` are group codes (or ids; ``source_code``/``destination_code`` are
accepted as header names too); ``start``/``end`` are ISO 8601 instants with offset on
quarter-hours; ``energy_wh`` a whole number of Wh; ``status`` ``provisional`` (default) or
``final``. Rows are validated and written by the bulk service, so a CSV row obeys exactly the
rules of an API item. Row numbers in results are the file's line numbers (the header is line 1).
"""

import csv
import io
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from core.errors import CsvFormatError
from core.quarters import UTC, site_zone
from transactions.bulk import bookings_bulk_ingest

COLUMNS = ("source", "destination", "start", "end", "energy_wh", "status", "external_id", "name")
REQUIRED_COLUMNS = ("source", "destination", "start", "end", "energy_wh")
ALIASES = {"source_code": "source", "destination_code": "destination"}
MAX_ROWS = 100_000
_INTEGER = re.compile(r"^[+-]?\d{1,19}$")  # longer digit strings are refused by the validation


@dataclass
class CsvRowError:
    line: int
    code: str
    detail: str


@dataclass
class CsvImportResult:
    rows: int
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    errors: list[CsvRowError] = field(default_factory=list)
    dry_run: bool = True

    @property
    def accepted(self) -> int:
        return self.created + self.replaced + self.unchanged


def bookings_from_csv(text: str) -> tuple[list[dict], list[int]]:
    """API-shaped items from CSV text, and the file line number of each item."""
    try:
        return _read_rows(text)
    except csv.Error as error:  # a NUL character, a cell beyond the csv module's size limit
        raise CsvFormatError(_("The file cannot be read as CSV: %(error)s.") % {"error": error}) from None


def _read_rows(text: str) -> tuple[list[dict], list[int]]:
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise CsvFormatError(_("The file is empty."))
    first_line = text.splitlines()[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [ALIASES.get(name.strip().lower(), name.strip().lower()) for name in next(reader)]
    unknown = [name for name in header if name and name not in COLUMNS]
    if unknown:
        raise CsvFormatError(
            _("Unknown column(s): %(columns)s. Expected: %(expected)s.")
            % {"columns": ", ".join(unknown), "expected": ", ".join(COLUMNS)}
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise CsvFormatError(
            _("Missing column(s): %(columns)s. Expected: %(expected)s.")
            % {"columns": ", ".join(missing), "expected": ", ".join(COLUMNS)}
        )
    items, lines = [], []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(items) >= MAX_ROWS:
            raise CsvFormatError(_("At most %(max)d rows per file; split it.") % {"max": MAX_ROWS})
        item = {}
        for name, cell in zip(header, row, strict=False):
            value = cell.strip()
            if not name or value == "":
                continue
            if name == "energy_wh" and _INTEGER.match(value):
                item[name] = int(value)
            else:
                # Anything else (e.g. 1.5 or 1,5 Wh) is passed on and refused by the validation.
                item[name] = value
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header) :]):
            item["extra"] = "more cells than columns"  # refused as an unknown field, with its line
        items.append(item)
        lines.append(reader.line_num)
    return items, lines


def csv_import(*, tenant, actor, text: str, dry_run: bool) -> CsvImportResult:
    """Validate (``dry_run``) or import CSV rows through the bulk service; errors per file line."""
    items, lines = bookings_from_csv(text)
    result = CsvImportResult(rows=len(items), dry_run=dry_run)
    if not items:
        return result
    bulk = bookings_bulk_ingest(tenant=tenant, actor=actor, items=items, channel="csv", dry_run=dry_run)
    result.created, result.replaced, result.unchanged = bulk.created, bulk.replaced, bulk.unchanged
    for rejected in sorted(bulk.rejected, key=lambda entry: entry["index"]):
        index = rejected["index"]
        line = lines[index] if 0 <= index < len(lines) else 0
        result.errors.append(CsvRowError(line=line, code=rejected.get("code", "ERROR"), detail=rejected["detail"]))
    return result


BALANCE_COLUMNS = (
    "start_local",
    "end_local",
    "start_utc",
    "end_utc",
    "inflow_wh",
    "outflow_wh",
    "net_wh",
    "status",
)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell):
    """A text cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR
    first) is written with a leading apostrophe; numbers stay numbers."""
    if isinstance(cell, str) and cell.startswith(FORMULA_STARTS):
        return "'" + cell
    return cell


def balance_csv(balance: dict, *, group_code: str) -> str:
    """A group balance (``settlement.selectors.group_balance``) as CSV with local and UTC columns."""
    zone = site_zone()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("group", *BALANCE_COLUMNS))
    for interval in balance["intervals"]:
        writer.writerow(
            (
                spreadsheet_safe(group_code),
                interval["start"].astimezone(zone).isoformat(),
                interval["end"].astimezone(zone).isoformat(),
                _utc(interval["start"]),
                _utc(interval["end"]),
                interval["inflow_wh"],
                interval["outflow_wh"],
                interval["net_wh"],
                interval["status"],
            )
        )
    return out.getvalue()


def _utc(instant) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")
