"""Writing measurements: many API-shaped items in one request, one transaction.

Rules (DOMAIN.md, "Measurements"), applied as if the items arrived one after another:

- one item is the energy of one group in one aligned quarter-hour (``end`` optional, and then
  ``start`` + 15 min); ``energy_wh`` an integer ≥ 0; ``quality`` measured (default), substitute or
  estimated; ``status`` provisional (default) or final, and final only for a measured value;
- the group is a source or a consumer of the tenant (by id, code or metering point), valid over
  the quarter-hour and not closed there, else the item is refused and kept as a clarification case;
- re-sent for the same (group, quarter-hour): identical → unchanged; different while the stored
  value is provisional → replaced; different while it is final → refused ``MEASUREMENT_FINAL`` and
  kept as a clarification case (its resolution corrects the value: ``measurement_correct``).

New values are COPYed on PostgreSQL; replaced ones are updated in one statement. The days touched
are marked for recomputation (``settlement.dirty``): allocation and settlement follow. Requests of
one tenant are serialised by an advisory lock. One audit entry per request.
"""

import contextlib
import datetime as dt
import gc
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from allocation.models import Measurement, Quality
from balance_groups.audit import actor_label, audit_record
from balance_groups.models import AuditAction, GroupKind
from balance_groups.selectors import GroupIndex, group_index
from core.db import EpochSeconds, TableRows, advisory_xact_lock, chunks, is_postgres
from core.errors import BkmError, GroupNotValid, InvalidInput, MeasurementFinal, PeriodClosed
from core.quarters import QUARTER_SECONDS, from_epoch, parse_instant, to_epoch
from core.status import Status
from core.text import Message, field_label
from settlement.dirty import mark_changed
from transactions.models import ClarificationCase, ClarificationReason, ClarificationSubject

MAX_ITEMS = 100_000
LOCK_NAMESPACE = 0x424B4D45  # "BKME": advisory locks (namespace, tenant id) for measurement writes
FINAL, PROVISIONAL = Status.FINAL.value, Status.PROVISIONAL.value
MEASURED = Quality.MEASURED.value
QUALITIES = frozenset(Quality.values)
STATUSES = frozenset(Status.values)
MEASURED_KINDS = frozenset({GroupKind.SOURCE.value, GroupKind.CONSUMER.value})
ITEM_FIELDS = frozenset({"group", "start", "end", "energy_wh", "quality", "status"})
COLUMNS = ("tenant_id", "group_id", "quarter_start", "energy_wh", "quality", "status", "updated_at", "updated_by")
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
MICROSECOND = dt.timedelta(microseconds=1)
_UNSEEN = object()  # a reference not looked up yet (None: looked up, no such group)


@dataclass
class IngestResult:
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    rejected: list[dict] = field(default_factory=list)  # {"index", "code", "detail"}


@dataclass(frozen=True)
class MeasurementRequest:
    """The audited object of one request."""

    pk: uuid.UUID


def _refusal(index: int, error: BkmError) -> dict:
    entry = {"index": index, "code": error.code, "detail": error.detail}
    if error.errors:
        entry["errors"] = error.errors
    return entry


def _energy(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput.for_field("energy_wh", _("The energy must be a whole number of watt-hours."))
    if value < 0:
        raise InvalidInput.for_field("energy_wh", _("The energy must be 0 Wh or more."))
    if value >= 2**63:
        raise InvalidInput.for_field("energy_wh", _("The energy is out of range."))
    return value


CHOICE_MESSAGES = {
    "quality": gettext_lazy("The quality must be one of %(choices)s."),
    "status": gettext_lazy("The status must be one of %(choices)s."),
}


def _choice(item: dict, name: str, allowed: frozenset, default: str) -> str:
    value = item.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput.for_field(name, str(CHOICE_MESSAGES[name]) % {"choices": ", ".join(sorted(allowed))})
    return value


def _epoch(item: dict, name: str, instants: dict) -> int:
    """The instant ``item[name]`` as an epoch; each distinct text is parsed once per request."""
    value = item.get(name)
    if value is None:
        raise InvalidInput.for_field(name, _("%(field)s is required.") % {"field": field_label(name)})
    if value.__class__ is str:
        epoch = instants.get(value)
        if epoch is None:
            epoch = instants[value] = to_epoch(parse_instant(value, name))
        return epoch
    return to_epoch(parse_instant(value, name))


def bookable_error(group, start: dt.datetime) -> BkmError | None:
    """Why a value of ``group`` for the quarter-hour at ``start`` cannot be stored, or None."""
    end = start + dt.timedelta(seconds=QUARTER_SECONDS)
    values = {"code": group.code, "valid_from": group.valid_from, "start": start}
    if group.valid_from > start or (group.valid_until is not None and group.valid_until < end):
        if group.valid_until is None:
            message = gettext_noop("Group %(code)s is valid from %(valid_from)s on; the measurement is for %(start)s.")
        else:
            values["valid_until"] = group.valid_until
            message = gettext_noop(
                "Group %(code)s is valid from %(valid_from)s to %(valid_until)s; the measurement is for %(start)s."
            )
        return GroupNotValid(Message(message, values))
    if group.closed_until is not None and start < group.closed_until:
        values["closed_until"] = group.closed_until
        return PeriodClosed(
            Message(
                gettext_noop("Group %(code)s is closed until %(closed_until)s; the measurement is for %(start)s."),
                values,
            )
        )
    return None


def _microseconds(instant: dt.datetime) -> int:
    return (instant - EPOCH) // MICROSECOND


def bookable_epochs(group) -> tuple[float, float]:
    """``(first, last)``: the quarter-hour starts (epochs) at which ``bookable_error`` finds nothing.

    The same comparisons in exact integer microseconds, so a stored instant off the second
    cannot be rounded either way.
    """
    low = _microseconds(group.valid_from)
    if group.closed_until is not None:
        low = max(low, _microseconds(group.closed_until))
    first = -(-low // 1_000_000)
    if group.valid_until is None:
        return first, math.inf
    return first, (_microseconds(group.valid_until) - QUARTER_SECONDS * 1_000_000) // 1_000_000


@dataclass
class Memo:
    """What one request resolves once: its group references and instant texts."""

    groups: GroupIndex
    refs: dict = field(default_factory=dict)  # reference text -> group or None
    instants: dict = field(default_factory=dict)  # instant text -> epoch


def clean_item(item, memo: Memo) -> tuple:
    """One item as ``(group, start epoch, energy_wh, quality, status)``; raises ``BkmError``."""
    if not isinstance(item, dict):
        raise InvalidInput(_("Each measurement must be an object."))
    if not ITEM_FIELDS.issuperset(item):
        name = sorted(set(item) - ITEM_FIELDS)[0]
        raise InvalidInput.for_field(name, _("Unknown field %(name)s.") % {"name": repr(name[:64])})
    ref = item.get("group")
    group = memo.refs.get(ref, _UNSEEN) if ref.__class__ is str else _UNSEEN
    if group is _UNSEEN:
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidInput.for_field("group", _("A group is required: its id, code or metering point."))
        group = memo.refs[ref] = memo.groups.get(ref)
    if group is None:
        raise InvalidInput.for_field("group", _("Balance group %(ref)s not found.") % {"ref": repr(ref.strip()[:80])})
    if group.kind not in MEASURED_KINDS:
        raise InvalidInput.for_field(
            "group",
            _("Group %(code)s is a balance; measurements are for sources and consumers.") % {"code": group.code},
        )
    start = _epoch(item, "start", memo.instants)
    if item.get("end") is not None and _epoch(item, "end", memo.instants) - start != QUARTER_SECONDS:
        raise InvalidInput.for_field(
            "end", _("A measurement covers exactly one quarter-hour: the end is 15 minutes after the start.")
        )
    energy = item.get("energy_wh")
    if energy.__class__ is not int or not 0 <= energy < 2**63:
        energy = _energy(energy)
    quality = item.get("quality")
    if quality is None:
        quality = MEASURED
    elif quality.__class__ is not str or quality not in QUALITIES:
        quality = _choice(item, "quality", QUALITIES, MEASURED)
    status = item.get("status")
    if status is None:
        status = PROVISIONAL
    elif status.__class__ is not str or status not in STATUSES:
        status = _choice(item, "status", STATUSES, PROVISIONAL)
    if status == FINAL and quality != MEASURED:
        raise InvalidInput.for_field(
            "status",
            _("Only a measured value can be final; a %(quality)s value stays provisional.") % {"quality": quality},
        )
    return group, start, energy, quality, status


@dataclass
class _Plan:
    inserts: dict = field(default_factory=dict)  # (group id text, epoch) -> (energy, quality, status)
    updates: dict = field(default_factory=dict)  # (group id text, epoch) -> (row id, energy, quality, status)
    result: IngestResult = field(default_factory=IngestResult)
    clarify: list = field(default_factory=list)  # (error, item index)

    @property
    def touched(self) -> list[int]:
        return [epoch for _, epoch in (*self.inserts, *self.updates)]


def _stored(tenant, keys: set) -> dict:
    """``{(group id text, epoch): (row id, energy, quality, status)}`` for the keys that exist."""
    if not keys:
        return {}
    epochs = [epoch for _, epoch in keys]
    group_ids = sorted({group_id for group_id, _ in keys})
    texts: dict = {}  # group UUID -> its text, formatted once per group
    found = {}
    for chunk in chunks(group_ids, 500):
        # Instants read back as integer seconds: parsing a timestamp per row costs more than the query.
        rows = (
            Measurement.objects.filter(
                tenant=tenant,
                group_id__in=chunk,
                quarter_start__gte=from_epoch(min(epochs)),
                quarter_start__lte=from_epoch(max(epochs)),
            )
            .annotate(epoch=EpochSeconds("quarter_start"))
            .values_list("id", "group_id", "epoch", "energy_wh", "quality", "status")
        )
        for pk, group_id, epoch, energy, quality, status in rows:
            text = texts.get(group_id)
            if text is None:
                text = texts[group_id] = str(group_id)
            key = (text, epoch)
            if key in keys:
                found[key] = (pk, energy, quality, status)
    return found


def _plan(cleaned: list, stored: dict, *, correct_final: bool) -> _Plan:
    """What to insert, update and refuse; ``cleaned`` holds ``(index, group, key, value)`` in item order."""
    plan = _Plan()
    state: dict = {}  # key -> (row id or None, value) as this request left it
    windows: dict = {}  # group id text -> bookable_epochs(group)
    unchanged = 0
    for index, group, key, value in cleaned:
        epoch = key[1]
        known = state.get(key)
        if known is not None:
            pk, current = known
        else:
            row = stored.get(key)
            pk, current = (None, None) if row is None else (row[0], row[1:])
        if current == value:
            unchanged += 1
            continue
        window = windows.get(group.id_text)
        if window is None:
            window = windows[group.id_text] = bookable_epochs(group)
        if not window[0] <= epoch <= window[1]:
            block = bookable_error(group, from_epoch(epoch))
            plan.result.rejected.append(_refusal(index, block))
            plan.clarify.append((block, index))
            continue
        if current is not None and current[2] == FINAL and correct_final and value[2] != FINAL:
            error = InvalidInput.for_field(
                "status", _("A final value is corrected by a final measured value only; this one is provisional.")
            )
            plan.result.rejected.append(_refusal(index, error))
            continue
        if current is not None and current[2] == FINAL and not correct_final:
            error = MeasurementFinal(
                Message(
                    gettext_noop(
                        "The value of %(code)s for %(start)s is final (%(energy)d Wh); "
                        "it is kept as a clarification case whose resolution applies the correction."
                    ),
                    {"code": group.code, "start": from_epoch(epoch), "energy": current[0]},
                )
            )
            plan.result.rejected.append(_refusal(index, error))
            plan.clarify.append((error, index))
            continue
        if current is None:
            plan.result.created += 1
            plan.inserts[key] = value
        elif pk is None:  # created earlier in this request, sent again changed: as a second request
            plan.result.replaced += 1
            plan.inserts[key] = value
        else:
            plan.result.replaced += 1
            plan.updates[key] = (pk, *value)
        state[key] = (pk, value)
    plan.result.unchanged = unchanged
    return plan


def _copy_text(value: str) -> str:
    """A value as a field of COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _insert(*, tenant, label: str, inserts: dict, now: dt.datetime) -> None:
    rows = TableRows(Measurement, COLUMNS)  # refuses columns that are out of date with the model
    if not is_postgres():
        for (group_id, epoch), (energy, quality, status) in inserts.items():
            rows.add((tenant.pk, group_id, from_epoch(epoch), energy, quality, status, now, label))
        rows.write()
        return
    # COPY text from pieces formatted once per request, group and quarter-hour: several times
    # faster than letting psycopg format every value of every row.
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in rows.fields)
    head, tail = f"{int(tenant.pk)}\t", f"\t{now.isoformat()}\t{_copy_text(label)}\n"
    sql = f"COPY {quote(Measurement._meta.db_table)} ({columns}) FROM STDIN"
    quarters: dict = {}
    with connection.wrap_database_errors, connection.cursor() as cursor, cursor.copy(sql) as copy:
        for chunk in chunks(list(inserts.items()), 20_000):
            lines = []
            for (group_id, epoch), (energy, quality, status) in chunk:
                quarter = quarters.get(epoch)
                if quarter is None:
                    quarter = quarters[epoch] = from_epoch(epoch).isoformat()
                lines.append(f"{head}{group_id}\t{quarter}\t{energy}\t{quality}\t{status}{tail}")
            copy.write("".join(lines))


def _write(*, tenant, label: str, plan: _Plan, now: dt.datetime) -> None:
    if plan.inserts:
        with _collector_paused():
            _insert(tenant=tenant, label=label, inserts=plan.inserts, now=now)
    if plan.updates:
        _update(list(plan.updates.values()), label=label, now=now)
    epochs = plan.touched
    if epochs:
        mark_changed(
            tenant_id=tenant.pk,
            windows=[(from_epoch(epoch), from_epoch(epoch + QUARTER_SECONDS)) for epoch in sorted(set(epochs))],
        )


def _update(values: list, *, label: str, now: dt.datetime) -> None:
    """Replace the values of stored rows ``(id, energy, quality, status)`` set-based."""
    table = connection.ops.quote_name(Measurement._meta.db_table)
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(
                "CREATE TEMP TABLE measurement_update (id bigint, energy_wh bigint, quality text, status text) "
                "ON COMMIT DROP"
            )
            with cursor.copy("COPY measurement_update FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
            cursor.execute(
                f"UPDATE {table} m SET energy_wh = u.energy_wh, quality = u.quality, status = u.status, "  # noqa: S608
                "updated_at = %s, updated_by = %s FROM measurement_update u WHERE m.id = u.id",
                [now, label],
            )
            cursor.execute("DROP TABLE measurement_update")
        else:
            cursor.executemany(
                f"UPDATE {table} SET energy_wh = %s, quality = %s, status = %s, updated_at = %s, updated_by = %s "  # noqa: S608
                "WHERE id = %s",
                [(energy, quality, status, now, label, pk) for pk, energy, quality, status in values],
            )


def _keep_for_clarification(*, tenant, label: str, items: list, clarify: list, channel: str, origin) -> int:
    cases = [
        ClarificationCase(
            tenant=tenant,
            reason=ClarificationReason.for_error(error),
            detail=error.detail,
            detail_message=error.message.as_json() if error.message else None,
            payload=items[index],
            origin=origin(index) if origin is not None else None,
            channel=channel,
            subject=ClarificationSubject.MEASUREMENT,
            created_by=label,
        )
        for error, index in clarify
    ]
    ClarificationCase.objects.bulk_create(cases, batch_size=2000)
    return len(cases)


@contextlib.contextmanager
def _collector_paused():
    """Pause the cyclic garbage collector while the rows of a request are built.

    They are plain tuples without cycles; the collections their allocation would trigger rescan
    the request's many parsed items each time, a large share of the validation's time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _clean(items: list, memo: Memo) -> tuple[list, list, set]:
    """``(cleaned, refused, keys)``: ``(index, group, key, value)`` per valid item, the refusals, every key."""
    cleaned, refused, keys = [], [], set()
    for index, item in enumerate(items):
        try:
            group, epoch, energy, quality, status = clean_item(item, memo)
        except BkmError as error:
            refused.append(_refusal(index, error))
            continue
        except (OverflowError, ValueError):
            refused.append(_refusal(index, InvalidInput(_("A value is out of range."))))
            continue
        key = (group.id_text, epoch)
        keys.add(key)
        cleaned.append((index, group, key, (energy, quality, status)))
    return cleaned, refused, keys


def measurements_ingest(
    *,
    tenant,
    actor,
    items,
    channel: str = "bulk",
    dry_run: bool = False,
    correct_final: bool = False,
    keep_refused: bool = True,
    origin: Callable[[int], dict] | None = None,
) -> IngestResult:
    """Validate and store many measurements at once (see the module docstring).

    Valid items are stored even when others are refused. ``dry_run`` reports the same outcome and
    writes nothing. ``correct_final`` lets a value replace a final one and ``keep_refused=False``
    records no clarification case (both for resolving a case: ``measurement_rebook``).
    ``origin(index)`` says where an item came from, for the clarification case kept of it.
    """
    if not isinstance(items, list):
        raise InvalidInput.for_field("measurements", _("The measurements must be a list of measurement objects."))
    if len(items) > MAX_ITEMS:
        raise InvalidInput.for_field(
            "measurements", _("At most %(max)d measurements per request; split the upload.") % {"max": MAX_ITEMS}
        )
    label = actor_label(actor)
    with transaction.atomic():
        advisory_xact_lock(LOCK_NAMESPACE, tenant.pk)
        # Groups read under the lock: a close or validity change that committed before is seen.
        memo = Memo(group_index(tenant=tenant))
        with _collector_paused():
            cleaned, refused, keys = _clean(items, memo)
            stored = _stored(tenant, keys)
            plan = _plan(cleaned, stored, correct_final=correct_final)
        result = plan.result
        result.rejected = sorted(refused + result.rejected, key=lambda entry: entry["index"])
        if dry_run:
            transaction.set_rollback(True)
            return result
        now = timezone.now()
        _write(tenant=tenant, label=label, plan=plan, now=now)
        cases = (
            _keep_for_clarification(
                tenant=tenant, label=label, items=items, clarify=plan.clarify, channel=channel, origin=origin
            )
            if keep_refused
            else 0
        )
        if plan.inserts or plan.updates or cases:
            audit_record(
                tenant=tenant,
                actor=actor,
                action=AuditAction.MEASUREMENT_CORRECT if correct_final else AuditAction.MEASUREMENT_INGEST,
                obj=MeasurementRequest(uuid.uuid4()),
                data={
                    "channel": channel,
                    "created": result.created,
                    "replaced": result.replaced,
                    "unchanged": result.unchanged,
                    "rejected": len(result.rejected),
                    "clarification_cases": cases,
                    "corrected": [
                        {
                            "group": str(group_id),
                            "start": from_epoch(epoch).isoformat(),
                            "from_wh": stored[(group_id, epoch)][1],
                        }
                        for group_id, epoch in plan.updates
                        if stored.get((group_id, epoch), (0, 0, "", ""))[3] == FINAL
                    ],
                },
            )
    return result
