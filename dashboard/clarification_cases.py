"""A clarification case as the page shows it: its groups and day, what rebooking would do, the form."""

import datetime as dt
from dataclasses import dataclass, field

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from allocation.models import Quality
from balance_groups.selectors import group_index
from core.errors import BkmError
from core.quarters import QUARTER, local_date, parse_instant
from core.status import Status
from core.text import Message, instant_text
from dashboard.templatetags.formatting import number
from transactions.clarify import CORRECTABLE_FIELDS
from transactions.models import ClarificationReason, ClarificationStatus, ClarificationSubject
from transactions.services import check_bookable


@dataclass
class CaseView:
    """What an operator needs to decide: where the case belongs and which action can succeed."""

    case: object
    groups: list = field(default_factory=list)  # the case's groups, resolved (None: not found)
    start: dt.datetime | None = None
    day: dt.date | None = None
    explanation: str = ""  # what "Rebook" does with this case
    blocked: str = ""  # why it cannot be rebooked as received ("" when it can)
    correctable: bool = False  # whether corrected values can be rebooked
    form: forms.Form | None = None
    corrections: list = field(default_factory=list)  # (field, received, booked) of a corrected case

    @property
    def reason(self) -> str:
        return ClarificationReason(self.case.reason).label

    @property
    def detail(self) -> str:
        """Why the input was refused, in the operator's language where the case kept it as a message."""
        if self.case.detail_message:
            return str(Message.from_json(self.case.detail_message))
        return self.case.detail

    @property
    def status(self) -> str:
        return ClarificationStatus(self.case.status).label

    @property
    def payload_rows(self) -> list[tuple[str, str, str]]:
        return payload_rows(self.case.payload if isinstance(self.case.payload, dict) else {})

    @property
    def rebookable(self) -> bool:
        return not self.blocked


PAYLOAD_LABELS = {
    "external_id": gettext_lazy("External id"),
    "name": gettext_lazy("Name"),
    "group": gettext_lazy("Group or metering point"),
    "metering_point": gettext_lazy("Metering point"),
    "source": gettext_lazy("From group"),
    "destination": gettext_lazy("To group"),
    "start": gettext_lazy("Start"),
    "end": gettext_lazy("End"),
    "energy_wh": gettext_lazy("Energy"),
    "quality": gettext_lazy("Quality"),
    "status": gettext_lazy("Status"),
}
_CHOICES = {"quality": Quality, "status": Status}


def payload_value(name: str, value) -> str:
    """A payload value as people read it: instants local with the zone, Wh grouped, choices named.

    Anything else, and anything that does not parse, is shown exactly as received.
    """
    if name in ("start", "end"):
        instant = _start({"start": value})
        return instant_text(instant) if instant is not None else str(value)
    if name == "energy_wh" and isinstance(value, int) and not isinstance(value, bool):
        return f"{number(value)} Wh"
    if name in _CHOICES and value in _CHOICES[name].values:
        return str(_CHOICES[name](value).label)
    return str(value)


def payload_rows(payload: dict) -> list[tuple[str, str, str]]:
    """(label, shown value, value as received) of each payload field, in the order received."""
    return [
        (str(PAYLOAD_LABELS.get(name, name)), payload_value(name, value), str(value)) for name, value in payload.items()
    ]


def _start(payload: dict) -> dt.datetime | None:
    try:
        return parse_instant(payload.get("start"), "start", aligned=False)
    except (BkmError, TypeError, ValueError, OverflowError, AttributeError):
        return None


def _closed(group, instant: dt.datetime) -> bool:
    return group.closed_until is not None and instant < group.closed_until


def _explain_measurement(view: CaseView, index) -> None:
    case, payload = view.case, view.case.payload
    if case.reason == ClarificationReason.UNKNOWN_METERING_POINT:
        point = str(payload.get("metering_point", ""))
        if index.by_metering_point.get(point) is None:
            view.blocked = _(
                "No group carries the metering point %(metering_point)s yet: set it on a group first, then rebook."
            ) % {"metering_point": point}
        else:
            view.explanation = _(
                "Rebook imports the values of metering point %(metering_point)s from the kept interchange."
            ) % {"metering_point": point}
        return
    group = view.groups[0] if view.groups else None
    view.correctable = group is not None and view.start is not None
    if group is None or view.start is None:
        view.blocked = _("The group or the quarter-hour of this value cannot be read; dismiss the case with a note.")
        view.correctable = False
        return
    end = view.start + QUARTER
    if group.valid_from > view.start or (group.valid_until is not None and group.valid_until < end):
        view.blocked = _(
            "Rebooking is not possible: group %(code)s is not valid at %(quarter)s. Change the group's validity "
            "first, or dismiss the case with a note."
        ) % {"code": group.code, "quarter": instant_text(view.start)}
        view.correctable = False
    elif _closed(group, view.start):
        view.explanation = _(
            "The period of %(code)s is closed until %(closed_until)s. Rebook books this value as a correction "
            "in the first open quarter-hour (final); nothing in the closed period changes."
        ) % {"code": group.code, "closed_until": instant_text(group.closed_until)}
        if payload.get("quality", Quality.MEASURED) != Quality.MEASURED:
            view.blocked = _(
                "A correction of a closed period is booked final, so only a measured value can be booked; "
                "correct the quality to measured or dismiss the case."
            )
    elif case.reason == ClarificationReason.MEASUREMENT_FINAL:
        view.explanation = _(
            "Rebook replaces the final value with this one; the allocation of the quarter-hour is reversed "
            "and booked anew."
        )
    else:
        view.explanation = _("The period is open: Rebook stores the value as a measurement.")


def _explain_booking(view: CaseView) -> None:
    source, destination = [*view.groups, None, None][:2]
    end = _start({"start": view.case.payload.get("end")})
    if source is None or destination is None or view.start is None or end is None:
        view.blocked = _("A group or the period of this booking cannot be read; dismiss the case with a note.")
        return
    try:
        check_bookable(source=source, destination=destination, start=view.start, end=end)
    except BkmError as error:
        view.blocked = _(
            "Rebooking is not possible: %(reason)s A booking is never placed in a closed period or outside a "
            "group's validity; book the energy in an open period and dismiss this case with a note."
        ) % {"reason": error.detail}
        return
    view.explanation = _("Rebook books the energy as a booking now.")
    view.correctable = True


def case_views(cases, *, tenant) -> list[CaseView]:
    """The page's view of each case; groups resolved with one query."""
    index = group_index(tenant=tenant)
    views = []
    for case in cases:
        payload = case.payload if isinstance(case.payload, dict) else {}
        refs = ("group",) if case.subject == ClarificationSubject.MEASUREMENT else ("source", "destination")
        view = CaseView(case=case, start=_start(payload))
        view.groups = [index.get(payload[ref]) if payload.get(ref) else None for ref in refs if ref in payload]
        if view.start is not None:
            view.day = local_date(view.start)
        if case.status == ClarificationStatus.OPEN:
            if case.subject == ClarificationSubject.MEASUREMENT:
                _explain_measurement(view, index)
            else:
                _explain_booking(view)
        elif case.corrected_payload:
            view.corrections = [
                (
                    str(PAYLOAD_LABELS.get(name, name)),
                    payload_value(name, payload.get(name)),
                    payload_value(name, value),
                )
                for name, value in case.corrected_payload.items()
                if payload.get(name) != value
            ]
        views.append(view)
    return views


class ClarificationForm(forms.Form):
    """Resolve one case: rebook it as received, rebook corrected values, or dismiss it with a note."""

    action = forms.ChoiceField(widget=forms.RadioSelect, label=gettext_lazy("Action"))
    energy_wh = forms.IntegerField(
        required=False,
        min_value=0,
        label=gettext_lazy("Corrected energy (Wh)"),
        help_text=gettext_lazy("Whole watt-hours; used with “Correct and rebook”."),
    )
    quality = forms.ChoiceField(required=False, choices=Quality.choices, label=gettext_lazy("Corrected quality"))
    status = forms.ChoiceField(required=False, choices=Status.choices, label=gettext_lazy("Corrected status"))
    note = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=gettext_lazy("Note"),
        help_text=gettext_lazy("Required to dismiss."),
    )

    def __init__(self, *args, view: CaseView, **kwargs):
        payload = view.case.payload if isinstance(view.case.payload, dict) else {}
        kwargs.setdefault("prefix", str(view.case.pk))
        kwargs.setdefault("initial", {name: payload.get(name) for name in ("energy_wh", "quality", "status")})
        super().__init__(*args, **kwargs)
        labels = {"rebook": _("Rebook as received"), "correct": _("Correct and rebook"), "dismiss": _("Dismiss")}
        offered = {"rebook": view.rebookable, "correct": view.correctable, "dismiss": True}
        # Every action is accepted (a page loaded before a close still gets the service's reason),
        # but only those that can succeed are offered.
        self.fields["action"].choices = list(labels.items())
        self.fields["action"].widget.choices = [(value, label) for value, label in labels.items() if offered[value]]
        allowed = CORRECTABLE_FIELDS.get(view.case.subject, ()) if view.correctable else ()
        for name in ("energy_wh", "quality", "status"):
            # Quality and status are corrected where the payload has them; the energy always.
            if name not in allowed or (name != "energy_wh" and name not in payload):
                del self.fields[name]
        if view.case.subject == ClarificationSubject.BOOKING and "energy_wh" in self.fields:
            self.fields["energy_wh"].min_value = 1
            self.fields["energy_wh"].widget.attrs["min"] = 1
        self.payload = payload

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action") != "correct":
            return cleaned
        if "energy_wh" in self.fields and cleaned.get("energy_wh") is None and not self.has_error("energy_wh"):
            self.add_error("energy_wh", _("Enter the corrected energy in Wh."))
        changes = {
            name: cleaned.get(name)
            for name in ("energy_wh", "quality", "status")
            if name in self.fields and cleaned.get(name) not in (None, "")
        }
        if not self.errors and all(self.payload.get(name) == value for name, value in changes.items()):
            raise forms.ValidationError(_("Change at least one value, or choose “Rebook as received”."))
        cleaned["changes"] = changes
        return cleaned
