"""Closing a local month for a whole site: the checklist of what stands in the way, and the close.

The site is the top balance and every group settled below it during the month
(``allocation.statements.site_groups``). Closing month M closes each of its groups up to M's end,
so whatever is still open before M (an earlier month never closed) is closed with it: the checklist
therefore looks at each group from the first instant it still has open, not only at M.

Two kinds of blockers: open clarification cases, days that wait for the settlement run and a month
that has not ended always block (their figures would be closed wrong or incomplete); provisional
bookings and measurements and gaps (quarter-hours a missing measurement left unallocated) block
unless the operator accepts provisional figures explicitly.
"""

import datetime as dt
from collections import defaultdict

from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from allocation.models import AllocationScheme, Measurement
from allocation.selectors import gap_counts, quarters_in_force, with_participants
from allocation.statements import month_window, site_groups
from balance_groups.audit import audit_record
from balance_groups.models import AuditAction, BalanceGroup
from balance_groups.selectors import group_index
from balance_groups.services import group_close
from core.errors import BkmError, Conflict, NotFound
from core.quarters import QUARTER, buckets, local_date, local_day_bounds, parse_instant
from core.status import Status
from core.text import day_text, instant_text
from settlement.selectors import stale_days
from transactions.models import Booking, BookingKind, ClarificationCase, ClarificationStatus
from transactions.selectors import case_group_refs

PROVISIONAL = Status.PROVISIONAL.value
# What a blocker's severity means for the close.
ALWAYS = "always"  # blocks the close, whatever the operator accepts
ACCEPTABLE = "provisional"  # blocks unless provisional figures are accepted explicitly
ENTERED = (BookingKind.MANUAL, BookingKind.REVERSAL)  # bookings a sender or an operator makes final


def _group_row(group: BalanceGroup) -> dict:
    return {
        "id": group.pk,
        "code": group.code,
        "name": group.name,
        "kind": group.kind,
        "closed_until": group.closed_until,
    }


def _open_from(group: BalanceGroup) -> dt.datetime:
    """The first instant the group still accepts entries for."""
    return max(group.closed_until or group.valid_from, group.valid_from)


def _blocker(kind, severity, count, text, url_name=None, args=(), query=None, group=None, scheme=None) -> dict:
    return {
        "kind": kind,
        "severity": severity,
        "count": count,
        "text": text,
        "url_name": url_name,
        "args": list(args),
        "query": dict(query or {}),
        "group": group,
        "scheme": scheme,
    }


def _case_span(payload: dict) -> tuple[dt.datetime, dt.datetime] | None:
    """The time a case's payload covers, or None when it names no readable instant."""
    try:
        start = parse_instant(payload.get("start"), "start", aligned=False)
    except BkmError:
        return None
    try:
        end = parse_instant(payload["end"], "end", aligned=False) if payload.get("end") else start + QUARTER
    except BkmError:
        end = start + QUARTER
    return start, max(end, start + QUARTER)


def _cases(*, tenant, windows: dict, since: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """``(open cases of the site's groups in their open windows, open cases of no group in [since, end))``."""
    index = group_index(tenant=tenant)
    attributed = unattributed = 0
    rows = ClarificationCase.objects.filter(tenant=tenant, status=ClarificationStatus.OPEN).values_list(
        "subject", "payload"
    )
    for subject, payload in rows.iterator():
        if not isinstance(payload, dict):
            continue
        span = _case_span(payload)
        if span is None:
            continue
        groups = [group for group in (index.get(ref) for ref in case_group_refs(subject, payload)) if group is not None]
        if not groups:
            unattributed += span[0] < end and span[1] > since
            continue
        attributed += any(group.pk in windows and span[0] < end and span[1] > windows[group.pk] for group in groups)
    return attributed, unattributed


def _in_open_window(windows: dict, end: dt.datetime, *, field: str, start_field: str, end_field: str | None) -> Q:
    """Rows of a group (``field``) that overlap its open window ``[windows[group], end)``."""
    condition = Q(pk__in=[])
    for group_id, since in windows.items():
        overlap = Q(**{f"{start_field}__lt": end})
        overlap &= Q(**{f"{end_field}__gt": since}) if end_field else Q(**{f"{start_field}__gte": since})
        condition |= Q(**{field: group_id}) & overlap
    return condition


def _provisional_bookings(windows: dict, end: dt.datetime, codes: dict) -> list[dict]:
    """Per group, the provisional bookings somebody entered. Settlement and allocation bookings are
    left out: they are final exactly when what they were computed from is, which this list shows."""
    found = defaultdict(lambda: [0, None])
    for side in ("source", "destination"):
        rows = (
            Booking.objects.filter(status=PROVISIONAL, kind__in=ENTERED)
            .filter(_in_open_window(windows, end, field=side, start_field="start", end_field="end"))
            .values(side)
            .annotate(n=Count("pk"), first=Min("start"))
        )
        for row in rows:
            entry = found[row[side]]
            entry[0] += row["n"]
            entry[1] = row["first"] if entry[1] is None else min(entry[1], row["first"])
    blockers = []
    for group_id, (count, first) in sorted(found.items(), key=lambda item: codes[item[0]]):
        day = local_date(max(first, windows[group_id]))
        text = ngettext(
            "%(code)s has %(count)d provisional booking in the period (first on %(day)s).",
            "%(code)s has %(count)d provisional bookings in the period (first on %(day)s).",
            count,
        ) % {"code": codes[group_id], "count": count, "day": day_text(day)}
        blockers.append(
            _blocker(
                "provisional_bookings",
                ACCEPTABLE,
                count,
                text,
                "dashboard:group",
                [str(group_id)],
                {"day": day.isoformat(), "span": "week", "status": PROVISIONAL},
                group=codes[group_id],
            )
        )
    return blockers


def _provisional_measurements(windows: dict, end: dt.datetime, codes: dict) -> list[dict]:
    rows = (
        Measurement.objects.filter(status=PROVISIONAL)
        .filter(_in_open_window(windows, end, field="group", start_field="quarter_start", end_field=None))
        .values("group")
        .annotate(n=Count("pk"), first=Min("quarter_start"))
    )
    blockers = []
    for row in sorted(rows, key=lambda row: codes[row["group"]]):
        day = local_date(row["first"])
        text = ngettext(
            "%(code)s has %(count)d provisional measurement (first on %(day)s).",
            "%(code)s has %(count)d provisional measurements (first on %(day)s).",
            row["n"],
        ) % {"code": codes[row["group"]], "count": row["n"], "day": day_text(day)}
        blockers.append(
            _blocker(
                "provisional_measurements",
                ACCEPTABLE,
                row["n"],
                text,
                "dashboard:group",
                [str(row["group"])],
                {"day": day.isoformat()},
                group=codes[row["group"]],
            )
        )
    return blockers


def _gaps(*, tenant, windows: dict, since: dt.datetime, end: dt.datetime) -> list[dict]:
    """Per scheme with a participant to close: the quarter-hours its versions left unallocated."""
    versions = with_participants(
        AllocationScheme.objects.filter(tenant=tenant, effective_from__lt=end).filter(
            Q(effective_until__isnull=True) | Q(effective_until__gt=since)
        )
    ).order_by("code", "effective_from")
    by_code = defaultdict(list)
    for version in versions:
        by_code[version.code].append(version)
    blockers = []
    for code, scheme_versions in by_code.items():
        members = {
            p.group_id for version in scheme_versions for p in (*version.sources.all(), *version.consumers.all())
        }
        members.update(g for version in scheme_versions for g in (version.surplus_to_id, version.residual_from_id))
        starts = [windows[group_id] for group_id in members if group_id in windows]
        if not starts:
            continue
        lo = min(starts)
        days = list(buckets(local_day_bounds(local_date(lo))[0], end, "1d"))
        counts = gap_counts(quarters_in_force(scheme_versions, lo, end), days)
        total = sum(counts)
        if not total:
            continue
        first = local_date(days[next(i for i, n in enumerate(counts) if n)][0])
        text = ngettext(
            "Scheme %(code)s has %(count)d quarter-hour without every participant's measurement (first on %(day)s).",
            "Scheme %(code)s has %(count)d quarter-hours without every participant's measurement (first on %(day)s).",
            total,
        ) % {"code": code, "count": total, "day": day_text(first)}
        blockers.append(
            _blocker(
                "gaps",
                ACCEPTABLE,
                total,
                text,
                "dashboard:scheme",
                [code],
                {"day": first.isoformat(), "span": "month"},
                scheme=code,
            )
        )
    return blockers


def _checklist(*, tenant, top: BalanceGroup, month: str) -> dict:
    if top.tenant_id != tenant.pk:
        raise NotFound(_("Balance group %(ref)s not found.") % {"ref": top.pk})
    start, end = month_window(month)
    groups = site_groups(top=top, start=start, end=end)
    to_close = [group for group in groups if group.closed_until is None or group.closed_until < end]
    already = [group for group in groups if group not in to_close]
    windows = {group.pk: _open_from(group) for group in to_close if _open_from(group) < end}
    since = min([start, *windows.values()])
    codes = {group.pk: group.code for group in groups}

    blockers, notices = [], []
    if end > timezone.now():
        blockers.append(
            _blocker(
                "month_running",
                ALWAYS,
                1,
                _("The month has not ended yet; it can be closed from %(end)s on.") % {"end": instant_text(end)},
            )
        )
    if windows:
        # The marks first: a run committing between the reads then looks stale, never the reverse.
        stale = stale_days(tenant_id=tenant.pk, start=since, end=end)
        cases, unattributed = _cases(tenant=tenant, windows=windows, since=since, end=end)
        if cases:
            blockers.append(
                _blocker(
                    "clarifications",
                    ALWAYS,
                    cases,
                    ngettext(
                        "%(count)d open clarification case concerns the site in the period.",
                        "%(count)d open clarification cases concern the site in the period.",
                        cases,
                    )
                    % {"count": cases},
                    "dashboard:clarifications",
                    query={"status": "open"},
                )
            )
        if unattributed:
            notices.append(
                _blocker(
                    "unattributed_clarifications",
                    None,
                    unattributed,
                    ngettext(
                        "%(count)d open clarification case of the period names no group of the tenant; "
                        "it may concern this site.",
                        "%(count)d open clarification cases of the period name no group of the tenant; "
                        "they may concern this site.",
                        unattributed,
                    )
                    % {"count": unattributed},
                    "dashboard:clarifications",
                    query={"status": "open"},
                )
            )
        if stale:
            first = local_date(stale[0][0])
            blockers.append(
                _blocker(
                    "stale_days",
                    ALWAYS,
                    len(stale),
                    ngettext(
                        "%(count)d day waits for the settlement run (first: %(day)s).",
                        "%(count)d days wait for the settlement run (first: %(day)s).",
                        len(stale),
                    )
                    % {"count": len(stale), "day": day_text(first)},
                    "dashboard:runs",
                )
            )
        blockers += _provisional_bookings(windows, end, codes)
        blockers += _provisional_measurements(windows, end, codes)
        blockers += _gaps(tenant=tenant, windows=windows, since=since, end=end)
    return {
        "top": {"id": top.pk, "code": top.code, "name": top.name},
        "month": month,
        "start": start,
        "end": end,
        "since": since,
        "blockers": blockers,
        "notices": notices,
        "blocked": any(b["severity"] == ALWAYS for b in blockers),
        "provisional": any(b["severity"] == ACCEPTABLE for b in blockers),
        "to_close": [_group_row(group) for group in to_close],
        "already_closed": [_group_row(group) for group in already],
    }


def month_checklist(*, tenant, top: BalanceGroup, month: str) -> dict:
    """What stands between the site under ``top`` and closing the local ``month`` (``YYYY-MM``).

    ``blockers``: dicts ``{"kind", "severity", "count", "text", "url_name", "args", "query", "group",
    "scheme"}``; severity ``"always"`` (open clarification cases, days not up to date, a month not
    over) or ``"provisional"`` (provisional bookings and measurements, gaps: accepted by an explicit
    acceptance of provisional figures). ``notices``: open cases that name no group of the tenant
    (they may concern the site; they do not block). ``to_close`` and ``already_closed``: the site's
    groups with their current ``closed_until``. ``since`` is the first instant still open of the
    groups to close: everything from there to ``end`` is checked, as the close closes all of it.
    """
    return _checklist(tenant=tenant, top=top, month=month)


def _lock(group_ids) -> list[BalanceGroup]:
    """Lock the groups exclusively, in id order (the order bookings share-lock them in: no deadlock)."""
    return list(BalanceGroup.objects.select_for_update().filter(pk__in=group_ids).order_by("pk"))


def _refusal(blockers: list[dict]) -> Conflict:
    texts = [blocker["text"] for blocker in blockers]
    return Conflict(
        _("The month cannot be closed: %(reasons)s") % {"reasons": " ".join(texts)}, errors={"blockers": texts}
    )


@transaction.atomic
def month_close(
    *,
    tenant,
    top: BalanceGroup,
    month: str,
    actor,
    accept_provisional: bool = False,
    confirmed_groups: list[str] | None = None,
) -> dict:
    """Close every group of the site under ``top`` up to the end of the local ``month``, in one transaction.

    Open clarification cases, days waiting for the settlement run and a month not over always
    refuse the close; provisional bookings and measurements and gaps refuse it unless
    ``accept_provisional``. ``confirmed_groups`` are the codes the operator confirmed: when they
    differ from the groups that would be closed (the site changed meanwhile), the close is refused.
    ``None`` skips that check (a caller that shows no confirmation). Returns ``{"month", "start",
    "end", "closed": [{"id", "code", "name", "closed_until_before"}], "already_closed": [codes],
    "accepted_provisional", "accepted": [blockers accepted]}``.
    """
    if top.tenant_id != tenant.pk:
        raise NotFound(_("Balance group %(ref)s not found.") % {"ref": top.pk})
    start, end = month_window(month)
    locked = {group.pk: group for group in _lock([group.pk for group in site_groups(top=top, start=start, end=end)])}
    # Re-read everything under the locks: a booking or a rule change committed meanwhile counts.
    checklist = _checklist(tenant=tenant, top=top, month=month)
    members = {row["id"] for row in [*checklist["to_close"], *checklist["already_closed"]]}
    if not members <= locked.keys():
        # A rule change brought a group into the site meanwhile: lock it as well and look again.
        locked.update({group.pk: group for group in _lock(members)})
        checklist = _checklist(tenant=tenant, top=top, month=month)
        if not {row["id"] for row in [*checklist["to_close"], *checklist["already_closed"]]} <= locked.keys():
            raise Conflict(_("The site's groups changed while it was being closed; try again."))
    always = [b for b in checklist["blockers"] if b["severity"] == ALWAYS]
    acceptable = [b for b in checklist["blockers"] if b["severity"] == ACCEPTABLE]
    if always or (acceptable and not accept_provisional):
        raise _refusal(always + ([] if accept_provisional else acceptable))
    codes = sorted(row["code"] for row in checklist["to_close"])
    if not codes:
        raise Conflict(
            _("Every group of the site is closed up to the end of %(month)s already.") % {"month": month},
            errors={"confirm": [_("Nothing is left to close.")]},
        )
    if confirmed_groups is not None and sorted(confirmed_groups) != codes:
        message = _("The groups to close changed meanwhile: now %(codes)s. Check the list and confirm again.") % {
            "codes": ", ".join(codes)
        }
        raise Conflict(message, errors={"confirm": [message]})
    closed = []
    for row in checklist["to_close"]:
        group_close(group=locked[row["id"]], actor=actor, until=end)
        closed.append(
            {"id": row["id"], "code": row["code"], "name": row["name"], "closed_until_before": row["closed_until"]}
        )
    audit_record(
        tenant=tenant,
        actor=actor,
        action=AuditAction.SITE_MONTH_CLOSE,
        obj=top,
        data={
            "month": month,
            "until": end.isoformat(),
            "groups": codes,
            "accepted_provisional": bool(acceptable),
            "accepted": [{"kind": b["kind"], "count": b["count"], "text": b["text"]} for b in acceptable],
        },
    )
    return {
        "month": month,
        "start": start,
        "end": end,
        "closed": closed,
        "already_closed": [row["code"] for row in checklist["already_closed"]],
        "accepted_provisional": bool(acceptable),
        "accepted": acceptable,
    }
