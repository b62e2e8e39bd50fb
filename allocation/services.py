"""Writes of the allocation app: scheme versions, and resolving a measurement's clarification case.

Measurements themselves are written by ``allocation.measurements``; the allocation bookings by the
engine, inside every settlement unit (``allocation.engine.unit``).
"""

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from allocation.corrections import correction_book
from allocation.measurements import measurements_ingest
from allocation.models import AllocationMethod, AllocationScheme, Measurement, SchemeConsumer, SchemeSource
from allocation.mscons.services import mscons_rebook
from balance_groups.audit import actor_label, audit_record
from balance_groups.models import AuditAction, BalanceGroup, GroupKind
from core.db import advisory_xact_lock
from core.errors import InvalidInput, MeasurementFinal, PeriodClosed
from core.quarters import QUARTER, next_quarter_after, require_aligned
from core.text import instant_text, require_clean_text
from settlement.dirty import mark_changed
from transactions.models import ClarificationReason

FULL_SHARE = 10000
SCHEME_LOCK = 0x424B4D53  # "BKMS": scheme changes of one tenant, one at a time (overlap checks)
PRICE_FIELDS = ("price_local_ct_per_kwh", "price_residual_ct_per_kwh", "base_fee_eur_per_month")
# Each field as the subject of a message.
PRICE_LABELS = {
    "price_local_ct_per_kwh": gettext_lazy("The price of local energy"),
    "price_residual_ct_per_kwh": gettext_lazy("The price of residual energy"),
    "base_fee_eur_per_month": gettext_lazy("The monthly base fee"),
}
TEXT_REQUIRED = {"code": gettext_lazy("A code is required."), "name": gettext_lazy("A name is required.")}
TEXT_TOO_LONG = {
    "code": gettext_lazy("The code may have at most %(limit)d characters."),
    "name": gettext_lazy("The name may have at most %(limit)d characters."),
}


def _text(value, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput.for_field(field, str(TEXT_REQUIRED[field]))
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput.for_field(field, str(TEXT_TOO_LONG[field]) % {"limit": limit})
    return require_clean_text(value, field)


def _same_tenant(tenant, group: BalanceGroup, field: str) -> None:
    if group.tenant_id != tenant.pk:
        raise InvalidInput.for_field(field, _("Balance group not found."))


def _validate_participants(tenant, sources, consumers, surplus_to, residual_from) -> None:
    if not sources:
        raise InvalidInput.for_field("sources", _("At least one source is required."))
    if not consumers:
        raise InvalidInput.for_field("consumers", _("At least one consumer is required."))
    for group in sources:
        _same_tenant(tenant, group, "sources")
        if group.kind != GroupKind.SOURCE:
            raise InvalidInput.for_field(
                "sources",
                _("%(code)s is not a source; only groups of kind source can be sources.") % {"code": group.code},
            )
    if len({g.pk for g in sources}) != len(sources):
        raise InvalidInput.for_field("sources", _("A source is named twice."))
    for group, share in consumers:
        _same_tenant(tenant, group, "consumers")
        if group.kind != GroupKind.CONSUMER:
            raise InvalidInput.for_field(
                "consumers",
                _("%(code)s is not a consumer; only groups of kind consumer can be consumers.") % {"code": group.code},
            )
        if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= FULL_SHARE:
            raise InvalidInput.for_field(
                "consumers", _("Each share is a whole number of basis points from 0 to 10000.")
            )
    if len({g.pk for g, _share in consumers}) != len(consumers):
        raise InvalidInput.for_field("consumers", _("A consumer is named twice."))
    if sum(share for _group, share in consumers) != FULL_SHARE:
        raise InvalidInput.for_field("consumers", _("Shares must sum to 10000 basis points."))
    participants = {g.pk for g in sources} | {g.pk for g, _share in consumers}
    roles = (
        (
            "surplus_to",
            surplus_to,
            _("The group that takes the surplus is required."),
            _("%(code)s takes part in the scheme; the surplus must go to another group."),
        ),
        (
            "residual_from",
            residual_from,
            _("The group that supplies the residual energy is required."),
            _("%(code)s takes part in the scheme; the residual energy must come from another group."),
        ),
    )
    for field, group, required, participating in roles:
        if group is None:
            raise InvalidInput.for_field(field, required)
        _same_tenant(tenant, group, field)
        if group.pk in participants:
            raise InvalidInput.for_field(field, participating % {"code": group.code})


def _validate_prices(prices: dict) -> dict:
    cleaned = {}
    for field in PRICE_FIELDS:
        value = prices.get(field)
        if value is None:
            cleaned[field] = None
            continue
        if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
            raise InvalidInput.for_field(
                field, _("%(field)s must be a decimal number of 0 or more.") % {"field": PRICE_LABELS[field]}
            )
        places = 2 if field == "base_fee_eur_per_month" else 4
        # The range first: quantizing a value of more digits than the context holds raises.
        if value >= Decimal(10) ** 8 or value != value.quantize(Decimal(1).scaleb(-places)):
            raise InvalidInput.for_field(
                field,
                _("%(field)s has at most 8 digits before and %(places)d after the decimal point.")
                % {"field": PRICE_LABELS[field], "places": places},
            )
        cleaned[field] = value
    return cleaned


def _overlapping_participation(tenant, code: str, group_ids: set, effective_from: dt.datetime, role) -> list[str]:
    """Codes of groups that already take part (as ``role``) in another scheme at or after ``effective_from``."""
    model = SchemeConsumer if role == "consumers" else SchemeSource
    taken = (
        model.objects.filter(scheme__tenant=tenant, group_id__in=group_ids)
        .exclude(scheme__code=code)
        .filter(Q(scheme__effective_until__isnull=True) | Q(scheme__effective_until__gt=effective_from))
        .values_list("group__code", "scheme__code")
    )
    return sorted({f"{group} (in {scheme})" for group, scheme in taken})


@transaction.atomic
def scheme_change(
    *,
    tenant,
    actor,
    code: str,
    name: str,
    method: str,
    sources: list[BalanceGroup],
    consumers: list[tuple[BalanceGroup, int]],
    surplus_to: BalanceGroup | None,
    residual_from: BalanceGroup | None,
    effective_from: dt.datetime | None = None,
    prices: dict | None = None,
    now: dt.datetime | None = None,
) -> AllocationScheme:
    """Add a version of the scheme ``code`` (its first version, or the next one).

    A first version may start at the latest ``valid_from`` of its groups; a later one no earlier
    than the next quarter-hour boundary after now, and after the version before it, which it ends.
    A consumer or source may take part in one scheme at a time.
    """
    advisory_xact_lock(SCHEME_LOCK, tenant.pk)
    code = _text(code, "code", 64)
    name = _text(name, "name", 200)
    if method not in AllocationMethod.values:
        raise InvalidInput.for_field(
            "method", _("The method must be one of %(choices)s.") % {"choices": ", ".join(AllocationMethod.values)}
        )
    _validate_participants(tenant, sources, consumers, surplus_to, residual_from)
    prices = _validate_prices(prices or {})
    earliest_change = next_quarter_after(now)
    effective_from = earliest_change if effective_from is None else require_aligned(effective_from, "effective_from")
    latest = AllocationScheme.objects.filter(tenant=tenant, code=code).order_by("-effective_from").first()
    groups = [*sources, *(g for g, _share in consumers), surplus_to, residual_from]
    if latest is None:
        first_valid = max(g.valid_from for g in groups)
        if effective_from < first_valid:
            raise InvalidInput.for_field(
                "effective_from",
                _("The first version may start when all its groups are valid (%(valid_from)s) at the earliest.")
                % {"valid_from": instant_text(first_valid)},
            )
    elif effective_from < earliest_change or effective_from <= latest.effective_from:
        earliest = max(earliest_change, latest.effective_from + QUARTER)
        raise InvalidInput.for_field(
            "effective_from",
            _("A new version takes effect at %(earliest)s at the earliest; schemes never change retroactively.")
            % {"earliest": instant_text(earliest)},
        )
    for role, ids in (("consumers", {g.pk for g, _share in consumers}), ("sources", {g.pk for g in sources})):
        taken = _overlapping_participation(tenant, code, ids, effective_from, role)
        if taken:
            raise InvalidInput.for_field(
                role, _("Already in another scheme at that time: %(codes)s.") % {"codes": ", ".join(taken)}
            )

    if latest is not None:
        latest.effective_until = effective_from
        latest.save(update_fields=["effective_until"])
    scheme = AllocationScheme.objects.create(
        tenant=tenant,
        code=code,
        name=name,
        method=method,
        surplus_to=surplus_to,
        residual_from=residual_from,
        effective_from=effective_from,
        created_by=actor_label(actor),
        **prices,
    )
    SchemeSource.objects.bulk_create(
        [SchemeSource(scheme=scheme, group=group, position=i) for i, group in enumerate(sources)]
    )
    SchemeConsumer.objects.bulk_create(
        [
            SchemeConsumer(scheme=scheme, group=group, share=share, position=i)
            for i, (group, share) in enumerate(consumers)
        ]
    )
    audit_record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.SCHEME_CHANGE,
        obj=scheme,
        data={
            "code": code,
            "method": method,
            "effective_from": effective_from.isoformat(),
            "sources": [g.code for g in sources],
            "consumers": {g.code: share for g, share in consumers},
        },
    )
    if latest is None:
        _announce_measured_days(scheme, groups=[*sources, *(g for g, _share in consumers)])
    return scheme


def _announce_measured_days(scheme: AllocationScheme, *, groups) -> None:
    """A first version starting in the past allocates the days that already hold its measurements."""
    quarters = (
        Measurement.objects.filter(group__in=groups, quarter_start__gte=scheme.effective_from)
        .order_by()
        .values_list("quarter_start", flat=True)
        .distinct()
    )
    windows = [(quarter, quarter + QUARTER) for quarter in quarters.iterator()]
    if windows:
        mark_changed(tenant_id=scheme.tenant_id, windows=windows)


ERRORS_BY_CODE = {error.code: error for error in (InvalidInput, PeriodClosed, MeasurementFinal)}


def measurement_rebook(*, case, actor) -> str | None:
    """Store a clarification case's measurement now; a final value it contradicts is corrected.
    An unknown metering point's case imports that metering point's values from its interchange.

    The correction of a final value changes the measurement (audited with the value it had), and
    the allocation of that quarter-hour is then reversed and booked anew (never edited). A value
    for a closed period is booked as a correction in the first open quarter-hour instead
    (``allocation.corrections``); the returned text then says where.
    """
    if case.reason == ClarificationReason.UNKNOWN_METERING_POINT:
        mscons_rebook(case=case, actor=actor)
        return None
    if case.reason in (ClarificationReason.PERIOD_CLOSED, ClarificationReason.MEASUREMENT_FINAL):
        # A quarter-hour of a closed period is never edited: the value is booked as a correction.
        booked = correction_book(case=case, actor=actor)
        if booked is not None:
            return booked
    result = measurements_ingest(
        tenant=case.tenant,
        actor=actor,
        items=[case.payload],
        channel=case.channel,
        correct_final=case.reason == ClarificationReason.MEASUREMENT_FINAL,
        keep_refused=False,
    )
    if result.rejected:
        refusal = result.rejected[0]
        raise ERRORS_BY_CODE.get(refusal["code"], InvalidInput)(refusal["detail"], errors=refusal.get("errors"))
    return None
