"""The allocation scheme form: a first version or the next one.

Sources and consumers are typed one per line (a big site has 200 consumers: a list pasted from a
spreadsheet and edited with the keyboard beats 200 form rows), and every refused line is named by
its number. Shares are percent with up to two decimals, converted to basis points exactly
(12.5 % = 1250); a third decimal is refused, never rounded. The service decides what is allowed.
"""

import re
from decimal import Decimal

from django import forms

from allocation.models import AllocationMethod
from balance_groups.models import GroupKind
from dashboard.forms import LocalInstantField

FULL_SHARE = 10000
RESERVED_CODES = ("new",)  # /schemes/new/ is this form: a scheme coded "new" would have no page
MAX_LINE_ERRORS = 10

METHOD_EXPLANATIONS = {
    AllocationMethod.DYNAMIC: "Each quarter-hour, every source's energy is split in proportion to what each consumer "
    "consumed in that quarter-hour; the shares are kept for information only.",
    AllocationMethod.STATIC: "Every consumer gets its fixed share of each source's energy, never more than it "
    "consumed; what a share leaves unused is surplus.",
    AllocationMethod.STATIC_REDISTRIBUTED: "Every consumer gets its fixed share, never more than it consumed; what a "
    "share leaves unused is offered again to the consumers not yet covered, in proportion to their shares, until "
    "nothing is left or everyone is covered.",
}

_CONSUMER_LINE = re.compile(r"^(?P<ref>\S+)\s+(?P<share>[+-]?[0-9]*[.,]?[0-9]*)\s*%?$")


def percent_text(share: int) -> str:
    """Basis points as the percent a consumer line carries: 5000 -> ``50``, 1250 -> ``12.5``, 1 -> ``0.01``."""
    whole, rest = divmod(share, 100)
    return str(whole) if not rest else f"{whole}.{rest:02d}".rstrip("0")


def consumer_lines(consumers) -> str:
    """A version's consumers as the textarea shows them: ``CODE  SHARE`` with the codes padded to one column."""
    width = max((len(c.group.code) for c in consumers), default=0) + 2
    return "\n".join(f"{c.group.code.ljust(width)}{percent_text(c.share)}" for c in consumers)


def _percent_to_basis_points(text: str) -> int | str:
    """Exact basis points of a percent (digits with one optional decimal point or comma), or why it is no share."""
    text = text.replace(",", ".")
    value = Decimal(text)
    if value < 0:
        return "a share cannot be negative."
    if value.as_tuple().exponent < -2:
        return f"{text} % has more than two decimals; shares are given to 0.01 % (one basis point)."
    if value > 100:
        return f"{text} % is more than 100 %."
    return int(value * 100)


class SchemeForm(forms.Form):
    code = forms.CharField(
        max_length=64, help_text="Unique within your organisation; every version of the scheme carries it."
    )
    name = forms.CharField(max_length=200, help_text="The speaking name operators see, e.g. Mieterstrom Haus A.")
    method = forms.ChoiceField(choices=AllocationMethod.choices, widget=forms.RadioSelect, label="Method")
    sources = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono", "spellcheck": "false"}),
        label="Sources, in priority order",
        help_text="One source group code per line; the first is allocated first (e.g. PV, then the battery).",
    )
    consumers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
        label="Consumers: one per line, CODE SHARE (share in percent)",
        help_text="E.g. APT-1 25 or APT-2 12.5: a share in percent with up to two decimals (12.34 % = 1234 basis "
        "points); the shares add up to exactly 100 %. The order is kept: a tie goes to the consumer listed first.",
    )
    surplus_to = forms.ChoiceField(
        label="Surplus to", help_text="Receives generation no participant consumed (grid export)."
    )
    residual_from = forms.ChoiceField(
        label="Residual from", help_text="Supplies consumption local generation did not cover (supplier, grid import)."
    )
    effective_from = LocalInstantField(required=False, label="Takes effect", help_text="Empty: the next quarter-hour.")
    price_local_ct_per_kwh = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=4,
        label="Price of local energy (ct/kWh)",
        help_text="Optional; up to four decimals, e.g. 24.5.",
    )
    price_residual_ct_per_kwh = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=4,
        label="Price of residual supply (ct/kWh)",
        help_text="Optional; up to four decimals.",
    )
    base_fee_eur_per_month = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        label="Base fee (EUR per month)",
        help_text="Optional; up to two decimals.",
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
        choices = [("", "—")] + [(str(g.pk), f"{g.code}: {g.name} ({g.get_kind_display().lower()})") for g in outside]
        self.fields["surplus_to"].choices = choices
        self.fields["residual_from"].choices = choices

    def clean_code(self):
        code = self.cleaned_data["code"]
        if code in RESERVED_CODES:
            raise forms.ValidationError(f"{code!r} is the address of the form for a new scheme; choose another code.")
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
            errors.append(f"Line {number}: no balance group with code {ref!r}.")
        elif group.pk in seen:
            errors.append(f"Line {number}: {group.code} is listed already (line {seen[group.pk]}).")
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
                errors.append(f"Line {number}: write the code and the share in percent, e.g. APT-1 12.5.")
                continue
            share = _percent_to_basis_points(match["share"])
            if isinstance(share, str):
                errors.append(f"Line {number}: {share}")
                continue
            group = self._group(match["ref"], number, seen, errors)
            if group is not None:
                consumers.append((group, share))
        if not errors and consumers:
            total = sum(share for _, share in consumers)
            if total != FULL_SHARE:
                errors.append(f"The shares add up to {percent_text(total)} %; they must add up to exactly 100 %.")
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
    return [*errors[:MAX_LINE_ERRORS], f"… and {len(errors) - MAX_LINE_ERRORS} more lines to correct."]
