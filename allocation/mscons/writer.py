"""MSCONS interchanges written the way a metering point operator sends them.

For the tests, the benchmark and the demo's sample file: every variant the reader must handle
(separators, decimal mark, character set, qualifiers, units, formats) can be written on purpose,
and so can faults (``unt_offset``, ``unz_reference``).
"""

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

DEFAULT_UNA = ":+.? '"


@dataclass(frozen=True)
class Reading:
    metering_point: str
    start: dt.datetime  # aware
    quantity: str  # with "." as decimal mark; written with the interchange's
    qualifier: str = "220"
    unit: str | None = "KWH"
    minutes: int = 15
    offset_hours: int | None = 0  # None: format 203, no offset
    date_format: str = "303"


def _stamp(instant: dt.datetime, offset_hours: int | None) -> str:
    if offset_hours is None:
        return instant.astimezone(dt.UTC).strftime("%Y%m%d%H%M")
    local = instant.astimezone(dt.timezone(dt.timedelta(hours=offset_hours)))
    return f"{local:%Y%m%d%H%M}{'+' if offset_hours >= 0 else '-'}{abs(offset_hours):02d}"


class _Writer:
    def __init__(self, una: str):
        self.component, self.data, self.decimal, self.release, _, self.terminator = una

    def escape(self, text: str) -> str:
        for char in (self.release, self.component, self.data, self.terminator):
            text = text.replace(char, self.release + char)
        return text

    def segment(self, tag: str, *elements) -> str:
        parts = [tag]
        for element in elements:
            if isinstance(element, (list, tuple)):
                parts.append(self.component.join(self.escape(str(c)) for c in element))
            else:
                parts.append(self.escape(str(element)))
        return self.data.join(parts) + self.terminator


def message_segments(writer: _Writer, reference: str, readings: Iterable[Reading], *, name: str) -> Iterator[str]:
    """The segments of one MSCONS message, UNH to the last value (UNT is the caller's: it counts)."""
    yield writer.segment("UNH", reference, ["MSCONS", "D", "04B", "UN", "2.4c"])
    yield writer.segment("BGM", "7", f"MSG{reference}", "9")
    yield writer.segment("DTM", ["137", "202612020600+00", "303"])
    yield writer.segment("NAD", "MS", ["9900000000003", "", "293"], "", name)
    yield writer.segment("UNS", "D")
    yield writer.segment("NAD", "DP")
    current = None
    for reading in readings:
        if reading.metering_point != current:
            current = reading.metering_point
            yield writer.segment("LOC", "172", current)
            yield writer.segment("LIN", "1")
            yield writer.segment("PIA", "5", ["1-1:1.29.0", "SRW"])
        quantity = [reading.qualifier, reading.quantity.replace(".", writer.decimal)]
        if reading.unit is not None:
            quantity.append(reading.unit)
        yield writer.segment("QTY", quantity)
        end = reading.start + dt.timedelta(minutes=reading.minutes)
        yield writer.segment("DTM", ["163", _stamp(reading.start, reading.offset_hours), reading.date_format])
        yield writer.segment("DTM", ["164", _stamp(end, reading.offset_hours), reading.date_format])


def iter_interchange(
    messages: Iterable[Iterable[Reading]],
    *,
    una: str | None = DEFAULT_UNA,
    syntax: str = "UNOC",
    encoding: str = "iso-8859-1",
    reference: str = "REF0001",
    name: str = "Messstellenbetrieb Köln",
    unt_offset: int = 0,
    unz_reference: str | None = None,
    newline: str = "\n",
) -> Iterator[bytes]:
    """The interchange's bytes, a message at a time."""
    writer = _Writer(una or ":+,? '")
    head = f"UNA{una}{newline}" if una else ""
    head += (
        writer.segment(
            "UNB", [syntax, "3"], ["9900000000003", "500"], ["9900000000010", "500"], ["261202", "0600"], reference
        )
        + newline
    )
    yield head.encode(encoding)
    count = 0
    for count, readings in enumerate(messages, start=1):
        lines, segments = [], 0
        for text in message_segments(writer, str(count), readings, name=name):
            lines.append(text + newline)
            segments += 1
        lines.append(writer.segment("UNT", segments + 1 + unt_offset, str(count)) + newline)
        yield "".join(lines).encode(encoding)
    yield (writer.segment("UNZ", count, unz_reference or reference) + newline).encode(encoding)


def write_interchange(messages: Iterable[Iterable[Reading]], **options) -> bytes:
    return b"".join(iter_interchange(messages, **options))
