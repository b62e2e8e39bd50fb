"""Template filters of the dashboard (registered as builtins in settings.TEMPLATES)."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django import template
from django.utils import dateformat, formats
from django.utils.html import format_html
from django.utils.translation import get_language

from core.quarters import site_zone

register = template.Library()
DASH = "\u2013"  # shown for a missing value


# Named instant formats per language (Django date-format characters, so weekdays are translated).
INSTANT_FORMATS = {
    "de": {
        "datetime": "d.m.Y H:i",
        "date": "d.m.Y",
        "day": "d.m.",
        "daytime": "d.m. H:i",
        "weekday": "D d.m.",
        "weekdaytime": "D d.m. H:i",
        "time": "H:i",
        "month": "m/Y",
    },
    "en": {
        "datetime": "Y-m-d H:i",
        "date": "Y-m-d",
        "day": "d M",
        "daytime": "d M H:i",
        "weekday": "D d M",
        "weekdaytime": "D d M H:i",
        "time": "H:i",
        "month": "Y-m",
    },
}


def _language() -> str:
    return "de" if (get_language() or "en").startswith("de") else "en"


def number(value, places: int = 0) -> str:
    """A number in the active language (``1.234,5`` / ``1,234.5``), rounded half-up to ``places``."""
    quantized = Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return formats.number_format(quantized, places, use_l10n=True, force_grouping=True)


@register.filter
def wh(value) -> str:
    """An exact integer Wh amount with the language's thousands separator: ``-12.345`` / ``-12,345``."""
    if value is None or value == "":
        return DASH
    return number(int(value))


@register.filter
def kwh(value, places=3) -> str:
    """Wh shown as kWh, rounded half-up to ``places`` decimals in exact arithmetic, in the active
    language: ``1.234,5``. Three places are exact; tiles and summaries use one."""
    if value is None or value == "":
        return DASH
    return number(Decimal(int(value)) / 1000, int(places))


@register.filter
def energy(value, places=1) -> str:
    """kWh for people with the exact Wh as a tooltip: ``<span title="7.961 Wh">8,0 kWh</span>``."""
    if value is None or value == "":
        return DASH
    return format_html('<span class="energy" title="{} Wh">{}\u00a0kWh</span>', wh(value), kwh(value, places))


@register.filter
def pct(value) -> str:
    """A fraction as a percentage with one decimal: 0.4471 -> ``44,7 %``."""
    if value is None:
        return DASH
    return f"{number(Decimal(str(value)) * 100, 1)}\u202f%"


@register.filter
def local(value, fmt: str = "datetime") -> str:
    """An aware instant in the site's zone, in a named format of the active language (``datetime``,
    ``date``, ``day``, ``daytime``, ``weekday``, ``weekdaytime``, ``time``, ``month``); a stored
    instant at the edge of time is shown in UTC."""
    if not isinstance(value, dt.datetime):
        return DASH if value in (None, "") else str(value)
    try:
        shown = value.astimezone(site_zone())
    except (OverflowError, ValueError):
        return utc(value)
    return dateformat.format(shown, INSTANT_FORMATS[_language()][fmt])


@register.filter
def last_day(end) -> str:
    """The last local day of a window that ends at ``end`` (exclusive): a month ending at
    01.12. 00:00 shows as 30.11.2026."""
    if not isinstance(end, dt.datetime):
        return local(end)
    return local(end - dt.timedelta(minutes=15), "date")


@register.filter
def local_zone(value, fmt: str = "datetime") -> str:
    """``local`` with the zone's abbreviation: ``01.12.2026 14:00 (Europe/Berlin)`` reads unambiguously in an error."""
    if not isinstance(value, dt.datetime):
        return local(value, fmt)
    return f"{local(value, fmt)} ({site_zone().key})"


@register.filter
def utc(value) -> str:
    if not isinstance(value, dt.datetime):
        return DASH
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%MZ")


@register.filter
def share_pct(value) -> str:
    """Basis points as a percentage: 6000 -> ``60 %``, 3333 -> ``33,33 %``."""
    whole, rest = divmod(int(value), 100)
    return f"{number(whole)}\u202f%" if not rest else f"{number(Decimal(int(value)) / 100, 2)}\u202f%"


@register.filter
def seconds(value) -> str:
    """A duration (timedelta) as seconds with two decimals."""
    if not isinstance(value, dt.timedelta):
        return DASH
    return f"{value.total_seconds():.2f}\u202fs"


@register.filter
def a11y(field):
    """Render a form field's widget tied to its help text and errors (``aria-describedby``, ``aria-invalid``)."""
    described_by = []
    if field.help_text:
        described_by.append(f"{field.auto_id}_help")
    if field.errors:
        described_by.append(f"{field.auto_id}_error")
    attrs = {}
    if described_by:
        attrs["aria-describedby"] = " ".join(described_by)
    if field.errors:
        attrs["aria-invalid"] = "true"
    return field.as_widget(attrs=attrs)
