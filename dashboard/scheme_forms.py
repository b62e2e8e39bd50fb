"""The allocation scheme form: a first version or the next one.

Sources and consumers are typed one per line (a big site has 200 consumers: a list pasted from a
spreadsheet and edited with the keyboard beats 200 form rows), and every refused line is named by
its number. Shares are percent with up to two decimals (point or comma), converted to basis points
exactly (12.5 % = 1250); a third decimal is refused, never rounded. The service decides what is
allowed.
"""

import re

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from allocation.models import AllocationMethod
from balance_groups.models import GroupKind
from dashboard.forms import FULL_SHARE, LocalInstantField, percent_text, percent_to_basis_points

RESERVED_CODES = ("new",)  # /schemes/new/ is this form: a scheme coded "new" would have no page
MAX_LINE_ERRORS = 10

METHOD_EXPLANATIONS = {
    AllocationMethod.DYNAMIC: gettext_lazy(
        "Each quarter-hour, every source's energy is split in proportion to what each consumer "
        "consumed in that quarter-hour; the shares are kept for information only."
    ),
    AllocationMethod.STATIC: gettext_lazy(
        "Every consumer gets its fixed share of each source's energy, never more than it "
        "consumed; what a share leaves unused is surplus."
    ),
    AllocationMethod.STATIC_REDISTRIBUTED: gettext_lazy(
        "Every consumer gets its fixed share, never more than it consumed; what a share leaves unused is offered "
        "again to the consumers not yet covered, in proportion to their shares, until nothing is left or everyone "
        "is covered."
    ),
}
KIND_WORDS = {
    GroupKind.BALANCE: gettext_lazy("balance group"),
    GroupKind.SOURCE: gettext_lazy("source"),
    GroupKind.CONSUMER: gettext_lazy("consumer"),
}

_CONSUMER_LINE = re.compile(r"^(?P<ref>\S+)\s+(?P<share>[+-]?[0-9]*[.,]?[0-9]*)\s*%?$")


def consumer_lines(consumers) -> str:
    """A version's consumers as the textarea shows them: ``CODE  SHARE`` with the codes padded to one column."""
    width = max((len(c.group.code) for c in consumers), default=0) + 2
    return "\n".join(f"{c.group.code.ljust(width)}{percent_text(c.share)}" for c in consumers)


def _price_field(label, help_text, *, max_digits: int, places: int) -> forms.DecimalField:
    # localize: a German operator types 24,5; a point is read as well.
    return forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=max_digits,
        decimal_places=places,
        localize=True,
        label=label,
        help_text=help_text,
    )


class SchemeForm(forms.Form):
    code = forms.CharField(
        max_length=64,
        label=gettext_lazy("Code"),
        help_text=gettext_lazy("Unique within your organisation; every version of the scheme carries it."),
    )
    name = forms.CharField(
        max_length=200,
        label=gettext_lazy("Name"),
        help_text=gettext_lazy("The speaking name operators see, e.g. Mieterstrom Haus A."),
    )
    method = forms.ChoiceField(
        choices=AllocationMethod.choices,
        widget=forms.RadioSelect,
        label=gettext_lazy("Method"),
    )
    sources = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
        label=gettext_lazy("Sources, in priority order"),
        help_text=gettext_lazy(
            "One source group code per line; the first is allocated first (e.g. PV, then the battery)."
        ),
    )
    consumers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
        label=gettext_lazy("Consumers: one per line, CODE SHARE (share in percent)"),
        help_text=gettext_lazy(
            "E.g. APT-1 25 or APT-2 12.5: a share in percent with up to two decimals (12.34 % = 1234 basis "
            "points); the shares add up to exactly 100 %. The order is kept: a tie goes to the consumer listed first."
        ),
    )
    surplus_to = forms.ChoiceField(
        label=gettext_lazy("Surplus to"),
        help_text=gettext_lazy("Receives generation no participant consumed (grid export)."),
    )
    residual_from = forms.ChoiceField(
        label=gettext_lazy("Residual from"),
        help_text=gettext_lazy("Supplies consumption local generation did not cover (supplier, grid import)."),
    )
    effective_from = LocalInstantField(
        required=False,
        label=gettext_lazy("Takes effect"),
        help_text=gettext_lazy("Local time; empty: the next quarter-hour."),
    )
    price_local_ct_per_kwh = _price_field(
        gettext_lazy("Price of local energy (ct/kWh)"),
        gettext_lazy("Optional; up to four decimals, e.g. 24.5."),
        max_digits=12,
        places=4,
    )
    price_residual_ct_per_kwh = _price_field(
        gettext_lazy("Price of residual supply (ct/kWh)"),
        gettext_lazy("Optional; up to four decimals."),
        max_digits=12,
        places=4,
    )
    base_fee_eur_per_month = _price_field(
        gettext_lazy("Base fee (EUR per month)"), gettext_lazy("Optional; up to two decimals."), max_digits=10, places=2
    )

    def __init__(self, *args, groups, fixed_code: str | None = None, **kwargs):
        """``groups``: the tenant's ``GroupIndex``. ``fixed_code``: a new version of that scheme (no code field)."""
        super().__init__(*args, **kwargs)
        self.groups = groups
        if fixed_code is not None:
            del self.fields["code"]
        lines = (self.data.get("consumers") if self.is_bound else self.initial.get("consumers")) or ""
        self.fields["consumers"].widget.attrs["rows"] = min(max(lines.count("\n") + 2, 8), 24)
        outside = sorted(
            (g for g in groups.by_id.values() if g.kind != GroupKind.CONSUMER), key=lambda g: (g.kind, g.code)
        )
        choices = [("", "—")] + [(str(g.pk), f"{g.code}: {g.name} ({KIND_WORDS[g.kind]})") for g in outside]
        self.fields["surplus_to"].choices = choices
        self.fields["residual_from"].choices = choices

    def clean_code(self):
        code = self.cleaned_data["code"]
        if code in RESERVED_CODES:
            raise forms.ValidationError(
                _("%(code)s is the address of the form for a new scheme; choose another code.") % {"code": repr(code)}
            )
        return code

    def method_rows(self):
        """Each method's radio button with its one-sentence explanation."""
        return [(radio, METHOD_EXPLANATIONS[radio.data["value"]]) for radio in self["method"]]

    def _lines(self, field: str):
        """``(line number, text)`` of the non-empty lines of a textarea."""
        for number, line in enumerate(self.cleaned_data.get(field, "").splitlines(), start=1):
            if line.strip():
                yield number, line.strip()

    def _group(self, ref: str, number: int, seen: dict, errors: list):
        group = self.groups.get(ref)
        if group is None:
            message = _("Line %(line)s: no balance group with code %(code)s.")
            errors.append(message % {"line": number, "code": repr(ref)})
        elif group.pk in seen:
            errors.append(
                _("Line %(line)s: %(code)s is listed already (line %(first)s).")
                % {"line": number, "code": group.code, "first": seen[group.pk]}
            )
        else:
            seen[group.pk] = number
            return group
        return None

    def clean_sources(self):
        sources, seen, errors = [], {}, []
        for number, line in self._lines("sources"):
            group = self._group(line, number, seen, errors)
            if group is not None:
                sources.append(group)
        if errors:
            raise forms.ValidationError(_capped(errors))
        return sources

    def clean_consumers(self):
        consumers, seen, errors = [], {}, []
        for number, line in self._lines("consumers"):
            match = _CONSUMER_LINE.match(line)
            if match is None or not any(ch.isdigit() for ch in match["share"]):
                errors.append(
                    _("Line %(line)s: write the code and the share in percent, e.g. APT-1 12.5.") % {"line": number}
                )
                continue
            try:
                share = percent_to_basis_points(match["share"])
            except forms.ValidationError as problem:
                errors.append(_("Line %(line)s: %(problem)s") % {"line": number, "problem": problem.messages[0]})
                continue
            if share > FULL_SHARE:
                errors.append(
                    _("Line %(line)s: %(share)s %% is more than 100 %%.") % {"line": number, "share": match["share"]}
                )
                continue
            group = self._group(match["ref"], number, seen, errors)
            if group is not None:
                consumers.append((group, share))
        if not errors and consumers:
            total = sum(share for _group, share in consumers)
            if total != FULL_SHARE:
                errors.append(
                    _("The shares add up to %(total)s %%; they must add up to exactly 100 %%.")
                    % {"total": percent_text(total)}
                )
        if errors:
            raise forms.ValidationError(_capped(errors))
        return consumers

    def clean(self):
        cleaned = super().clean()
        for field in ("surplus_to", "residual_from"):
            if cleaned.get(field):
                cleaned[field] = self.groups.get(cleaned[field])
        cleaned["prices"] = {
            field: cleaned.pop(field, None)
            for field in ("price_local_ct_per_kwh", "price_residual_ct_per_kwh", "base_fee_eur_per_month")
        }
        return cleaned


def _capped(errors: list[str]) -> list[str]:
    if len(errors) <= MAX_LINE_ERRORS:
        return errors
    rest = len(errors) - MAX_LINE_ERRORS
    more = ngettext("… and %(count)d more line to correct.", "… and %(count)d more lines to correct.", rest)
    return [*errors[:MAX_LINE_ERRORS], more % {"count": rest}]
