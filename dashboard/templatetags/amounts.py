"""Money, prices and calendar days in the active language (``{% load amounts %}``): ``48,90`` EUR,
``27,5`` ct/kWh, ``10.03.2026``. Energy and instants have their filters in ``formatting``."""

import datetime as dt
from decimal import Decimal

from django import template
from django.utils import dateformat

from dashboard.templatetags.formatting import DASH, INSTANT_FORMATS, _language, number

register = template.Library()
PRICE_PLACES = 4  # prices are stored with four decimals


@register.filter
def eur(value) -> str:
    """A euro amount with two decimals: ``1.234,50`` / ``1,234.50``."""
    if value is None or value == "":
        return DASH
    return number(Decimal(value), 2)


@register.filter
def price(value) -> str:
    """A price without its trailing zeros (stored ``27.5000`` reads ``27,5``), exact to four decimals."""
    if value is None or value == "":
        return DASH
    exact = Decimal(value).quantize(Decimal(1).scaleb(-PRICE_PLACES))
    places = max(0, -exact.normalize().as_tuple().exponent)
    return number(exact, min(places, PRICE_PLACES))


@register.filter
def decimal(value, places=1) -> str:
    """A decimal number in the active language, rounded half-up: ``44,7``."""
    if value is None or value == "":
        return DASH
    return number(Decimal(value), int(places))


@register.filter
def calendar_date(value) -> str:
    """A calendar day (a ``date``, no instant) in the language's date format: ``10.03.2026`` / ``2026-03-10``."""
    if not isinstance(value, dt.date):
        return DASH if value in (None, "") else str(value)
    return dateformat.format(value, INSTANT_FORMATS[_language()]["date"])
