"""The settlement engine: materialised imbalances and settlement bookings.

Unit of work: one local day of one tenant (92, 96 or 100 quarter-hours). Every unit runs in one
transaction under a per-tenant lock (a PostgreSQL advisory lock; SQLite serialises writers by
itself), so runs that repeat, overlap, race with ingestion or die halfway leave the ledger as one
clean run would. Within a unit:

1. groups with a settlement rule are settled bottom-up by their level in the hierarchy (leaves
   first), so a parent's net already contains its children's settlement bookings;
2. per rule window that has ended, the child's net (its lines, excluding its own settlement
   bookings) is split by the targets' shares and booked child -> parent (net > 0) or
   parent -> child (net < 0), spread over the window's quarter-hours; the bookings are keyed by
   (rule version, target, window start, revision) in ``SettlementBooking``;
3. the unit's imbalances are recomputed with one aggregate over its lines.

Rule windows: 15min on the quarter-hour grid, 1h on the UTC hour grid, 1d on local days; the rule
version in force at a window's start applies to the whole window; windows never cross a local
midnight (the unit boundary).
"""

import bisect
import datetime as dt
import enum
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import AutoField, BigIntegerField, Case, Count, F, Func, IntegerField, Q, Sum, Value, When
from django.utils import timezone

from balance_groups.models import BalanceGroup, Tenant
from bkm.audit import actor_label, audit_record
from bkm.db import is_postgres
from bkm.errors import InvalidInput, NotFound
from bkm.quarters import (
    QUARTER,
    iter_quarters,
    local_date,
    local_day_bounds,
    parse_instant,
    require_window,
    split_by_shares,
    split_energy,
)
from settlement.models import (
    DirtyDay,
    Imbalance,
    RunStatus,
    RunTrigger,
    SettlementBooking,
    SettlementCursor,
    SettlementInterval,
    SettlementRule,
    SettlementRun,
)
from transactions.models import Booking, BookingKind, BookingStatus, LedgerLine

logger = logging.getLogger(__name__)

SETTLE_ACTOR = "system:settle"
SETTLE_LABEL = actor_label(SETTLE_ACTOR)
LOCK_NAMESPACE = 0x424B4D  # "BKM": the high half of the advisory lock key, the tenant id is the low half
MAX_REQUEST_DAYS = 400
HOUR = dt.timedelta(hours=1)

Progress = Callable[[int, int, dt.datetime], None]


# ---------------------------------------------------------------------------------------------
# Units and windows


def unit_bounds(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """The local days (UTC bounds) that cover ``[start, end)``."""
    first, last = local_date(start), local_date(end - QUARTER)
    days = []
    day = first
    while day <= last:
        days.append(local_day_bounds(day))
        day += dt.timedelta(days=1)
    return days


def unit_of(instant: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    return local_day_bounds(local_date(instant))


def _grid_end(interval: str, instant: dt.datetime) -> dt.datetime:
    if interval == SettlementInterval.QUARTER_HOUR:
        return instant + QUARTER
    if interval == SettlementInterval.HOUR:
        return instant.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0) + HOUR
    return local_day_bounds(local_date(instant))[1]


def _version_at(versions: list[SettlementRule], instant: dt.datetime) -> SettlementRule | None:
    for version in versions:
        if version.effective_from <= instant and (version.effective_until is None or instant < version.effective_until):
            return version
    return None


def rule_windows(versions: list[SettlementRule], u0: dt.datetime, u1: dt.datetime):
    """``(version, window_start, window_end)`` for a group's versions (sorted) inside one unit."""
    windows = []
    instant = u0
    while instant < u1:
        version = _version_at(versions, instant)
        if version is None:
            later = [v.effective_from for v in versions if v.effective_from > instant]
            if not later:
                break
            instant = min(later)
            continue
        end = min(_grid_end(version.interval, instant), u1)
        windows.append((version, instant, end))
        instant = end
    return windows


# ---------------------------------------------------------------------------------------------
# Locking


def _lock_tenant(tenant_id: int) -> None:
    """Serialise settlement work of one tenant until the end of the current transaction."""
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [(LOCK_NAMESPACE << 32) | int(tenant_id)])


# ---------------------------------------------------------------------------------------------
# One unit


@dataclass
class UnitStats:
    groups: set = field(default_factory=set)
    lines_read: int = 0
    created: int = 0
    updated: int = 0
    finalized: int = 0
    deleted: int = 0

    def add(self, other: "UnitStats") -> None:
        self.groups |= other.groups
        self.lines_read += other.lines_read
        self.created += other.created
        self.updated += other.updated
        self.finalized += other.finalized
        self.deleted += other.deleted

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.finalized or self.deleted)


@dataclass(slots=True)
class _Wanted:
    rule_id: object
    child_id: object
    parent_id: object
    window_start: dt.datetime
    window_end: dt.datetime
    amount: int  # signed: > 0 the child delivers to the parent
    final: bool
    start_epoch: int


def _levels(versions_by_group: dict) -> dict:
    """Level of each settled group: 0 for a group nobody settles onto, else 1 + its children's max."""
    children_of = defaultdict(set)
    for group_id, versions in versions_by_group.items():
        for version in versions:
            for target in version.targets.all():
                children_of[target.parent_id].add(group_id)
    levels: dict = {}

    def level(group_id, path=()):
        if group_id in levels:
            return levels[group_id]
        if group_id in path:
            raise InvalidInput(f"The settlement hierarchy has a cycle through group {group_id}.")
        children = children_of.get(group_id, ())
        value = 1 + max(level(child, (*path, group_id)) for child in children) if children else 0
        levels[group_id] = value
        return value

    return {group_id: level(group_id) for group_id in versions_by_group}


class EpochSeconds(Func):
    """An instant as integer seconds since 1970 (cheap to read back in bulk, unlike timestamps)."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS bigint)")

    def as_sqlite(self, compiler, connection, **extra):
        # "%%%%s" survives the template ("%%s") and the backend's placeholder rewrite ("%s").
        return self.as_sql(compiler, connection, template="CAST(strftime('%%%%s', %(expressions)s) AS integer)")


def _epoch(instant: dt.datetime) -> int:
    return int(instant.timestamp())


# PostgreSQL: the same three aggregates (inflow, outflow, minus the group's own settlement lines) in
# one statement over a raw cursor, read back as plain integers (no per-row converters).
CHILD_NETS_SQL = """
SELECT x.group_id, CAST(EXTRACT(EPOCH FROM x.quarter_start) AS bigint), CAST(SUM(x.energy) AS bigint),
       CAST(SUM(x.provisional) AS bigint)
FROM (
    SELECT destination_id AS group_id, quarter_start, energy_wh AS energy,
           CASE WHEN is_final THEN 0 ELSE 1 END AS provisional
    FROM transactions_ledgerline
    WHERE tenant_id = %(tenant)s AND quarter_start >= %(lo)s AND quarter_start < %(hi)s
      AND destination_id = ANY(%(groups)s)
    UNION ALL
    SELECT source_id, quarter_start, -energy_wh, CASE WHEN is_final THEN 0 ELSE 1 END
    FROM transactions_ledgerline
    WHERE tenant_id = %(tenant)s AND quarter_start >= %(lo)s AND quarter_start < %(hi)s
      AND source_id = ANY(%(groups)s)
    UNION ALL
    SELECT s.child_id, l.quarter_start,
           CASE WHEN l.destination_id = s.child_id THEN -l.energy_wh ELSE l.energy_wh END,
           CASE WHEN l.is_final THEN 0 ELSE -1 END
    FROM settlement_settlementbooking s
    JOIN transactions_ledgerline l ON l.booking_id = s.booking_id
    WHERE s.child_id = ANY(%(groups)s) AND s.window_start >= %(lo)s AND s.window_start < %(hi)s
      AND l.tenant_id = %(tenant)s AND l.quarter_start >= %(lo)s AND l.quarter_start < %(hi)s
) AS x
GROUP BY x.group_id, x.quarter_start
"""


def _child_nets(tenant_id, group_ids, u0, u1) -> dict:
    """Per group: {quarter epoch: [net, provisional line count]} over the group's lines in the unit,
    without the group's own settlement bookings.

    All lines minus the group's own settlement lines: plain aggregates whose plans do not depend on
    fresh statistics (the own lines are reached from the keys through the line index); on
    PostgreSQL one statement read over a raw cursor, elsewhere through the ORM.
    """
    nets: dict = defaultdict(dict)
    if is_postgres():
        params = {"tenant": tenant_id, "lo": u0, "hi": u1, "groups": list(group_ids)}
        with connection.cursor() as cursor:
            cursor.execute(CHILD_NETS_SQL, params)
            for group_id, epoch, energy, provisional in cursor.fetchall():
                nets[group_id][epoch] = [energy, provisional]
        return nets
    lines = LedgerLine.objects.filter(tenant_id=tenant_id, quarter_start__gte=u0, quarter_start__lt=u1)

    def add(rows, energy_sign: int, count_sign: int):
        for group_id, epoch, energy, provisional in rows:
            entry = nets[group_id].setdefault(epoch, [0, 0])
            entry[0] += energy_sign * energy
            entry[1] += count_sign * provisional

    for column, sign in (("destination_id", 1), ("source_id", -1)):
        rows = (
            lines.filter(**{f"{column}__in": group_ids})
            .annotate(epoch=EpochSeconds("quarter_start"))
            .values_list(column, "epoch")
            .annotate(energy=Sum("energy_wh"), provisional=Count("id", filter=Q(is_final=False)))
            .order_by()
        )
        add(rows, sign, 1)
    child = F("booking__settlement__child_id")
    own = (
        lines.filter(
            booking__settlement__child_id__in=group_ids,
            booking__settlement__window_start__gte=u0,
            booking__settlement__window_start__lt=u1,
        )
        .annotate(
            epoch=EpochSeconds("quarter_start"),
            child=child,
            signed=Case(When(destination_id=child, then=F("energy_wh")), default=-F("energy_wh")),
        )
        .values_list("child", "epoch")
        .annotate(energy=Sum("signed"), provisional=Count("id", filter=Q(is_final=False)))
        .order_by()
    )
    add(own, -1, -1)
    return nets


def _wanted_for_level(versions_by_group, group_ids, u0, u1, now, nets) -> list[_Wanted]:
    wanted = []
    targets_of: dict = {}  # version pk -> its targets (``.all()`` builds a new queryset per call)
    for group_id in group_ids:
        windows = [w for w in rule_windows(versions_by_group[group_id], u0, u1) if w[2] <= now]
        if not windows:
            continue
        starts = [_epoch(w[1]) for w in windows]
        ends = [_epoch(w[2]) for w in windows]
        totals = [[0, 0] for _ in windows]
        for epoch, (net, provisional) in nets.get(group_id, {}).items():
            index = bisect.bisect_right(starts, epoch) - 1
            if index >= 0 and epoch < ends[index]:
                totals[index][0] += net
                totals[index][1] += provisional
        for (version, start, end), start_epoch, (net, provisional) in zip(windows, starts, totals, strict=True):
            targets = targets_of.get(version.pk)
            if targets is None:
                targets = targets_of[version.pk] = list(version.targets.all())
            parts = split_by_shares(net, [target.share for target in targets])
            for target, part in zip(targets, parts, strict=True):
                wanted.append(
                    _Wanted(version.pk, group_id, target.parent_id, start, end, part, provisional == 0, start_epoch)
                )
    return wanted


@dataclass
class _Existing:
    booking_id: object
    revision: int
    window_end: int
    delivers: bool  # the child is the booking's source
    energy_wh: int
    final: bool

    @property
    def signed(self) -> int:
        return self.energy_wh if self.delivers else -self.energy_wh


def _existing_links(group_ids, u0, u1) -> dict:
    existing = defaultdict(list)
    rows = (
        SettlementBooking.objects.filter(child_id__in=group_ids, window_start__gte=u0, window_start__lt=u1)
        .annotate(
            start_epoch=EpochSeconds("window_start"),
            end_epoch=EpochSeconds("window_end"),
            delivers=Case(
                When(booking__source_id=F("child_id"), then=Value(1)), default=Value(0), output_field=IntegerField()
            ),
        )
        .values_list(
            "rule_id",
            "parent_id",
            "start_epoch",
            "booking_id",
            "revision",
            "end_epoch",
            "delivers",
            "booking__energy_wh",
            "booking__status",
        )
    )
    for rule_id, parent_id, start, booking_id, revision, end, delivers, energy, status in rows:
        existing[(rule_id, parent_id, start)].append(
            _Existing(booking_id, revision, end, bool(delivers), energy, status == BookingStatus.FINAL)
        )
    return existing


def _chunks(items: list, size: int = 5000):
    for index in range(0, len(items), size):
        yield items[index : index + size]


class _RowWriter:
    """Rows for one table, written in one go: COPY on PostgreSQL, ``bulk_create`` elsewhere.

    Rows are plain dicts over the model's concrete fields (defaults filled in from the model), so
    the hot path builds no model instances on PostgreSQL.
    """

    def __init__(self, model):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, AutoField))]
        self.defaults = {f.attname: f.get_default() for f in self.fields if not f.primary_key}
        self.rows: list[dict] = []

    def add(self, **values) -> None:
        self.rows.append({**self.defaults, **values})

    def write(self) -> None:
        if not self.rows:
            return
        if not is_postgres():
            self.model.objects.bulk_create([self.model(**row) for row in self.rows], batch_size=2000)
            return
        columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        attnames = [f.attname for f in self.fields]
        sql = f"COPY {connection.ops.quote_name(self.model._meta.db_table)} ({columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            # COPY's text format built here in one pass: far cheaper than per-value dumpers.
            for chunk in _chunks(self.rows, 20000):
                copy.write("".join("\t".join([_copy_text(row[name]) for name in attnames]) + "\n" for row in chunk))


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def _delete_bookings(booking_ids: list) -> None:
    for chunk in _chunks(booking_ids):
        LedgerLine.objects.filter(booking_id__in=chunk).delete()
        SettlementBooking.objects.filter(booking_id__in=chunk).delete()
        Booking.objects.filter(pk__in=chunk, status=BookingStatus.PROVISIONAL, kind=BookingKind.SETTLEMENT).delete()


_FINAL, _PROVISIONAL = BookingStatus.FINAL, BookingStatus.PROVISIONAL  # enum attribute access is not free


def _status(want: _Wanted) -> str:
    return _FINAL if want.final else _PROVISIONAL


def _apply_level(*, tenant_id, group_ids, wanted: list[_Wanted], u0, u1, codes: dict, now, stats: UnitStats):
    """Bring the settlement bookings of ``group_ids`` in the unit to ``wanted``: a diff, so an
    unchanged input writes nothing and a final booking is never touched. A changed provisional
    booking is replaced under the same key."""
    existing = _existing_links(group_ids, u0, u1)
    now_epoch = _epoch(now)
    to_delete: list = []
    to_finalize: list = []
    to_create: list[tuple] = []  # (want, remainder, revision, status, replaces a provisional booking)
    replaced = 0

    seen = set()
    for want in wanted:
        key = (want.rule_id, want.parent_id, want.start_epoch)
        seen.add(key)
        current = existing.get(key, ())
        if not current:
            if want.amount:
                to_create.append((want, want.amount, 0, _status(want), False))
            continue
        finals = [link for link in current if link.final]
        provisionals = sorted((link for link in current if not link.final), key=lambda link: link.revision)
        remainder = want.amount - sum(link.signed for link in finals)
        if remainder == 0:
            to_delete.extend(link.booking_id for link in provisionals)
            continue
        status = _status(want)
        if provisionals:
            keep = provisionals[-1]
            to_delete.extend(link.booking_id for link in provisionals[:-1])
            same_flow = (
                keep.delivers == (remainder > 0)
                and keep.energy_wh == abs(remainder)
                and keep.window_end == _epoch(want.window_end)
            )
            if same_flow:
                if want.final:
                    to_finalize.append(keep.booking_id)
                continue
            to_delete.append(keep.booking_id)
            to_create.append((want, remainder, keep.revision, status, True))
            replaced += 1
            continue
        revision = max((link.revision for link in current), default=-1) + 1
        to_create.append((want, remainder, revision, status, False))

    # A window no rule produces any more: drop what is provisional there.
    for key, current in existing.items():
        if key not in seen and current[0].window_end <= now_epoch:
            to_delete.extend(link.booking_id for link in current if not link.final)

    if to_delete:
        _delete_bookings(to_delete)
        stats.deleted += len(to_delete) - replaced
    if to_finalize:
        for chunk in _chunks(to_finalize):
            Booking.objects.filter(pk__in=chunk, status=BookingStatus.PROVISIONAL).update(
                status=BookingStatus.FINAL, finalized_at=now, updated_by=SETTLE_LABEL, updated_at=now
            )
            LedgerLine.objects.filter(booking_id__in=chunk).update(is_final=True)
        stats.finalized += len(to_finalize)
    if to_create:
        if is_postgres():
            _create_copy(tenant_id=tenant_id, to_create=to_create, codes=codes, now=now)
        else:
            _create_rows(tenant_id=tenant_id, to_create=to_create, codes=codes, now=now)
        replaced_final = sum(1 for *_, status, replacing in to_create if replacing and status == BookingStatus.FINAL)
        stats.created += len(to_create) - replaced
        stats.updated += replaced - replaced_final
        stats.finalized += replaced_final


def _booking_name(code: str, window_start: dt.datetime) -> str:
    return f"Settlement {code} {window_start:%Y-%m-%d %H:%M}Z"[:200]


def _create_rows(*, tenant_id, to_create: list[tuple], codes: dict, now) -> None:
    """The portable writer: rows as dicts, ``bulk_create`` (COPY is PostgreSQL only)."""
    bookings, links, lines = _RowWriter(Booking), _RowWriter(SettlementBooking), _RowWriter(LedgerLine)
    for want, remainder, revision, status, _ in to_create:
        booking_id = uuid.uuid4()
        source, destination = (want.child_id, want.parent_id) if remainder > 0 else (want.parent_id, want.child_id)
        final = status == BookingStatus.FINAL
        energy = abs(remainder)
        bookings.add(
            id=booking_id,
            tenant_id=tenant_id,
            name=_booking_name(codes.get(want.child_id, ""), want.window_start),
            source_id=source,
            destination_id=destination,
            start=want.window_start,
            end=want.window_end,
            energy_wh=energy,
            status=status,
            kind=BookingKind.SETTLEMENT,
            created_by=SETTLE_LABEL,
            updated_by=SETTLE_LABEL,
            created_at=now,
            updated_at=now,
            finalized_at=now if final else None,
        )
        links.add(
            booking_id=booking_id,
            tenant_id=tenant_id,
            rule_id=want.rule_id,
            child_id=want.child_id,
            parent_id=want.parent_id,
            window_start=want.window_start,
            window_end=want.window_end,
            revision=revision,
        )
        # The same exact split as ``build_lines``: one line per quarter-hour, zero parts left out.
        quarters = list(iter_quarters(want.window_start, want.window_end))
        for quarter, part in zip(quarters, split_energy(energy, len(quarters)), strict=True):
            if part > 0:
                lines.add(
                    booking_id=booking_id,
                    tenant_id=tenant_id,
                    source_id=source,
                    destination_id=destination,
                    quarter_start=quarter,
                    energy_wh=part,
                    is_final=final,
                )
    bookings.write()
    links.write()
    lines.write()


# The columns the COPY writer fills, per table: every concrete column but an auto id.
BOOKING_COPY_FIELDS = (
    "id",
    "tenant_id",
    "external_id",
    "name",
    "source_id",
    "destination_id",
    "start",
    "end",
    "energy_wh",
    "status",
    "kind",
    "reverses_id",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "finalized_at",
)
LINK_COPY_FIELDS = (
    "booking_id",
    "rule_id",
    "tenant_id",
    "child_id",
    "parent_id",
    "window_start",
    "window_end",
    "revision",
)
LINE_COPY_FIELDS = ("booking_id", "tenant_id", "source_id", "destination_id", "quarter_start", "energy_wh", "is_final")


def _copy_sql(model, attnames: tuple) -> str:
    """``COPY table (columns) FROM STDIN`` for exactly ``attnames``, which must be all the model's
    columns but an auto id (so a new column fails loudly here instead of being left to chance)."""
    fields = {f.attname: f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, AutoField))}
    if set(fields) != set(attnames):
        raise RuntimeError(f"COPY columns of {model.__name__} are out of date: {sorted(set(fields) ^ set(attnames))}")
    columns = ", ".join(connection.ops.quote_name(fields[name].column) for name in attnames)
    return f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"


def _copy_write(sql: str, text_lines: list[str]) -> None:
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for chunk in _chunks(text_lines, 20000):
            copy.write("".join(chunk))


def _uuid4_texts(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as text, as ``str(uuid.uuid4())`` gives them, from one
    read of the system's random source."""
    random = os.urandom(16 * count)
    texts = []
    for index in range(0, 16 * count, 16):
        value = int.from_bytes(random[index : index + 16]) & _UUID4_CLEAR | _UUID4_SET
        hexa = f"{value:032x}"
        texts.append(f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:]}")
    return texts


# The version (4) and variant (RFC 4122) bits, as ``uuid.UUID(..., version=4)`` sets them.
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def _create_copy(*, tenant_id, to_create: list[tuple], codes: dict, now) -> None:
    """The PostgreSQL writer: COPY text built line by line per table, timestamps formatted once
    per instant. Writes the same rows as ``_create_rows``."""
    tenant = str(tenant_id)
    label = _copy_text(SETTLE_LABEL)
    now_text = _copy_text(now)
    null = _copy_text(None)
    settlement_kind = _copy_text(BookingKind.SETTLEMENT)
    status_text = {_FINAL: _copy_text(_FINAL), _PROVISIONAL: _copy_text(_PROVISIONAL)}
    instants: dict = {}  # epoch -> COPY text of the instant

    def instant_text(epoch: int) -> str:
        text = instants.get(epoch)
        if text is None:
            text = instants[epoch] = dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()
        return text

    names: dict = {}  # (child, window start epoch) -> COPY text of the booking name
    stamps: dict = {}  # window start epoch -> its minute as the name shows it
    booking_rows: list[str] = []
    link_rows: list[str] = []
    line_rows: list[str] = []
    quarter = int(QUARTER.total_seconds())
    for (want, remainder, revision, status, _), booking_id in zip(to_create, _uuid4_texts(len(to_create)), strict=True):
        child, parent = str(want.child_id), str(want.parent_id)
        source, destination = (child, parent) if remainder > 0 else (parent, child)
        final = status == _FINAL
        energy = abs(remainder)
        start_epoch = want.start_epoch
        end_epoch = _epoch(want.window_end)
        start_text, end_text = instant_text(start_epoch), instant_text(end_epoch)
        name = names.get((want.child_id, start_epoch))
        if name is None:
            stamp = stamps.get(start_epoch)
            if stamp is None:
                stamp = stamps[start_epoch] = f"{want.window_start:%Y-%m-%d %H:%M}"
            # ``_booking_name`` with the timestamp formatted once per window start.
            name = names[(want.child_id, start_epoch)] = _copy_text(
                f"Settlement {codes.get(want.child_id, '')} {stamp}Z"[:200]
            )
        booking_rows.append(
            f"{booking_id}\t{tenant}\t\\N\t{name}\t{source}\t{destination}\t{start_text}\t{end_text}\t{energy}\t"
            f"{status_text[status]}\t{settlement_kind}\t\\N\t{now_text}\t{label}\t{now_text}\t{label}\t"
            f"{now_text if final else null}\n"
        )
        link_rows.append(
            f"{booking_id}\t{want.rule_id}\t{tenant}\t{child}\t{parent}\t{start_text}\t{end_text}\t{revision}\n"
        )
        # The same exact split as ``build_lines``: one line per quarter-hour, zero parts left out.
        count = (end_epoch - start_epoch) // quarter
        base, extra = divmod(energy, count)
        prefix = f"{booking_id}\t{tenant}\t{source}\t{destination}\t"
        suffix = "\tt\n" if final else "\tf\n"
        for index in range(count):
            part = base + 1 if index < extra else base
            if part > 0:
                line_rows.append(f"{prefix}{instant_text(start_epoch + index * quarter)}\t{part}{suffix}")
    _copy_write(_copy_sql(Booking, BOOKING_COPY_FIELDS), booking_rows)
    _copy_write(_copy_sql(SettlementBooking, LINK_COPY_FIELDS), link_rows)
    _copy_write(_copy_sql(LedgerLine, LINE_COPY_FIELDS), line_rows)


LINE_AGGREGATE_SQL = """
SELECT x.group_id, x.quarter_start, SUM(x.inflow) AS inflow, SUM(x.outflow) AS outflow, COUNT(*) AS lines,
       MIN(x.final) = 1 AS final
FROM (
    SELECT destination_id AS group_id, quarter_start, energy_wh AS inflow, 0 AS outflow,
           CASE WHEN is_final THEN 1 ELSE 0 END AS final
    FROM transactions_ledgerline WHERE tenant_id = %(tenant)s AND quarter_start >= %(lo)s AND quarter_start < %(hi)s
    UNION ALL
    SELECT source_id AS group_id, quarter_start, 0 AS inflow, energy_wh AS outflow,
           CASE WHEN is_final THEN 1 ELSE 0 END AS final
    FROM transactions_ledgerline WHERE tenant_id = %(tenant)s AND quarter_start >= %(lo)s AND quarter_start < %(hi)s
) AS x
GROUP BY x.group_id, x.quarter_start
"""

IMBALANCE_COLUMNS = "(tenant_id, group_id, quarter_start, inflow_wh, outflow_wh, net_wh, line_count, is_final)"

# Portable: replace the unit's rows with the aggregate.
IMBALANCE_INSERT_SQL = f"""
INSERT INTO settlement_imbalance {IMBALANCE_COLUMNS}
SELECT %(tenant)s, a.group_id, a.quarter_start, a.inflow, a.outflow, a.inflow - a.outflow, a.lines, a.final
FROM ({LINE_AGGREGATE_SQL}) AS a
"""  # noqa: S608 - constant SQL, values are parameters

# PostgreSQL: one statement that writes only rows whose values changed and drops rows without lines,
# so a run over an unchanged day writes nothing.
IMBALANCE_UPSERT_SQL = f"""
WITH a AS ({LINE_AGGREGATE_SQL}),
upsert AS (
    INSERT INTO settlement_imbalance {IMBALANCE_COLUMNS}
    SELECT %(tenant)s, a.group_id, a.quarter_start, a.inflow, a.outflow, a.inflow - a.outflow, a.lines, a.final FROM a
    ON CONFLICT (group_id, quarter_start) DO UPDATE SET
        inflow_wh = EXCLUDED.inflow_wh, outflow_wh = EXCLUDED.outflow_wh, net_wh = EXCLUDED.net_wh,
        line_count = EXCLUDED.line_count, is_final = EXCLUDED.is_final
    WHERE (settlement_imbalance.inflow_wh, settlement_imbalance.outflow_wh, settlement_imbalance.line_count,
           settlement_imbalance.is_final)
          IS DISTINCT FROM (EXCLUDED.inflow_wh, EXCLUDED.outflow_wh, EXCLUDED.line_count, EXCLUDED.is_final)
    RETURNING 1
)
DELETE FROM settlement_imbalance i
WHERE i.tenant_id = %(tenant)s AND i.quarter_start >= %(lo)s AND i.quarter_start < %(hi)s
  AND NOT EXISTS (SELECT 1 FROM a WHERE a.group_id = i.group_id AND a.quarter_start = i.quarter_start)
"""  # noqa: S608


def _recompute_imbalances(tenant_id, u0, u1, stats: UnitStats) -> None:
    """Bring the unit's imbalances to one set-based aggregate over its lines."""
    params = {
        "tenant": tenant_id,
        "lo": connection.ops.adapt_datetimefield_value(u0),
        "hi": connection.ops.adapt_datetimefield_value(u1),
    }
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(IMBALANCE_UPSERT_SQL, params)
        else:
            Imbalance.objects.filter(tenant_id=tenant_id, quarter_start__gte=u0, quarter_start__lt=u1).delete()
            cursor.execute(IMBALANCE_INSERT_SQL, params)
    # No ordering: the model's default one (through the group's code) would make DISTINCT per row.
    summary = Imbalance.objects.filter(tenant_id=tenant_id, quarter_start__gte=u0, quarter_start__lt=u1).order_by()
    stats.lines_read += (summary.aggregate(total=Sum("line_count"))["total"] or 0) // 2
    stats.groups |= set(summary.values_list("group_id", flat=True).distinct())


def _load_versions(tenant_id, u0, u1) -> dict:
    versions = (
        SettlementRule.objects.filter(tenant_id=tenant_id, effective_from__lt=u1)
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=u0))
        .prefetch_related("targets")
        .order_by("group_id", "effective_from")
    )
    by_group = defaultdict(list)
    for version in versions:
        by_group[version.group_id].append(version)
    return by_group


def settle_unit(*, tenant_id, u0: dt.datetime, u1: dt.datetime, now: dt.datetime | None = None) -> UnitStats:
    """Settle one local day of one tenant and refresh its imbalances, in one transaction."""
    now = now or timezone.now()
    stats = UnitStats()
    with transaction.atomic():
        _lock_tenant(tenant_id)
        if is_postgres():
            # The unit's aggregates hash about a day of lines: let them do so in memory.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '64MB'")
        DirtyDay.objects.filter(tenant_id=tenant_id, day_start=u0).delete()
        versions_by_group = _load_versions(tenant_id, u0, u1)
        if versions_by_group:
            levels = _levels(versions_by_group)
            codes = dict(BalanceGroup.objects.filter(tenant_id=tenant_id).values_list("pk", "code"))
            for level in sorted(set(levels.values())):
                group_ids = sorted((g for g, lv in levels.items() if lv == level), key=str)
                nets = _child_nets(tenant_id, group_ids, u0, u1)
                wanted = _wanted_for_level(versions_by_group, group_ids, u0, u1, now, nets)
                _apply_level(
                    tenant_id=tenant_id,
                    group_ids=group_ids,
                    wanted=wanted,
                    u0=u0,
                    u1=u1,
                    codes=codes,
                    now=now,
                    stats=stats,
                )
        _recompute_imbalances(tenant_id, u0, u1, stats)
        if stats.changed:
            audit_record(
                tenant=Tenant(pk=tenant_id),
                actor=SETTLE_ACTOR,
                action="settlement.apply",
                obj=Tenant(pk=tenant_id),
                data={
                    "start": u0.isoformat(),
                    "end": u1.isoformat(),
                    "created": stats.created,
                    "updated": stats.updated,
                    "finalized": stats.finalized,
                    "deleted": stats.deleted,
                },
            )
    return stats


def settle_units(*, tenant_id, units: Iterable[tuple[dt.datetime, dt.datetime]], now=None, progress=None) -> UnitStats:
    total = UnitStats()
    units = list(units)
    for index, (u0, u1) in enumerate(units, start=1):
        total.add(settle_unit(tenant_id=tenant_id, u0=u0, u1=u1, now=now))
        if progress is not None:
            progress(index, len(units), u0)
    return total


# ---------------------------------------------------------------------------------------------
# Runs


ANALYZE_AFTER_ROWS = 10_000
ANALYZED_TABLES = (
    "transactions_ledgerline",
    "transactions_booking",
    "settlement_settlementbooking",
    "settlement_imbalance",
)


def _refresh_statistics(tables=ANALYZED_TABLES) -> None:
    """Let the PostgreSQL planner see tables that grew in bulk since autovacuum last looked
    (a month of lines loaded a minute ago looks empty to it). Runs between units, outside their
    transactions."""
    if is_postgres():
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def _execute(run: SettlementRun, units, *, progress: Progress | None = None, now=None) -> SettlementRun:
    units = list(units)
    run.status = RunStatus.RUNNING
    run.started_at = timezone.now()
    run.finished_at = None
    run.error = ""
    run.days_total = len(units)
    run.days_done = 0
    run.save()
    totals = UnitStats()
    if len(units) > 1:
        _refresh_statistics()  # lines may just have been loaded in bulk
    written_since_analyze = 0
    try:
        for index, (u0, u1) in enumerate(units, start=1):
            stats = settle_unit(tenant_id=run.tenant_id, u0=u0, u1=u1, now=now)
            totals.add(stats)
            written_since_analyze += stats.created + stats.updated + stats.deleted
            if written_since_analyze >= ANALYZE_AFTER_ROWS:
                _refresh_statistics()
                written_since_analyze = 0
            run.days_done = index
            _copy_counts(run, totals)
            run.save(update_fields=_COUNT_FIELDS)
            if progress is not None:
                progress(index, len(units), u0)
    except BaseException as error:
        run.status = RunStatus.FAILED
        run.error = f"{type(error).__name__}: {error}"[:2000]
        run.finished_at = timezone.now()
        run.save()
        logger.exception("settlement run %s failed", run.pk)
        raise
    run.status = RunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    with transaction.atomic():
        run.save()
        audit_record(
            tenant=run.tenant,
            actor=run.requested_by or SETTLE_ACTOR,
            action="settlement.run",
            obj=run,
            data={
                "start": run.start.isoformat(),
                "end": run.end.isoformat(),
                "groups": run.groups,
                "lines_read": run.lines_read,
                "created": run.bookings_created,
                "updated": run.bookings_updated,
                "finalized": run.bookings_finalized,
                "deleted": run.bookings_deleted,
            },
        )
    return run


_COUNT_FIELDS = [
    "days_done",
    "groups",
    "lines_read",
    "bookings_created",
    "bookings_updated",
    "bookings_finalized",
    "bookings_deleted",
]


def _copy_counts(run: SettlementRun, totals: UnitStats) -> None:
    run.groups = len(totals.groups)
    run.lines_read = totals.lines_read
    run.bookings_created = totals.created
    run.bookings_updated = totals.updated
    run.bookings_finalized = totals.finalized
    run.bookings_deleted = totals.deleted


def settlement_run(
    *,
    tenant,
    start: dt.datetime,
    end: dt.datetime,
    trigger: str = RunTrigger.SERVICE,
    progress: Progress | None = None,
    actor=SETTLE_ACTOR,
    now: dt.datetime | None = None,
) -> SettlementRun:
    """Settle ``[start, end)`` (widened to whole local days) now, in this process.

    Records a ``SettlementRun`` with counts and timing; raises (after recording the failure)
    when a unit fails. Units already done stay done: running again completes the window.
    """
    start, end = require_window(start, end)
    run = SettlementRun.objects.create(
        tenant=tenant, start=start, end=end, trigger=trigger, status=RunStatus.QUEUED, requested_by=actor_label(actor)
    )
    return _execute(run, unit_bounds(start, end), progress=progress, now=now)


def settlement_run_execute(*, run_id) -> SettlementRun | None:
    """Execute a queued run (the Celery task's body). A run that succeeded already is left alone,
    so a redelivered task has no second effect."""
    run = SettlementRun.objects.select_related("tenant").filter(pk=run_id).first()
    if run is None:
        logger.warning("settlement run %s does not exist", run_id)
        return None
    if run.status == RunStatus.SUCCEEDED:
        return run
    return _execute(run, unit_bounds(run.start, run.end))


def _broker_eager() -> bool:
    from bkm.celery import app

    return bool(app.conf.task_always_eager)


def settlement_run_request(*, tenant, actor, start, end) -> SettlementRun:
    """Queue a settlement of ``[start, end)``: a Celery task on commit, or (without a broker) run
    in this process right away. Returns the run (final state when run in-process)."""
    start = parse_instant(start, "start")
    end = parse_instant(end, "end")
    start, end = require_window(start, end)
    if end - start > dt.timedelta(days=MAX_REQUEST_DAYS):
        raise InvalidInput.for_field("end", f"A settlement run covers at most {MAX_REQUEST_DAYS} days.")
    from settlement.tasks import settlement_run_task

    with transaction.atomic():
        run = SettlementRun.objects.create(
            tenant=tenant,
            start=start,
            end=end,
            trigger=RunTrigger.MANUAL,
            status=RunStatus.QUEUED,
            requested_by=actor_label(actor),
        )
        audit_record(
            tenant=tenant,
            actor=actor,
            action="settlement.request",
            obj=run,
            data={"start": start.isoformat(), "end": end.isoformat()},
        )
        if not _broker_eager():
            run_id = str(run.pk)
            transaction.on_commit(lambda: settlement_run_task.delay(run_id))
            return run
    try:
        settlement_run_task.delay(str(run.pk))
    except Exception:  # the failure is recorded on the run, which the caller shows
        logger.warning("in-process settlement run %s failed", run.pk)
    run.refresh_from_db()
    return run


def settlement_dirty_process(*, tenant_id=None, now: dt.datetime | None = None) -> list[SettlementRun]:
    """The periodic job: settle every day whose ledger changed, and the days in which rule windows
    ended since the last look. One run per tenant that had work."""
    now = now or timezone.now()
    tenants = Tenant.objects.all() if tenant_id is None else Tenant.objects.filter(pk=tenant_id)
    runs = []
    for tenant in tenants.order_by("pk"):
        _mark_ended_windows(tenant, now)
        days = list(DirtyDay.objects.filter(tenant=tenant).order_by("day_start").values_list("day_start", flat=True))
        if not days:
            continue
        units = [unit_of(day) for day in days]
        run = SettlementRun.objects.create(
            tenant=tenant,
            start=units[0][0],
            end=units[-1][1],
            trigger=RunTrigger.SCHEDULE,
            status=RunStatus.QUEUED,
            requested_by=SETTLE_ACTOR,
        )
        runs.append(_execute(run, units, now=now))
    return runs


def _mark_ended_windows(tenant, now: dt.datetime) -> None:
    """Mark the days in which rule windows ended since the last look (tenants with rules only)."""
    if not SettlementRule.objects.filter(tenant=tenant).exists():
        return
    with transaction.atomic():
        cursor, _ = SettlementCursor.objects.select_for_update().get_or_create(
            tenant=tenant, defaults={"checked_until": now - dt.timedelta(days=1)}
        )
        since = cursor.checked_until
        if since >= now:
            return
        # The window that ended exactly at ``since`` may not have been seen: look one quarter back.
        days = {u0 for u0, _ in unit_bounds(since - QUARTER, now)}
        DirtyDay.objects.bulk_create(
            [DirtyDay(tenant=tenant, day_start=day) for day in sorted(days)], ignore_conflicts=True
        )
        cursor.checked_until = now
        cursor.save(update_fields=["checked_until"])


def tenant_by_code(code: str) -> Tenant:
    tenant = Tenant.objects.filter(code=code).first()
    if tenant is None:
        raise NotFound(f"Tenant {code!r} does not exist.")
    return tenant
