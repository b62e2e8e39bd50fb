"""MSCONS messages: metered quarter-hour values out of an interchange (DOMAIN.md, "MSCONS").

The envelope is checked as it streams by: ``UNB`` first and ``UNZ`` last with the same
reference and the number of messages, each ``UNH`` closed by a ``UNT`` with its reference and
its segment count, every message an MSCONS. A fault there refuses the whole interchange
(``InterchangeError``); a fault in one value refuses that value only (a ``Refusal``), with the
position of its ``QTY`` segment.

Per metering location (``LOC+172``), each ``QTY+<qualifier>:<value>:<unit>`` is followed by
``DTM+163`` (start) and ``DTM+164`` (end) in format 303. Qualifiers: 220 true value (final), 67
substitute, 201 and Z18 estimated (provisional); 187 forecast and 20 unusable are refused, as is
anything else. Units ``KWH`` (whole Wh only, never rounded) and ``WH``; power units and a missing
unit are refused. A time without its UTC offset (format 203) is refused, never guessed, and so is
an interval that is not exactly one quarter-hour.
"""

import calendar
import datetime as dt
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from allocation.models import Quality
from allocation.mscons.reader import InterchangeError, Segment, Syntax, read_segments
from core.quarters import QUARTER_SECONDS
from core.status import Status

QUALIFIERS = {
    "220": Quality.MEASURED.value,
    "67": Quality.SUBSTITUTE.value,
    "201": Quality.ESTIMATED.value,
    "Z18": Quality.ESTIMATED.value,
}
REFUSED_QUALIFIERS = {
    "187": gettext_lazy("QTY qualifier 187 is a forecast, not a metered value."),
    "20": gettext_lazy("QTY qualifier 20 marks the value unusable."),
}
ENERGY_UNITS = {"KWH": 1000, "WH": 1}  # Wh per unit
POWER_UNITS = frozenset({"KWT", "WTT", "MAW", "KW", "W", "MW"})
TIME_303 = re.compile(r"(\d{12})([+-])(\d{2})")


@dataclass(frozen=True, slots=True)
class Value:
    """One metered quarter-hour, as a measurement item would carry it."""

    position: int  # of its QTY segment
    metering_point: str
    start: int  # epoch seconds, UTC
    energy_wh: int
    quality: str
    status: str
    segments: tuple  # the QTY and its DTMs, for the text of a later refusal


@dataclass(frozen=True, slots=True)
class Refusal:
    position: int
    detail: str
    segments: tuple
    metering_point: str = ""


@dataclass
class Envelope:
    """What the interchange says of itself; complete once every segment was read."""

    reference: str = ""
    sender: str = ""
    recipient: str = ""
    messages: int = 0


class _PendingValue:
    __slots__ = ("end", "qty", "segments", "start")

    def __init__(self, qty: Segment):
        self.qty = qty
        self.start: Segment | None = None
        self.end: Segment | None = None
        self.segments = [qty]


def _epoch(dtm: Segment) -> int:
    """A ``DTM`` instant as UTC epoch seconds; raises ValueError with the reason."""
    text, form = dtm.value(1, 1), dtm.value(1, 2)
    if form == "203" or (form == "303" and len(text) == 12 and text.isdigit()):
        raise ValueError(
            _("DTM+%(qualifier)s %(text)s has no UTC offset; a time without it is never guessed.")
            % {"qualifier": dtm.value(1), "text": repr(text)}
        )
    if form != "303":
        raise ValueError(
            _("DTM+%(qualifier)s uses format %(format)s; only 303 (with UTC offset) is read.")
            % {"qualifier": dtm.value(1), "format": form or "(none)"}
        )
    epoch = _instant(text)
    if epoch is None:
        raise ValueError(
            _("DTM+%(qualifier)s %(text)s is not a date and time CCYYMMDDHHMM with a UTC offset (?+ZZ).")
            % {"qualifier": dtm.value(1), "text": repr(text)}
        )
    return epoch


@functools.lru_cache(maxsize=16384)  # an interchange repeats the same few thousand quarter-hour stamps
def _instant(text: str) -> int | None:
    match = TIME_303.fullmatch(text)
    if match is None:
        return None
    digits, sign, hours = match.groups()
    try:
        local = dt.datetime(int(digits[:4]), int(digits[4:6]), int(digits[6:8]), int(digits[8:10]), int(digits[10:12]))
    except ValueError:
        return None
    return calendar.timegm(local.timetuple()) - (1 if sign == "+" else -1) * int(hours) * 3600


def _energy(qty: Segment, decimal_mark: str) -> int:
    """The ``QTY`` quantity in whole Wh; raises ValueError with the reason."""
    text, unit = qty.value(1, 1), qty.value(1, 2).upper()
    if not unit:
        raise ValueError(_("QTY has no unit (older releases omit it); the value is refused, not guessed."))
    if unit in POWER_UNITS:
        raise ValueError(_("QTY unit %(unit)s is power, not energy; send energy in KWH or WH.") % {"unit": unit})
    factor = ENERGY_UNITS.get(unit)
    if factor is None:
        raise ValueError(_("QTY unit %(unit)s is not an energy unit; KWH and WH are read.") % {"unit": repr(unit)})
    if text.startswith("-"):
        raise ValueError(_("QTY %(text)s is negative; metered energy is 0 or more.") % {"text": repr(text)})
    whole, mark, fraction = text.partition(decimal_mark)
    if not whole.isdigit() or not whole.isascii() or (mark and not (fraction.isdigit() and fraction.isascii())):
        other = "." if decimal_mark == "," else ","
        if other in text:
            raise ValueError(
                _("QTY %(text)s uses %(other)s as decimal mark; the interchange declares %(declared)s.")
                % {"text": repr(text), "other": repr(other), "declared": repr(decimal_mark)}
            )
        raise ValueError(_("QTY %(text)s is not a number.") % {"text": repr(text)})
    digits = len(str(factor)) - 1  # decimals that are still whole Wh
    kept, rest = fraction[:digits], fraction[digits:]
    if rest.strip("0"):
        raise ValueError(
            _("QTY %(text)s %(unit)s is not a whole number of Wh; it is refused, never rounded.")
            % {"text": text, "unit": unit}
        )
    return int(whole) * factor + (int(kept.ljust(digits, "0")) if digits else 0)


class MsconsReader:
    """The values of an MSCONS interchange, read once, in order (see the module docstring)."""

    def __init__(self, chunks: Iterable[bytes]):
        self.syntax: Syntax
        self.syntax, self._segments = read_segments(chunks)
        self.envelope = Envelope()
        self.values_read = 0
        self.locations: dict[str, Segment] = {}  # metering point -> its first LOC+172 segment

    def text(self, segments: Iterable[Segment]) -> str:
        return "".join(self.syntax.text(segment) for segment in segments)

    def __iter__(self) -> Iterator[Value | Refusal]:
        segments = self._segments
        first = next(segments, None)
        if first is not None and first.tag == "UNA":
            first = next(segments, None)
        if first is None or first.tag != "UNB":
            raise InterchangeError(_("The interchange does not begin with a UNB segment."))
        self._header(first)
        last = first
        for segment in segments:
            last = segment
            if segment.tag == "UNH":
                yield from self._message(segment, segments)
            elif segment.tag == "UNZ":
                self._trailer(segment)
                break
            elif segment.tag in {"UNG", "UNE"}:
                raise InterchangeError(
                    _("Functional groups (UNG/UNE) are not read; send the messages without them."),
                    segment=segment.position,
                )
            else:
                raise InterchangeError(
                    _("%(tag)s stands outside a message (UNH … UNT).") % {"tag": segment.tag}, segment=segment.position
                )
        else:
            raise InterchangeError(_("The interchange ends without UNZ: the file is truncated."), segment=last.position)
        extra = next(segments, None)
        if extra is not None:
            raise InterchangeError(
                _("%(tag)s follows UNZ; an interchange ends with UNZ.") % {"tag": extra.tag}, segment=extra.position
            )

    def _header(self, unb: Segment) -> None:
        envelope = self.envelope
        envelope.sender, envelope.recipient = unb.value(2), unb.value(3)
        envelope.reference = unb.value(5)
        if not envelope.reference:
            raise InterchangeError(_("UNB has no interchange reference (0020)."), segment=unb.position)

    def _trailer(self, unz: Segment) -> None:
        envelope = self.envelope
        if unz.value(2) != envelope.reference:
            raise InterchangeError(
                _("UNZ reference %(reference)s is not the UNB reference %(expected)s.")
                % {"reference": repr(unz.value(2)), "expected": repr(envelope.reference)},
                segment=unz.position,
            )
        if unz.value(1) != str(envelope.messages):
            raise InterchangeError(
                _("UNZ counts %(counted)s messages; the interchange holds %(count)d.")
                % {"counted": repr(unz.value(1)), "count": envelope.messages},
                segment=unz.position,
            )

    def _message(self, unh: Segment, segments: Iterator[Segment]) -> Iterator[Value | Refusal]:
        reference, kind = unh.value(1), unh.value(2)
        if kind != "MSCONS":
            raise InterchangeError(
                (
                    _("Message %(reference)s is %(kind)s, not MSCONS; only MSCONS interchanges are read here.")
                    % {"reference": repr(reference), "kind": kind}
                    if kind
                    else _("Message %(reference)s has no type; only MSCONS interchanges are read here.")
                    % {"reference": repr(reference)}
                ),
                segment=unh.position,
            )
        self.envelope.messages += 1
        count = 1
        metering_point = ""
        pending: _PendingValue | None = None
        for segment in segments:
            count += 1
            tag = segment.tag
            if tag == "DTM" and pending is not None:
                qualifier = segment.value(1)
                if qualifier in {"163", "164"} and getattr(pending, "start" if qualifier == "163" else "end") is None:
                    setattr(pending, "start" if qualifier == "163" else "end", segment)
                    pending.segments.append(segment)
                    if pending.start is not None and pending.end is not None:
                        yield self._value(pending, metering_point)
                        pending = None
                continue
            if pending is not None and tag in {"QTY", "LIN", "LOC", "UNT", "UNH", "UNZ"}:
                yield Refusal(
                    pending.qty.position,
                    _("No interval (DTM+163 and DTM+164) follows this QTY."),
                    tuple(pending.segments),
                    metering_point,
                )
                pending = None
            if tag == "QTY":
                self.values_read += 1
                if not metering_point:
                    yield Refusal(
                        segment.position, _("This QTY stands before any metering location (LOC+172)."), (segment,)
                    )
                    continue
                pending = _PendingValue(segment)
            elif tag == "LOC":
                metering_point = segment.value(2) if segment.value(1) == "172" else ""
                if metering_point:
                    self.locations.setdefault(metering_point, segment)
            elif tag == "UNT":
                if segment.value(2) != reference:
                    raise InterchangeError(
                        _("UNT reference %(reference)s is not the UNH reference %(expected)s.")
                        % {"reference": repr(segment.value(2)), "expected": repr(reference)},
                        segment=segment.position,
                    )
                if segment.value(1) != str(count):
                    raise InterchangeError(
                        _("UNT counts %(counted)s segments; message %(reference)s has %(count)d (UNH to UNT).")
                        % {"counted": repr(segment.value(1)), "reference": repr(reference), "count": count},
                        segment=segment.position,
                    )
                return
            elif tag in {"UNH", "UNZ"}:
                raise InterchangeError(
                    _("Message %(reference)s has no UNT before %(tag)s.") % {"reference": repr(reference), "tag": tag},
                    segment=segment.position,
                )
        message = _("The interchange ends inside message %(reference)s: the file is truncated.")
        raise InterchangeError(message % {"reference": repr(reference)})

    def _value(self, pending: _PendingValue, metering_point: str) -> Value | Refusal:
        qty = pending.qty
        segments = tuple(pending.segments)
        qualifier = qty.value(1)
        quality = QUALIFIERS.get(qualifier)
        try:
            if quality is None:
                refused = REFUSED_QUALIFIERS.get(qualifier)
                raise ValueError(
                    str(refused)
                    if refused is not None
                    else _("QTY qualifier %(qualifier)s is not a metered value (220, 67, 201, Z18).")
                    % {"qualifier": repr(qualifier)}
                )
            energy = _energy(qty, self.syntax.characters.decimal_point)
            start, end = _epoch(pending.start), _epoch(pending.end)
            if end - start != QUARTER_SECONDS:
                raise ValueError(
                    _(
                        "The interval is %(minutes)s minutes; values are read per quarter-hour only "
                        "(DTM+164 = DTM+163 + 15 minutes)."
                    )
                    % {"minutes": f"{(end - start) / 60:g}"}
                )
        except (ValueError, OverflowError) as error:
            return Refusal(qty.position, str(error), segments, metering_point)
        status = Status.FINAL.value if quality == Quality.MEASURED.value else Status.PROVISIONAL.value
        return Value(qty.position, metering_point, start, energy, quality, status, segments)
