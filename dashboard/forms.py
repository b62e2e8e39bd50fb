"""Dashboard forms. They parse and present input; the services decide what is allowed.

Instants are typed in the site's local time (an ``<input type="datetime-local">``) or with an
explicit offset. Local times that do not exist (spring DST gap) or exist twice (autumn) are
refused with a clear message, never guessed; alignment to quarter-hours is checked by the
services, never rounded here.
"""

import datetime as dt
import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils import dateformat, formats
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from balance_groups.models import GroupKind
from core.quarters import SUPPORTED_RANGE, UTC, site_zone
from dashboard.templatetags.formatting import INSTANT_FORMATS, local_zone, number
from settlement.models import SettlementInterval

MAX_TARGETS = 3
FULL_SHARE = 10000  # basis points: 100 %


def local_input_value(instant: dt.datetime | None) -> str:
    """An instant as the value of a datetime-local input (site zone)."""
    if instant is None:
        return ""
    try:
        return instant.astimezone(site_zone()).strftime("%Y-%m-%dT%H:%M")
    except OverflowError:  # a stored instant at the edge of time: shown with its offset, refused if sent back
        return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _wall_time(naive: dt.datetime) -> str:
    """A local wall time that is no instant (it does not exist or exists twice) in the language's format."""
    language = "de" if (get_language() or "en").startswith("de") else "en"
    return dateformat.format(naive, INSTANT_FORMATS[language]["datetime"])


class LocalInstantField(forms.Field):
    """An instant typed in site-local time (``2026-03-29T03:00``) or with an offset (``...+02:00``, ``...Z``)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local", "step": "900"}, format="%Y-%m-%dT%H:%M")

    def prepare_value(self, value):
        if isinstance(value, dt.datetime):
            return local_input_value(value)
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            parsed = value
        else:
            text = str(value).strip().replace("z", "Z")
            try:
                parsed = dt.datetime.fromisoformat(text)
            except ValueError:
                raise forms.ValidationError(
                    _("Enter a date and time like 2026-03-29 14:15 (local time) or 2026-03-29T12:15Z."), code="invalid"
                ) from None
        try:
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
            return self._from_local(parsed)
        except OverflowError:  # the first or last hours of year 1 or 9999 have no UTC instant
            raise forms.ValidationError(
                _("%(value)s is outside the supported range (%(range)s).")
                % {"value": parsed.isoformat(timespec="minutes"), "range": SUPPORTED_RANGE},
                code="range",
            ) from None

    @staticmethod
    def _from_local(naive: dt.datetime) -> dt.datetime:
        zone = site_zone()
        first = naive.replace(tzinfo=zone, fold=0)
        second = naive.replace(tzinfo=zone, fold=1)
        if first.utcoffset() != second.utcoffset():
            # Either the hour that repeats in autumn or the hour skipped in spring.
            round_trip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
            if round_trip != naive:
                raise forms.ValidationError(
                    _("%(time)s does not exist in %(zone)s (clocks go forward).")
                    % {"time": _wall_time(naive), "zone": zone.key},
                    code="nonexistent",
                )
            raise forms.ValidationError(
                _("%(time)s occurs twice in %(zone)s; give the offset, e.g. %(first)s or %(second)s.")
                % {
                    "time": _wall_time(naive),
                    "zone": zone.key,
                    "first": f"{naive:%Y-%m-%dT%H:%M}{_offset(first)}",
                    "second": f"{naive:%Y-%m-%dT%H:%M}{_offset(second)}",
                },
                code="ambiguous",
            )
        return first.astimezone(UTC)


def _offset(instant: dt.datetime) -> str:
    text = instant.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


class ZonedForm(forms.Form):
    """Instant fields name the site's zone in their label: ``Valid from (Europe/Berlin)``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field, LocalInstantField) and field.label:
                field.plain_label = field.label
                field.label = gettext("%(label)s (%(zone)s)") % {"label": field.label, "zone": site_zone().key}


def percent_text(share: int) -> str:
    """Basis points as the percent an input shows, in the active language: 10000 -> ``100``, 1250 -> ``12,5``."""
    whole, rest = divmod(int(share), 100)
    if not rest:
        return number(whole)
    return f"{number(whole)}{formats.get_format('DECIMAL_SEPARATOR')}{rest:02d}".rstrip("0")


_PERCENT = re.compile(r"^[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)$")


def percent_to_basis_points(typed: str) -> int:
    """Exact basis points of a percent with up to two decimals (point or comma): ``12,5`` -> 1250.

    A third decimal is refused, never rounded; so is a negative share. The range is the caller's.
    """
    text = typed.strip().removesuffix("%").strip().replace("\u202f", "").replace(" ", "")
    if not _PERCENT.match(text):
        raise forms.ValidationError(_("Enter the share in percent, e.g. 60 or 33.33."), code="invalid")
    percent = Decimal(text.replace(",", "."))
    if percent < 0:
        raise forms.ValidationError(_("A share cannot be negative."), code="negative")
    if percent.as_tuple().exponent < -2:
        raise forms.ValidationError(
            _("%(share)s %% has more than two decimals; shares are given to 0.01 %% (one basis point)."),
            code="decimals",
            params={"share": typed.strip()},
        )
    return int(percent * 100)


class SharePercentField(forms.Field):
    """A parent's share typed in percent (``33.33`` or ``33,33``), cleaned to exact basis points."""

    widget = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off", "size": "7"})

    def prepare_value(self, value):
        if isinstance(value, int):
            return percent_text(value)
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        share = percent_to_basis_points(str(value))
        if not 0 < share <= FULL_SHARE:
            raise forms.ValidationError(_("A share is more than 0 % and at most 100 %."), code="range")
        return share


class GroupCreateForm(ZonedForm):
    code = forms.CharField(
        max_length=64, label=_("Code"), help_text=_("Unique within your organisation, no spaces, e.g. PV-ROOF.")
    )
    name = forms.CharField(max_length=200, label=_("Name"), help_text=_("The speaking name operators see."))
    kind = forms.ChoiceField(choices=GroupKind.choices, label=_("Kind"))
    valid_from = LocalInstantField(label=_("Valid from"), help_text=_("On a quarter-hour (:00, :15, :30, :45)."))
    valid_until = LocalInstantField(
        required=False, label=_("Valid until"), help_text=_("Optional end of validity (exclusive).")
    )
    metering_point = forms.CharField(
        required=False,
        max_length=64,
        label=_("Metering point"),
        help_text=_("Optional MaLo or MeLo id (letters and digits), e.g. DE0001234567890000000000000000001."),
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("valid_from"), cleaned.get("valid_until")
        if start and end and end <= start:
            self.add_error(
                "valid_until",
                gettext("The end of validity must be after its start (%(start)s).") % {"start": local_zone(start)},
            )
        return cleaned


class GroupEditForm(GroupCreateForm):
    kind = None  # a group's kind never changes
    code = forms.CharField(max_length=64, label=_("Code"))
    name = forms.CharField(max_length=200, label=_("Name"))
    valid_from = LocalInstantField(
        label=_("Valid from"), help_text=_("On a quarter-hour. Existing bookings must stay inside the validity.")
    )
    metering_point = forms.CharField(
        required=False,
        max_length=64,
        label=_("Metering point"),
        help_text=_("Optional MaLo or MeLo id; empty: none."),
    )


class GroupCloseForm(ZonedForm):
    until = LocalInstantField(
        required=False,
        label=_("Close until"),
        help_text=_(
            "Every quarter-hour before this instant is closed: no new entries. "
            "Leave empty to close the whole group. Closing never reopens."
        ),
    )

    def __init__(self, *args, closed_until: dt.datetime | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.closed_until = closed_until

    def clean_until(self):
        until = self.cleaned_data.get("until")
        if until is not None and self.closed_until is not None and until < self.closed_until:
            raise forms.ValidationError(
                gettext("The group is already closed until %(instant)s; closing never reopens.")
                % {"instant": local_zone(self.closed_until)},
                code="reopen",
            )
        return until


class FinalizeUntilForm(ZonedForm):
    until = LocalInstantField(
        label=_("Finalize bookings ending by"),
        help_text=_("Every provisional booking of this group that ends by then becomes final."),
    )


class RuleChangeForm(ZonedForm):
    interval = forms.ChoiceField(
        choices=SettlementInterval.choices, label=_("Interval"), help_text=_("How often the net is balanced.")
    )
    effective_from = LocalInstantField(
        required=False,
        label=_("Takes effect"),
        help_text=_("Empty: the next quarter-hour. A change never takes effect earlier."),
    )

    def __init__(self, *args, parents=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "—")] + [(str(group.pk), f"{group.code}: {group.name}") for group in parents]
        for index in range(1, MAX_TARGETS + 1):
            self.fields[f"parent_{index}"] = forms.ChoiceField(
                choices=choices, required=index == 1, label=gettext("Parent balance %(number)s") % {"number": index}
            )
            self.fields[f"share_{index}"] = SharePercentField(
                required=False,
                label=gettext("Share %(number)s (%%)") % {"number": index},
                help_text=gettext("100 % = the whole net") if index == 1 else "",
            )

    def target_rows(self):
        return [(self[f"parent_{i}"], self[f"share_{i}"]) for i in range(1, MAX_TARGETS + 1)]

    def clean(self):
        cleaned = super().clean()
        targets = []
        chosen = {}
        for index in range(1, MAX_TARGETS + 1):
            parent = cleaned.get(f"parent_{index}")
            share = cleaned.get(f"share_{index}")
            if f"share_{index}" in self.errors:
                continue
            if parent and share is None:
                self.add_error(f"share_{index}", gettext("Give the share of this parent in percent."))
            elif share is not None and not parent:
                self.add_error(f"parent_{index}", gettext("Choose the parent this share goes to."))
            elif parent in chosen:
                self.add_error(
                    f"parent_{index}",
                    gettext("This parent is chosen already as parent balance %(number)s.") % {"number": chosen[parent]},
                )
            elif parent:
                chosen[parent] = index
                targets.append((parent, share))
        total = sum(share for _, share in targets)
        if targets and not any(name.startswith(("share_", "parent_")) for name in self.errors) and total != FULL_SHARE:
            self.add_error(
                "share_1",
                gettext("The shares add up to %(total)s %%; they must add up to exactly 100 %%.")
                % {"total": percent_text(total)},
            )
        cleaned["targets"] = targets
        return cleaned


class SettlementRunForm(forms.Form):
    start = LocalInstantField(label=_("Start"))
    end = LocalInstantField(label=_("End"))


class CsvUploadForm(forms.Form):
    file = forms.FileField(required=False, label=_("CSV file"), help_text=_("UTF-8, comma or semicolon separated."))
    csv_text = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            raw = upload.read()
            try:
                cleaned["text"] = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                self.add_error("file", gettext("The file is not UTF-8 text."))
        elif cleaned.get("csv_text"):
            cleaned["text"] = cleaned["csv_text"]
        else:
            self.add_error("file", gettext("Choose a CSV file."))
        return cleaned


class MsconsUploadForm(forms.Form):
    file = forms.FileField(
        required=False,
        label=_("MSCONS interchange"),
        help_text=_("One EDIFACT file (UNA/UNB … UNZ), as the metering point operator sent it."),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("file") is None and "file" not in self.errors:
            self.add_error("file", gettext("Choose an MSCONS file."))
        return cleaned


class PreviewedImportForm(forms.Form):
    """The second step after a preview: import the interchange kept as previewed."""

    NOT_SENT = _("Which interchange to import was not sent; preview the file again.")

    interchange = forms.IntegerField(
        widget=forms.HiddenInput,
        min_value=1,
        max_value=2**63 - 1,  # a larger id is no row's, and the database would refuse to compare it
        error_messages=dict.fromkeys(("required", "invalid", "min_value", "max_value"), NOT_SENT),
    )


def refuse_oversized_upload(form, *, hint: str = "") -> None:
    """The upload handler stopped taking the file (``dashboard.uploads``): say so instead of "no file"."""
    form.is_valid()
    form.errors.pop("file", None)
    size = {"size": settings.UPLOAD_MAX_BYTES // (1024 * 1024)}
    if hint:
        form.add_error("file", gettext("The file is larger than %(size)s MiB; %(hint)s.") % {**size, "hint": hint})
    else:
        form.add_error("file", gettext("The file is larger than %(size)s MiB; split it.") % size)


class BookingFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        label=_("Status"),
        choices=[("", _("any status")), ("provisional", _("provisional")), ("final", _("final"))],
    )
    kind = forms.ChoiceField(
        required=False,
        label=_("Kind"),
        choices=[
            ("", _("any kind")),
            ("manual", _("manual")),
            ("settlement", _("settlement")),
            ("reversal", _("reversal")),
        ],
    )
    window = forms.ChoiceField(
        required=False,
        label=_("Period"),
        choices=[("shown", _("in the shown period")), ("all", _("all periods"))],
        initial="shown",
    )
