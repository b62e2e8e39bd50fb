"""Quarter-hour time arithmetic.

All instants are aware and stored in UTC; local (site) time is only used to cut days.
Arithmetic is always done in UTC, because aware datetimes in one zone subtract in wall-clock
time across a DST change.
"""

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import InvalidInput, InvalidTimeAlignment
from core.text import field_label, instant_text, site_zone

QUARTER = dt.timedelta(minutes=15)
QUARTER_SECONDS = 900
UTC = dt.UTC

RESOLUTIONS = ("15min", "1h", "1d")

# The supported range of every instant the product takes in (API, bulk, CSV, forms, admin, query
# parameters), and the longest window one booking, run or balance request may cover.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=UTC)
SUPPORTED_RANGE = "from 2000-01-01 to 2100-01-01 (UTC)"
MAX_WINDOW_DAYS = 400
MAX_WINDOW = dt.timedelta(days=MAX_WINDOW_DAYS)


def _out_of_range(field: str) -> InvalidInput:
    return InvalidInput.for_field(
        field, _("%(field)s must lie between 2000-01-01 and 2100-01-01 (UTC).") % {"field": field_label(field)}
    )


def is_aligned(instant: dt.datetime) -> bool:
    if instant.second or instant.microsecond:
        return False
    if instant.tzinfo is UTC:
        return instant.minute % 15 == 0
    return int(instant.timestamp()) % QUARTER_SECONDS == 0  # offsets of 30 or 45 minutes exist


def require_supported(instant: dt.datetime, field: str) -> dt.datetime:
    """An instant of the supported range (``EARLIEST`` to ``LATEST``, UTC), or VALIDATION_ERROR."""
    if not EARLIEST <= instant <= LATEST:
        raise _out_of_range(field)
    return instant


def require_aware(instant: dt.datetime, field: str) -> dt.datetime:
    """Return the instant in UTC, within the supported range; a naive datetime is an error, never guessed."""
    if type(instant) is dt.datetime and instant.tzinfo is UTC:
        return require_supported(instant, field)  # the common case: nothing to convert
    if not isinstance(instant, dt.datetime):
        raise InvalidInput.for_field(
            field, _("%(field)s must be a date and time with a UTC offset.") % {"field": field_label(field)}
        )
    if timezone.is_naive(instant):
        message = _("%(field)s has no UTC offset; send e.g. 2026-03-29T00:00:00+01:00 or ...Z.")
        raise InvalidInput.for_field(field, message % {"field": field_label(field)})
    try:
        instant = instant.astimezone(UTC)
    except OverflowError:
        raise _out_of_range(field) from None
    return require_supported(instant, field)


def require_aligned(instant: dt.datetime, field: str) -> dt.datetime:
    """Return the instant in UTC; it must fall on a quarter-hour boundary (never rounded)."""
    instant = require_aware(instant, field)
    if not is_aligned(instant):
        raise InvalidTimeAlignment.for_field(
            field,
            _("%(field)s %(instant)s is not on a quarter-hour boundary (:00, :15, :30, :45).")
            % {"field": field_label(field), "instant": instant_text(instant)},
        )
    return instant


def parse_instant(value, field: str, *, aligned: bool = True) -> dt.datetime:
    """Parse an ISO 8601 instant with offset (or accept an aware datetime)."""
    if isinstance(value, dt.datetime):
        instant = value
    elif isinstance(value, str):
        try:
            instant = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            raise InvalidInput.for_field(
                field,
                _("%(field)s is not an ISO 8601 date and time: %(value)s.")
                % {"field": field_label(field), "value": repr(value[:64])},
            ) from None
    else:
        raise InvalidInput.for_field(
            field, _("%(field)s must be an ISO 8601 date and time.") % {"field": field_label(field)}
        )
    try:
        return require_aligned(instant, field) if aligned else require_aware(instant, field)
    except OverflowError:
        raise _out_of_range(field) from None


def require_window(start: dt.datetime, end: dt.datetime, *, start_field="start", end_field="end"):
    """An aligned window of at most ``MAX_WINDOW_DAYS`` (bookings, runs, balances)."""
    start = require_aligned(start, start_field)
    end = require_aligned(end, end_field)
    if start >= end:
        raise InvalidInput.for_field(end_field, _("The end must be after the start."))
    if end - start > MAX_WINDOW:
        raise InvalidInput.for_field(
            end_field, _("The end may be at most %(days)d days after the start.") % {"days": MAX_WINDOW_DAYS}
        )
    return start, end


def to_epoch(instant: dt.datetime) -> int:
    """Whole seconds since 1970 (UTC): cheap to compare and to store in bulk."""
    return int(instant.timestamp())


def from_epoch(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, UTC)


def floor_quarter(instant: dt.datetime) -> dt.datetime:
    instant = require_aware(instant, "instant")
    seconds = int(instant.timestamp()) // QUARTER_SECONDS * QUARTER_SECONDS
    return dt.datetime.fromtimestamp(seconds, UTC)


def next_quarter_after(instant: dt.datetime | None = None) -> dt.datetime:
    """The first quarter-hour boundary strictly after ``instant`` (default: now)."""
    return floor_quarter(instant or timezone.now()) + QUARTER


def quarter_count(start: dt.datetime, end: dt.datetime) -> int:
    return int((end - start).total_seconds()) // QUARTER_SECONDS


def iter_quarters(start: dt.datetime, end: dt.datetime) -> Iterator[dt.datetime]:
    current = start.astimezone(UTC)
    end = end.astimezone(UTC)
    while current < end:
        yield current
        current += QUARTER


def local_day_bounds(day: dt.date, zone: ZoneInfo | None = None) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of a local calendar day (92, 96 or 100 quarter-hours)."""
    zone = zone or site_zone()
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def local_date(instant: dt.datetime, zone: ZoneInfo | None = None) -> dt.date:
    return instant.astimezone(zone or site_zone()).date()


def bucket_start(instant: dt.datetime, resolution: str, zone: ZoneInfo | None = None) -> dt.datetime:
    """The start (UTC) of the resolution bucket that holds ``instant``."""
    if resolution == "15min":
        return floor_quarter(instant)
    if resolution == "1h":
        return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if resolution == "1d":
        return local_day_bounds(local_date(instant, zone), zone)[0]
    raise _unknown_resolution()


def _unknown_resolution() -> InvalidInput:
    return InvalidInput.for_field(
        "resolution", _("The resolution must be one of %(choices)s.") % {"choices": ", ".join(RESOLUTIONS)}
    )


def boundary_at_or_after(instant: dt.datetime, resolution: str, zone: ZoneInfo | None = None) -> dt.datetime:
    """The first boundary of the resolution's grid (quarter-hour, UTC hour, local day) at or after ``instant``."""
    start = bucket_start(instant, resolution, zone)
    if start == instant:
        return instant
    if resolution == "15min":
        return start + QUARTER
    if resolution == "1h":
        return start + dt.timedelta(hours=1)
    return local_day_bounds(local_date(instant, zone), zone)[1]


def buckets(start: dt.datetime, end: dt.datetime, resolution: str, zone: ZoneInfo | None = None):
    """Consecutive ``(bucket_start, bucket_end)`` pairs covering ``[start, end)``.

    The first and last bucket are clipped to the window, so a window that does not start on a
    bucket boundary is still covered exactly.
    """
    if resolution not in RESOLUTIONS:
        raise _unknown_resolution()
    current = start
    while current < end:
        if resolution == "15min":
            nxt = current + QUARTER
        elif resolution == "1h":
            nxt = bucket_start(current, "1h") + dt.timedelta(hours=1)
        else:
            nxt = local_day_bounds(local_date(current, zone), zone)[1]
        nxt = min(nxt, end)
        yield current, nxt
        current = nxt


def offset_segments(start: dt.datetime, end: dt.datetime, zone: ZoneInfo | None = None) -> list[tuple[int, int]]:
    """``(from epoch, UTC offset seconds)`` of the site zone over ``[start, end)``, a pair per change."""
    zone = zone or site_zone()

    def offset(epoch: int) -> int:
        return int(from_epoch(epoch).astimezone(zone).utcoffset().total_seconds())

    segments = [(to_epoch(start), offset(to_epoch(start)))]
    day = local_date(start, zone)
    while True:
        d0, d1 = local_day_bounds(day, zone)
        if d0 >= end:
            break
        if offset(to_epoch(d1) - QUARTER_SECONDS) != segments[-1][1]:  # changes inside this day
            epoch = to_epoch(d0)
            while offset(epoch) == segments[-1][1]:
                epoch += QUARTER_SECONDS
            segments.append((epoch, offset(epoch)))
        day += dt.timedelta(days=1)
    return segments


def local_month_bounds(year: int, month: int, zone: ZoneInfo | None = None) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of a local calendar month (2,976 quarter-hours in a 31-day month, 4 fewer
    or more in the months of the DST changes)."""
    following = dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)
    return local_day_bounds(dt.date(year, month, 1), zone)[0], local_day_bounds(following, zone)[0]
