"""Corrections after the close: a late value for a quarter-hour of a closed period.

Nothing in the closed period changes (neither the measurement nor the allocation bookings there).
The quarter-hour is allocated anew with the late value (``engine.unit.wanted_flows``, the engine's
own arithmetic) over the other participants' values as stored, each overlaid with earlier
corrections of that quarter-hour. Every pair whose energy then differs from what the quarter-hour
has booked (its allocation bookings plus earlier corrections) is booked final in the first
quarter-hour all the scheme's groups have open: a reversal of the old amount and the new amount.
The statement of that month shows them as correction lines (``selectors.correction_lines``).
"""

import datetime as dt
from collections import defaultdict

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from allocation.engine.unit import wanted_flows
from allocation.measurements import LOCK_NAMESPACE, Memo, clean_item
from allocation.models import AllocationBooking, Correction, CorrectionLine, Measurement, Quality
from allocation.selectors import scheme_in_force
from balance_groups.audit import actor_label, audit_record
from balance_groups.models import AuditAction
from balance_groups.selectors import group_index, groups_locked_for_booking
from core.db import advisory_xact_lock, uuid4_texts
from core.errors import BkmError, GroupNotValid, InvalidInput
from core.quarters import QUARTER, QUARTER_SECONDS, from_epoch, local_date, to_epoch
from core.text import instant_text
from settlement.dirty import mark_changed
from transactions.models import BookingKind, ClarificationCase, ClarificationStatus, ClarificationSubject
from transactions.writers import LedgerRows


def _closed_at(group, instant: dt.datetime) -> bool:
    return group.closed_until is not None and instant < group.closed_until


def _utc(instant: dt.datetime) -> str:
    return f"{instant.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def corrected_values(version, q: dt.datetime) -> dict:
    """``{group id: Wh}`` of the participants at ``q``: as stored, overlaid with earlier corrections."""
    participants = [p.group_id for p in (*version.sources.all(), *version.consumers.all())]
    values = dict(
        Measurement.objects.filter(group_id__in=participants, quarter_start=q).values_list("group_id", "energy_wh")
    )
    for group_id, energy in (
        Correction.objects.filter(scheme=version, quarter_start=q).order_by("id").values_list("group_id", "energy_wh")
    ):
        values[group_id] = energy
    return values


def booked_flows(version, q: dt.datetime) -> dict:
    """``{(source, destination): Wh}`` the quarter-hour has booked: its allocation and earlier corrections."""
    booked: dict = defaultdict(int)
    for source, destination, energy in AllocationBooking.objects.filter(scheme=version, quarter_start=q).values_list(
        "source_id", "destination_id", "booking__energy_wh"
    ):
        booked[(source, destination)] += energy
    for source, destination, old_wh, new_wh in CorrectionLine.objects.filter(
        correction__scheme=version, correction__quarter_start=q
    ).values_list("source_id", "destination_id", "old_wh", "new_wh"):
        booked[(source, destination)] += new_wh - old_wh
    return {pair: wh for pair, wh in booked.items() if wh}


def allocation_of(version, epoch: int, values: dict) -> dict:
    """``{(source, destination): Wh}`` of the quarter-hour with ``values`` (every participant has one)."""
    wanted: dict = {}
    readings = {(group_id, epoch): (wh, True) for group_id, wh in values.items()}
    wanted_flows(version, range(epoch, epoch + QUARTER_SECONDS, QUARTER_SECONDS), readings, wanted, set())
    return {(source, destination): wh for (_, _, source, destination), (wh, _) in wanted.items()}


def _open_cases_for(case, groups: list, epoch: int) -> set:
    """Ids of the ``groups`` for which another open case holds a value for the quarter-hour ``epoch``."""
    refs = [ref for g in groups for ref in (g.code, str(g.pk), g.metering_point) if ref]
    memo = Memo(group_index(tenant=case.tenant))
    held = set()
    others = ClarificationCase.objects.filter(
        tenant=case.tenant,
        subject=ClarificationSubject.MEASUREMENT,
        status=ClarificationStatus.OPEN,
        payload__group__in=refs,
    ).exclude(pk=case.pk)
    for payload in others.values_list("payload", flat=True):
        try:
            group, start, *_ = clean_item(payload, memo)
        except (BkmError, OverflowError, ValueError):
            continue
        if start == epoch:
            held.add(group.pk)
    return held


def correction_book(*, case, actor) -> str | None:
    """Book the case's value as a correction when its quarter-hour lies in a closed period of its
    group; returns what was done (for the case's resolution note), or None when that period is
    open (the value is then stored as usual).

    Refuses (the case stays open) with ``InvalidInput`` when the group takes part in no scheme
    then, a quality other than measured, a participant still open at the quarter-hour or missing
    its value, and with ``GroupNotValid`` when a group to book on is not valid in the first open
    quarter-hour. A value missing because another open case holds it does not refuse: this value
    is kept, and the quarter-hour is booked when the last of them is resolved.
    """
    tenant = case.tenant
    with transaction.atomic():
        # The lock of measurement writes: corrections of one tenant build on each other in turn.
        advisory_xact_lock(LOCK_NAMESPACE, tenant.pk)
        group, epoch, energy, quality, _status = clean_item(case.payload, Memo(group_index(tenant=tenant)))
        q = from_epoch(epoch)
        if not _closed_at(group, q):
            return None
        version = scheme_in_force(group=group, at=q)
        if version is None:
            raise InvalidInput(
                _(
                    "%(code)s takes part in no allocation scheme at %(quarter)s and the period is closed: "
                    "there is no allocation to correct. Dismiss the case with a note."
                )
                % {"code": group.code, "quarter": instant_text(q)}
            )
        if quality != Quality.MEASURED:
            raise InvalidInput.for_field(
                "quality",
                _("A correction of a closed period is booked final; a %(quality)s value cannot be.")
                % {"quality": quality},
            )
        participants = [p.group_id for p in (*version.sources.all(), *version.consumers.all())]
        groups = groups_locked_for_booking(
            group_ids=[*participants, version.surplus_to_id, version.residual_from_id]
        )  # fresh and share-locked: a close committing meanwhile is seen, or waits for this
        of = {pk: groups[str(pk)] for pk in participants}
        still_open = sorted(g.code for g in of.values() if not _closed_at(g, q))
        if still_open:
            # The engine still owns an open quarter-hour and would reallocate it under the correction.
            raise InvalidInput(
                _(
                    "The quarter-hour %(quarter)s is closed for %(code)s but open for %(open)s; close the period "
                    "of every participant of %(scheme)s first (the month close does)."
                )
                % {
                    "quarter": instant_text(q),
                    "code": group.code,
                    "open": ", ".join(still_open),
                    "scheme": version.code,
                }
            )
        values = corrected_values(version, q)
        values[group.pk] = energy
        t = max(g.closed_until for g in groups.values() if g.closed_until is not None)
        correction = Correction(
            tenant=tenant,
            case=case,
            scheme=version,
            quarter_start=q,
            booked_start=t,
            group=group,
            energy_wh=energy,
            quality=quality,
            created_at=timezone.now(),
            created_by=actor_label(actor),
        )
        missing = [of[pk] for pk in participants if pk not in values]
        if missing:
            held = _open_cases_for(case, missing, epoch)
            codes = ", ".join(sorted(g.code for g in missing))
            if any(g.pk not in held for g in missing):
                raise InvalidInput(
                    _(
                        "The quarter-hour %(quarter)s cannot be allocated: it has no value of %(codes)s. "
                        "Resolve this case once that value has arrived."
                    )
                    % {"quarter": instant_text(q), "codes": codes}
                )
            correction.save()
            _audit(correction, actor, lines=0)
            return _(
                "Kept as the late value for %(quarter)s; the quarter-hour is booked as a correction "
                "once the open cases with the value of %(codes)s are resolved."
            ) % {"quarter": instant_text(q), "codes": codes}
        old, new = booked_flows(version, q), allocation_of(version, epoch, values)
        pairs = [pair for pair in {*old, *new} if old.get(pair, 0) != new.get(pair, 0)]
        for g in {groups[str(pk)] for pair in pairs for pk in pair}:
            if g.valid_from > t or (g.valid_until is not None and g.valid_until < t + QUARTER):
                raise GroupNotValid(_correction_validity_text(q, t, version, g))
        correction.save()
        _book_lines(correction, groups, pairs, old, new)
        if pairs:
            mark_changed(tenant_id=tenant.pk, windows=[(t, t + QUARTER)])
        _audit(correction, actor, lines=len(pairs))
    if not pairs:
        return _("The late value changes no allocation of %(quarter)s; nothing was booked.") % {
            "quarter": instant_text(q)
        }
    return ngettext(
        "The value of %(quarter)s is booked as a correction of %(month)s in the period from %(booked)s: "
        "%(count)d flow changed.",
        "The value of %(quarter)s is booked as a correction of %(month)s in the period from %(booked)s: "
        "%(count)d flows changed.",
        len(pairs),
    ) % {"month": f"{local_date(q):%Y-%m}", "quarter": instant_text(q), "booked": instant_text(t), "count": len(pairs)}


def _correction_validity_text(q: dt.datetime, t: dt.datetime, version, group) -> str:
    values = {
        "quarter": instant_text(q),
        "booked": instant_text(t),
        "scheme": version.code,
        "code": group.code,
        "valid_from": instant_text(group.valid_from),
    }
    if group.valid_until is None:
        message = _(
            "The correction of %(quarter)s is booked at %(booked)s, the first open quarter-hour of %(scheme)s, "
            "but group %(code)s is valid from %(valid_from)s on."
        )
    else:
        values["valid_until"] = instant_text(group.valid_until)
        message = _(
            "The correction of %(quarter)s is booked at %(booked)s, the first open quarter-hour of %(scheme)s, "
            "but group %(code)s is valid from %(valid_from)s to %(valid_until)s."
        )
    return message % values


def _audit(correction: Correction, actor, *, lines: int) -> None:
    audit_record(
        tenant=correction.tenant,
        actor=actor,
        action=AuditAction.MEASUREMENT_CORRECT,
        obj=correction,
        data={
            "case": str(correction.case_id),
            "scheme": str(correction.scheme_id),
            "group": str(correction.group_id),
            "start": correction.quarter_start.isoformat(),
            "energy_wh": correction.energy_wh,
            "booked_start": correction.booked_start.isoformat(),
            "lines": lines,
        },
    )


def _book_lines(correction: Correction, groups: dict, pairs: list, old: dict, new: dict) -> None:
    """The final bookings of the changed pairs at ``booked_start`` (no allocation key: the engine
    owns keys and would replace them), and a line per pair that names them."""
    prefix = f"Correction of {local_date(correction.quarter_start):%Y-%m} ({_utc(correction.quarter_start)})"
    rows = LedgerRows(
        tenant_id=correction.tenant_id,
        kind=BookingKind.CORRECTION.value,
        actor_label=correction.created_by,
        now=correction.created_at,
    )
    t0 = to_epoch(correction.booked_start)
    t1 = t0 + QUARTER_SECONDS
    code = {pk: groups[str(pk)].code for pair in pairs for pk in pair}
    lines = []
    ids = uuid4_texts(2 * len(pairs))
    for index, (source, destination) in enumerate(sorted(pairs, key=lambda p: (code[p[0]], code[p[1]]))):
        was, now = old.get((source, destination), 0), new.get((source, destination), 0)
        reversal_id, booking_id = ids[2 * index], ids[2 * index + 1]
        name = f"{prefix}: {code[source]} -> {code[destination]}"
        if was:
            rows.add(reversal_id, None, f"{name}, reversal of {was} Wh"[:200], destination, source, t0, t1, was, True)
        if now:
            rows.add(booking_id, None, f"{name}, {now} Wh"[:200], source, destination, t0, t1, now, True)
        lines.append(
            CorrectionLine(
                correction=correction,
                source_id=source,
                destination_id=destination,
                old_wh=was,
                new_wh=now,
                reversal_id=reversal_id if was else None,
                booking_id=booking_id if now else None,
            )
        )
    rows.write()
    CorrectionLine.objects.bulk_create(lines)
