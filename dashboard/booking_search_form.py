"""The filters of the booking search: external id, group, local period, kind and status."""

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from balance_groups.selectors import group_get
from core.errors import BkmError
from core.quarters import EARLIEST, LATEST, local_day_bounds
from transactions.models import BookingKind, BookingStatus

# The days the other pages show too (dashboard.views.common): the supported range of instants.
FIRST_DAY, LAST_DAY = EARLIEST.date(), LATEST.date() - dt.timedelta(days=1)

KIND_CHOICES = [("", _("any kind")), *BookingKind.choices]
STATUS_CHOICES = [("", _("any status")), *BookingStatus.choices]
MATCH_CHOICES = [("exact", _("exactly")), ("prefix", _("starts with"))]


class LocalDateInput(forms.DateInput):
    input_type = "date"

    def __init__(self):
        super().__init__(format="%Y-%m-%d")


class BookingSearchForm(forms.Form):
    external_id = forms.CharField(required=False, max_length=200, label=_("External id"))
    match = forms.ChoiceField(required=False, choices=MATCH_CHOICES, label=_("Match"))
    group = forms.CharField(
        required=False,
        max_length=200,
        label=_("Group"),
        help_text=_("Code; as source or destination."),
        widget=forms.TextInput(attrs={"list": "group-codes", "autocomplete": "off"}),
    )
    date_from = forms.DateField(required=False, label=_("First day"), widget=LocalDateInput())
    date_to = forms.DateField(required=False, label=_("Last day"), widget=LocalDateInput())
    kind = forms.ChoiceField(required=False, choices=KIND_CHOICES, label=_("Kind"))
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES, label=_("Status"))

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def clean_group(self):
        code = self.cleaned_data["group"].strip()
        if not code:
            return None
        try:
            return group_get(tenant=self.tenant, ref=code)
        except BkmError:
            raise forms.ValidationError(_("No group with the code %(code)s."), params={"code": code}) from None

    def _clean_day(self, name):
        day = self.cleaned_data[name]
        if day is not None and not FIRST_DAY <= day <= LAST_DAY:
            raise forms.ValidationError(
                _("Choose a day from %(first)s to %(last)s."),
                params={"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
            )
        return day

    def clean_date_from(self):
        return self._clean_day("date_from")

    def clean_date_to(self):
        return self._clean_day("date_to")

    def clean(self):
        cleaned = super().clean()
        first, last = cleaned.get("date_from"), cleaned.get("date_to")
        if first and last and last < first:
            self.add_error("date_to", _("The last day must not be before the first."))
        return cleaned

    def filters(self) -> dict:
        """The valid form as ``booking_search`` arguments; the period in the site's zone, days inclusive."""
        data = self.cleaned_data
        first, last = data.get("date_from"), data.get("date_to")
        return {
            "external_id": data.get("external_id", ""),
            "prefix": data.get("match") == "prefix",
            "group": data.get("group"),
            "start": local_day_bounds(first)[0] if first else None,
            "end": local_day_bounds(last)[1] if last else None,
            "kind": data.get("kind", ""),
            "status": data.get("status", ""),
        }
