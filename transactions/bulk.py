"""Bulk ingestion of bookings: many API-shaped items in one request, one transaction.

The rules are those of ``booking_create`` (validity, closed periods, ``external_id`` semantics),
applied to every item as if the items were sent one after another in the order given:

- an item whose ``external_id`` exists with identical content is ``unchanged``;
- different content replaces a provisional manual booking (``replaced``), is refused for a final
  one (``BOOKING_FINAL``) or another kind (``CONFLICT``);
- an item that touches a closed quarter-hour or a group outside its validity is refused and kept
  as a clarification case (also when the booking it would replace does);
- an ``external_id`` that appears twice in one request is handled exactly as two consecutive
  requests would be: the later item sees the earlier one.

Every item is validated by the one booking validation (``transactions.payloads``; groups resolved
with one query, instants parsed once per distinct string). New bookings and their lines are
written in one go by ``transactions.writers`` (COPY on PostgreSQL, ``bulk_create`` elsewhere).
Bulk requests of one tenant are serialised by an advisory lock (no lock-order deadlocks between
overlapping batches); a single booking written meanwhile is caught by the UNIQUE constraint on
(tenant, external_id): the request is decided again and then sees it. One audit entry per request.
"""

import random
import time
import uuid
from dataclasses import dataclass, field

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from balance_groups.audit import actor_label, audit_record
from balance_groups.models import AuditAction
from balance_groups.selectors import GroupIndex, group_index, groups_locked_for_booking
from core.db import advisory_xact_lock, chunks, is_postgres, uuid4_texts
from core.errors import BkmError, BookingFinal, Conflict, GroupNotValid, InvalidInput, PeriodClosed
from core.ledger import ledger_changed
from core.quarters import from_epoch, to_epoch
from transactions.models import Booking, BookingKind, BookingStatus, ClarificationCase, ClarificationReason, LedgerLine
from transactions.payloads import booking_fields_from_payload, clean_booking
from transactions.services import booking_final_text, build_lines, check_bookable, not_replaceable_text
from transactions.writers import LedgerRows

MAX_ITEMS = 100_000
FINAL = BookingStatus.FINAL
ATTEMPTS = 5
BULK_LOCK_NAMESPACE = 0x424B49  # "BKI": advisory locks (namespace, tenant id) for bulk ingestion
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock detected, serialization failure
SQLITE_BATCH = 2000


@dataclass
class BulkResult:
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    rejected: list[dict] = field(default_factory=list)  # {"index": i, "code": "...", "detail": "..."}


@dataclass(frozen=True)
class BulkRequest:
    """The audited object of one bulk request."""

    pk: uuid.UUID


# A validated item: content is compared with stored bookings, so it mirrors their fields.
# (index, external_id, name, source_id, destination_id, start_s, end_s, energy_wh, status, block)
# ``block`` is the GroupNotValid/PeriodClosed error of the item's own period, or None.
I_INDEX, I_EXT, I_NAME, I_SRC, I_DST, I_START, I_END, I_ENERGY, I_STATUS, I_BLOCK = range(10)


class _LostRace(Exception):
    """Another transaction inserted one of our external ids first: decide again."""


def _resolve(groups: GroupIndex, ref, field_name: str):
    group = groups.get(ref)
    if group is None:
        raise InvalidInput.for_field(
            field_name, _("Balance group %(ref)s not found.") % {"ref": repr(str(ref).strip()[:80])}
        )
    return group


def _validate(items: list, groups: GroupIndex, rejected: list, clarify: list) -> list[tuple]:
    """Validate every item; return the valid ones as tuples, append refusals to ``rejected``."""
    rows = []
    instants: dict = {}
    for index, item in enumerate(items):
        try:
            fields = booking_fields_from_payload(item, instants)
            source = _resolve(groups, fields["source"], "source")
            destination = _resolve(groups, fields["destination"], "destination")
            values = clean_booking(fields, source=source, destination=destination)
        except BkmError as error:
            rejected.append(_rejection(index, error))
            continue
        except (OverflowError, ValueError):
            rejected.append(_rejection(index, InvalidInput(_("A value is out of range."))))
            continue
        block = None
        try:
            check_bookable(source=source, destination=destination, start=values["start"], end=values["end"])
        except (GroupNotValid, PeriodClosed) as error:
            block = error
        external_id = values["external_id"]
        if block is not None and external_id is None:
            # No external id: nothing stored can make it unchanged, so it is refused right away.
            rejected.append(_rejection(index, block))
            clarify.append((block, item))
            continue
        rows.append(
            (
                index,
                external_id,
                values["name"],
                source.id_text,
                destination.id_text,
                to_epoch(values["start"]),
                to_epoch(values["end"]),
                values["energy_wh"],
                values["status"],
                block,
            )
        )
    return rows


def _rejection(index: int, error: BkmError) -> dict:
    entry = {"index": index, "code": error.code, "detail": error.detail}
    if error.errors:
        entry["errors"] = error.errors
    return entry


class _State:
    """What an external id refers to while the items are applied in order."""

    __slots__ = ("booking_id", "content", "kind", "original", "row")

    def __init__(self, booking_id, content, kind, row=None):
        self.booking_id = booking_id  # None: created by this request
        self.content = content  # (name, source_id, destination_id, start_s, end_s, energy_wh, status)
        self.original = content if booking_id is not None else None
        self.kind = kind
        self.row = row


def _content(row) -> tuple:
    return (row[I_NAME], row[I_SRC], row[I_DST], row[I_START], row[I_END], row[I_ENERGY], row[I_STATUS])


@dataclass
class _Plan:
    inserts: list = field(default_factory=list)  # rows to insert
    replaces: list = field(default_factory=list)  # (booking_id, row, old content)
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    rejected: list = field(default_factory=list)
    clarify: list = field(default_factory=list)  # (error, item)


def _plan(rows, existing: dict, groups: GroupIndex, items: list) -> _Plan:
    """Apply the items in order against the stored bookings (``existing`` by external id)."""
    plan = _Plan()
    states: dict[str, _State] = {}
    for row in rows:
        ext, block = row[I_EXT], row[I_BLOCK]
        if ext is None:
            plan.inserts.append(row)
            plan.created += 1
            continue
        state = states.get(ext)
        if state is None:
            stored = existing.get(ext)
            if stored is not None:
                booking_id, content, kind = stored
                state = states[ext] = _State(booking_id, content, kind)
        content = _content(row)
        if state is not None and state.content == content:
            plan.unchanged += 1
            continue
        if block is not None:
            plan.rejected.append(_rejection(row[I_INDEX], block))
            plan.clarify.append((block, items[row[I_INDEX]]))
            continue
        if state is None:
            states[ext] = _State(None, content, BookingKind.MANUAL, row)
            plan.created += 1
            continue
        if state.content[6] == FINAL:
            plan.rejected.append(_rejection(row[I_INDEX], BookingFinal(booking_final_text(ext))))
            continue
        if state.kind != BookingKind.MANUAL:
            error = Conflict(not_replaceable_text(ext, state.kind))
            plan.rejected.append(_rejection(row[I_INDEX], error))
            continue
        old_error = _old_period_error(state.content, groups)
        if old_error is not None:
            plan.rejected.append(_rejection(row[I_INDEX], old_error))
            plan.clarify.append((old_error, items[row[I_INDEX]]))
            continue
        state.content, state.row = content, row
        plan.replaced += 1
    for state in states.values():
        if state.row is None:
            continue
        if state.booking_id is None:
            plan.inserts.append(state.row)
        elif state.content != state.original:
            plan.replaces.append((state.booking_id, state.row, state.original))
    return plan


def _old_period_error(content, groups: GroupIndex):
    """Replacing also takes the old quarter-hours out of their balances: they must be open too."""
    src_id, dst_id, start_s, end_s = content[1:5]
    source, destination = groups.get(src_id), groups.get(dst_id)
    if source is None or destination is None:
        return None
    try:
        check_bookable(source=source, destination=destination, start=from_epoch(start_s), end=from_epoch(end_s))
    except (GroupNotValid, PeriodClosed) as error:
        return error
    return None


STORED_FIELDS = (
    "id",
    "external_id",
    "name",
    "source_id",
    "destination_id",
    "start",
    "end",
    "energy_wh",
    "status",
    "kind",
)


def _lock_replaced(tenant, plan: _Plan) -> None:
    """Lock the bookings about to be replaced; if one changed since it was read, decide again."""
    if not plan.replaces:
        return
    expected = {row[I_EXT]: original for _, row, original in plan.replaces}
    current = _stored(tenant, sorted(expected), lock=True)
    for ext, original in expected.items():
        stored = current.get(ext)
        if stored is None or stored[1] != original or stored[2] != BookingKind.MANUAL:
            raise _LostRace


def _stored(tenant, external_ids: list[str], *, lock: bool = False) -> dict:
    """Stored bookings of these external ids: ext -> (id, content, kind)."""
    found = {}
    if not external_ids:
        return found
    if is_postgres():
        # Epoch seconds and text ids: cheap to compare, no per-row datetime parsing in Python.
        sql = (
            "SELECT id, external_id, name, source_id::text, destination_id::text, extract(epoch FROM start)::bigint, "
            'extract(epoch FROM "end")::bigint, energy_wh, status, kind FROM transactions_booking '
            "WHERE tenant_id = %s AND external_id = ANY(%s) ORDER BY external_id"
        )
        if lock:
            sql += " FOR UPDATE"
        with connection.cursor() as cursor:
            cursor.execute(sql, [tenant.pk, external_ids])
            for booking_id, ext, name, src, dst, start_s, end_s, energy, status, kind in cursor.fetchall():
                found[ext] = (booking_id, (name, src, dst, start_s, end_s, energy, status), kind)
        return found
    records = []
    queryset = Booking.objects.filter(tenant=tenant)
    for offset in range(0, len(external_ids), SQLITE_BATCH):
        chunk = external_ids[offset : offset + SQLITE_BATCH]
        records += queryset.filter(external_id__in=chunk).values_list(*STORED_FIELDS)
    for booking_id, ext, name, src, dst, start, end, energy, status, kind in records:
        content = (name, str(src), str(dst), to_epoch(start), to_epoch(end), energy, status)
        found[ext] = (booking_id, content, kind)
    return found


def bookings_bulk_ingest(
    *, tenant, actor, items: list[dict], channel: str = "bulk", dry_run: bool = False
) -> BulkResult:
    """Validate and store many bookings at once; see the module docstring for the rules.

    Valid items are stored even when others are refused. ``dry_run`` validates and reports the
    same outcome without writing anything (no clarification cases either).
    """
    if not isinstance(items, list):
        raise InvalidInput.for_field("bookings", _("The bookings must be a list of booking objects."))
    if len(items) > MAX_ITEMS:
        raise InvalidInput.for_field(
            "bookings", _("At most %(max)d bookings per request; split the upload.") % {"max": MAX_ITEMS}
        )
    groups = group_index(tenant=tenant)
    rejected: list[dict] = []
    clarify: list = []
    rows = _validate(items, groups, rejected, clarify)
    external_ids = sorted({row[I_EXT] for row in rows if row[I_EXT] is not None})

    if dry_run:
        plan = _plan(rows, _stored(tenant, external_ids), groups, items)
        return _result(plan, rejected)

    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                _serialise_tenant(tenant)
                if _bounds_changed(groups):
                    # A close or validity change committed since validation: decide on fresh bounds.
                    groups, rejected, clarify = group_index(tenant=tenant), [], []
                    rows = _validate(items, groups, rejected, clarify)
                    external_ids = sorted({row[I_EXT] for row in rows if row[I_EXT] is not None})
                plan = _plan(rows, _stored(tenant, external_ids), groups, items)
                _lock_replaced(tenant, plan)
                _write(tenant=tenant, actor=actor, plan=plan, channel=channel, clarify=clarify + plan.clarify)
            return _result(plan, rejected)
        except (_LostRace, IntegrityError, OperationalError) as error:
            if isinstance(error, OperationalError) and not _retryable(error):
                raise
            if attempt == ATTEMPTS - 1:
                raise Conflict(_("Concurrent requests changed the same bookings; retry the request.")) from None
            time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
    raise AssertionError("unreachable")


def _bounds(group) -> tuple:
    return group.valid_from, group.valid_until, group.closed_until


def _bounds_changed(groups: GroupIndex) -> bool:
    """Share-lock the groups and tell whether their bounds differ from those validated against."""
    fresh = groups_locked_for_booking(group_ids=groups.by_id)
    known = {str(pk): group for pk, group in groups.by_id.items()}
    return set(fresh) != set(known) or any(_bounds(group) != _bounds(known[key]) for key, group in fresh.items())


def _serialise_tenant(tenant) -> None:
    """One bulk write per tenant at a time (PostgreSQL advisory lock until commit).

    Reading the stored bookings, deciding and writing then happen without interleaving with
    another bulk request of the tenant: no lock-order deadlocks between overlapping batches. A
    single booking written meanwhile is caught by the UNIQUE constraint (the request is decided
    again). SQLite serialises writers by itself.
    """
    advisory_xact_lock(BULK_LOCK_NAMESPACE, tenant.pk)


def _retryable(error: OperationalError) -> bool:
    """Deadlocks and serialization failures abort the transaction; deciding again is safe."""
    return getattr(error.__cause__, "sqlstate", None) in RETRYABLE_SQLSTATES


def _result(plan: _Plan, rejected: list) -> BulkResult:
    rejected = sorted(rejected + plan.rejected, key=lambda entry: entry["index"])
    return BulkResult(created=plan.created, replaced=plan.replaced, unchanged=plan.unchanged, rejected=rejected)


def _write(*, tenant, actor, plan: _Plan, channel: str, clarify: list) -> None:
    label = actor_label(actor)
    if plan.inserts or plan.replaces:
        write_bookings(tenant=tenant, label=label, plan=plan)
        spans = {(row[I_START], row[I_END]) for row in plan.inserts}
        spans |= {(row[I_START], row[I_END]) for _, row, _ in plan.replaces}
        spans |= {(old[3], old[4]) for _, _, old in plan.replaces}
        ledger_changed(tenant_id=tenant.pk, windows=[(from_epoch(a), from_epoch(b)) for a, b in sorted(spans)])
    cases = [
        ClarificationCase(
            tenant=tenant,
            reason=ClarificationReason.for_error(error),
            detail=error.detail,
            detail_message=error.message.as_json() if error.message else None,
            payload=item,
            channel=channel,
            created_by=label,
        )
        for error, item in clarify
    ]
    if cases:
        ClarificationCase.objects.bulk_create(cases, batch_size=SQLITE_BATCH)
    if plan.inserts or plan.replaces or cases:
        audit_record(
            tenant=tenant,
            actor=actor,
            action=AuditAction.BOOKING_BULK_INGEST,
            obj=BulkRequest(uuid.uuid4()),
            data={
                "channel": channel,
                "created": plan.created,
                "replaced": plan.replaced,
                "unchanged": plan.unchanged,
                "rejected": len(plan.rejected),
                "clarification_cases": len(cases),
                "inserted_bookings": len(plan.inserts),
                "replaced_bookings": len(plan.replaces),
            },
        )


REPLACED_FIELDS = (
    "name",
    "source_id",
    "destination_id",
    "start",
    "end",
    "energy_wh",
    "status",
    "updated_by",
    "updated_at",
    "finalized_at",
)


def write_bookings(*, tenant, label: str, plan: _Plan) -> None:
    """Insert the plan's new bookings and lines in one go; rewrite the replaced ones in place.

    A concurrent request that inserted one of the external ids first makes the insert fail on the
    UNIQUE constraint (``IntegrityError``): the caller decides again.
    """
    now = timezone.now()
    if plan.inserts:
        rows = LedgerRows(tenant_id=tenant.pk, kind=BookingKind.MANUAL.value, actor_label=label, now=now)
        for row, booking_id in zip(plan.inserts, uuid4_texts(len(plan.inserts)), strict=True):
            rows.add(booking_id, *row[I_EXT:I_STATUS], row[I_STATUS] == FINAL)
        if is_postgres():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")  # a large insert's estimate would trigger costly compilation
        rows.write()
    if plan.replaces:
        ids = [booking_id for booking_id, _, _ in plan.replaces]
        for chunk in chunks(ids, SQLITE_BATCH):
            LedgerLine.objects.filter(booking_id__in=chunk).delete()
        bookings, lines = [], []
        stored = Booking.objects.in_bulk(ids)
        for booking_id, row, _ in plan.replaces:
            booking = stored[booking_id]
            booking.name, booking.source_id, booking.destination_id = row[I_NAME], row[I_SRC], row[I_DST]
            booking.start, booking.end = from_epoch(row[I_START]), from_epoch(row[I_END])
            booking.energy_wh, booking.status = row[I_ENERGY], row[I_STATUS]
            booking.updated_by, booking.updated_at = label, now
            booking.finalized_at = now if row[I_STATUS] == FINAL else None
            bookings.append(booking)
            lines += build_lines(booking)
        Booking.objects.bulk_update(bookings, [*REPLACED_FIELDS], batch_size=SQLITE_BATCH)
        LedgerLine.objects.bulk_create(lines, batch_size=SQLITE_BATCH)
