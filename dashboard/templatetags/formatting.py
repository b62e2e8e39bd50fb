"""Template filters of the dashboard (registered as builtins in settings.TEMPLATES)."""

import datetime as dt

from django import template

from core.quarters import site_zone

register = template.Library()
DASH = "\u2013"  # shown for a missing value


@register.filter
def wh(value) -> str:
    """An integer Wh amount with thin-space thousands separators: ``-12 345``."""
    if value is None or value == "":
        return DASH
    number = int(value)
    return ("-" if number < 0 else "") + f"{abs(number):,}".replace(",", "\u202f")


@register.filter
def kwh(value) -> str:
    """Wh shown as kWh with three decimals, computed in integers (no float rounding)."""
    if value is None or value == "":
        return DASH
    number = int(value)
    sign = "-" if number < 0 else ""
    whole, rest = divmod(abs(number), 1000)
    return f"{sign}{whole:,}".replace(",", "\u202f") + f".{rest:03d}"


@register.filter
def pct(value) -> str:
    if value is None:
        return DASH
    return f"{value * 100:.1f}\u202f%"


@register.filter
def local(value, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An aware instant in the site's zone (a stored instant at the edge of time is shown in UTC)."""
    if not isinstance(value, dt.datetime):
        return DASH if value in (None, "") else str(value)
    try:
        return value.astimezone(site_zone()).strftime(fmt)
    except (OverflowError, ValueError):
        return utc(value)


@register.filter
def utc(value) -> str:
    if not isinstance(value, dt.datetime):
        return DASH
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%MZ")


@register.filter
def share_pct(value) -> str:
    """Basis points as a percentage: 6000 -> 60 %."""
    whole, rest = divmod(int(value), 100)
    return f"{whole}\u202f%" if not rest else f"{whole}.{rest:02d}\u202f%"


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
