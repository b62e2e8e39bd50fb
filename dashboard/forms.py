"""Dashboard forms. They parse and present input; the services decide what is allowed.

Instants are typed in the site's local time (an ``<input type="datetime-local">``) or with an
explicit offset. Local times that do not exist (spring DST gap) or exist twice (autumn) are
refused with a clear message, never guessed; alignment to quarter-hours is checked by the
services, never rounded here.
"""

import datetime as dt

from django import forms
from django.conf import settings

from balance_groups.models import GroupKind
from core.quarters import SUPPORTED_RANGE, UTC, site_zone
from settlement.models import SettlementInterval

MAX_TARGETS = 3


def local_input_value(instant: dt.datetime | None) -> str:
    """An instant as the value of a datetime-local input (site zone)."""
    if instant is None:
        return ""
    try:
        return instant.astimezone(site_zone()).strftime("%Y-%m-%dT%H:%M")
    except OverflowError:  # a stored instant at the edge of time: shown with its offset, refused if sent back
        return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


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
                    "Enter a date and time like 2026-03-29 14:15 (local time) or 2026-03-29T12:15Z.", code="invalid"
                ) from None
        try:
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
            return self._from_local(parsed)
        except OverflowError:  # the first or last hours of year 1 or 9999 have no UTC instant
            raise forms.ValidationError(
                f"{parsed.isoformat(timespec='minutes')} is outside the supported range ({SUPPORTED_RANGE}).",
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
                    f"{naive:%Y-%m-%d %H:%M} does not exist in {zone} (clocks go forward).", code="nonexistent"
                )
            raise forms.ValidationError(
                f"{naive:%Y-%m-%d %H:%M} occurs twice in {zone}; give the offset, e.g. "
                f"{naive:%Y-%m-%dT%H:%M}{_offset(first)} or {naive:%Y-%m-%dT%H:%M}{_offset(second)}.",
                code="ambiguous",
            )
        return first.astimezone(UTC)


def _offset(instant: dt.datetime) -> str:
    text = instant.strftime("%z")
    return f"{text[:3]}:{text[3:]}"


class GroupCreateForm(forms.Form):
    code = forms.CharField(max_length=64, help_text="Unique within your organisation, no spaces, e.g. PV-ROOF.")
    name = forms.CharField(max_length=200, help_text="The speaking name operators see.")
    kind = forms.ChoiceField(choices=GroupKind.choices)
    valid_from = LocalInstantField(help_text="On a quarter-hour (:00, :15, :30, :45).")
    valid_until = LocalInstantField(required=False, help_text="Optional end of validity (exclusive).")
    metering_point = forms.CharField(
        required=False,
        max_length=64,
        label="Metering point",
        help_text="Optional MaLo or MeLo id (letters and digits), e.g. DE0001234567890000000000000000001.",
    )


class GroupEditForm(forms.Form):
    code = forms.CharField(max_length=64)
    name = forms.CharField(max_length=200)
    valid_from = LocalInstantField(help_text="On a quarter-hour. Existing bookings must stay inside the validity.")
    valid_until = LocalInstantField(required=False, help_text="Optional end of validity (exclusive).")
    metering_point = forms.CharField(
        required=False, max_length=64, label="Metering point", help_text="Optional MaLo or MeLo id; empty: none."
    )


class GroupCloseForm(forms.Form):
    until = LocalInstantField(
        required=False,
        help_text="Every quarter-hour before this instant is closed: no new entries. "
        "Leave empty to close the whole group. Closing never reopens.",
    )


class FinalizeUntilForm(forms.Form):
    until = LocalInstantField(help_text="Every provisional booking of this group that ends by then becomes final.")


class RuleChangeForm(forms.Form):
    interval = forms.ChoiceField(choices=SettlementInterval.choices, help_text="How often the net is balanced.")
    effective_from = LocalInstantField(
        required=False, help_text="Empty: the next quarter-hour. A change never takes effect earlier."
    )

    def __init__(self, *args, parents=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "—")] + [(str(group.pk), f"{group.code}: {group.name}") for group in parents]
        for index in range(1, MAX_TARGETS + 1):
            self.fields[f"parent_{index}"] = forms.ChoiceField(
                choices=choices, required=index == 1, label=f"Parent balance {index}"
            )
            self.fields[f"share_{index}"] = forms.IntegerField(
                min_value=1,
                max_value=10000,
                required=False,
                label=f"Share {index} (basis points)",
                help_text="10000 = 100 %" if index == 1 else "",
            )

    def target_rows(self):
        return [(self[f"parent_{i}"], self[f"share_{i}"]) for i in range(1, MAX_TARGETS + 1)]

    def clean(self):
        cleaned = super().clean()
        targets = []
        for index in range(1, MAX_TARGETS + 1):
            parent = cleaned.get(f"parent_{index}")
            share = cleaned.get(f"share_{index}")
            if parent and share is None:
                self.add_error(f"share_{index}", "Give the share of this parent in basis points.")
            elif share is not None and not parent:
                self.add_error(f"parent_{index}", "Choose the parent this share goes to.")
            elif parent:
                targets.append((parent, share))
        cleaned["targets"] = targets
        return cleaned


class ResolveForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("rebook", "Rebook (book the original input now)"), ("dismiss", "Dismiss")],
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}), help_text="Required to dismiss."
    )


class SettlementRunForm(forms.Form):
    start = LocalInstantField()
    end = LocalInstantField()


class CsvUploadForm(forms.Form):
    file = forms.FileField(required=False, label="CSV file", help_text="UTF-8, comma or semicolon separated.")
    csv_text = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            raw = upload.read()
            try:
                cleaned["text"] = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                self.add_error("file", "The file is not UTF-8 text.")
        elif cleaned.get("csv_text"):
            cleaned["text"] = cleaned["csv_text"]
        else:
            self.add_error("file", "Choose a CSV file.")
        return cleaned


class MsconsUploadForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="MSCONS interchange",
        help_text="One EDIFACT file (UNA/UNB … UNZ), as the metering point operator sent it.",
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("file") is None and "file" not in self.errors:
            self.add_error("file", "Choose an MSCONS file.")
        return cleaned


class PreviewedImportForm(forms.Form):
    """The second step after a preview: import the interchange kept as previewed."""

    NOT_SENT = "Which interchange to import was not sent; preview the file again."

    interchange = forms.IntegerField(
        widget=forms.HiddenInput,
        min_value=1,
        max_value=2**63 - 1,  # a larger id is no row's, and the database would refuse to compare it
        error_messages=dict.fromkeys(("required", "invalid", "min_value", "max_value"), NOT_SENT),
    )


def refuse_oversized_upload(form, *, hint: str = "split it") -> None:
    """The upload handler stopped taking the file (``dashboard.uploads``): say so instead of "no file"."""
    form.is_valid()
    form.errors.pop("file", None)
    form.add_error("file", f"The file is larger than {settings.UPLOAD_MAX_BYTES // (1024 * 1024)} MiB; {hint}.")


class BookingFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False, choices=[("", "any status"), ("provisional", "provisional"), ("final", "final")]
    )
    kind = forms.ChoiceField(
        required=False,
        choices=[("", "any kind"), ("manual", "manual"), ("settlement", "settlement"), ("reversal", "reversal")],
    )
    window = forms.ChoiceField(
        required=False, choices=[("shown", "in the shown period"), ("all", "all periods")], initial="shown"
    )
