"""``{{ booking|booking_actions }}``: which row actions a booking list offers (``{% load booking_actions %}``)."""

from django import template

from transactions.selectors import BookingActions
from transactions.selectors import booking_actions as actions_for

register = template.Library()


@register.filter
def booking_actions(booking) -> BookingActions:
    return actions_for(booking)
