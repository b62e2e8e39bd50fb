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

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from allocation.models import Measurement, Quality
from balance_groups.audit import actor_label, audit_record
from balance_groups.models import AuditAction, GroupKind
from balance_groups.selectors import GroupIndex, group_index
from core.db import TableRows, advisory_xact_lock, chunks, is_postgres
from core.errors import BkmError, GroupNotValid, InvalidInput, MeasurementFinal, PeriodClosed
from core.quarters import QUARTER_SECONDS, from_epoch, parse_instant, to_epoch
from core.status import Status
from settlement.dirty import mark_changed
from transactions.models import ClarificationCase, ClarificationReason, ClarificationSubject

MAX_ITEMS = 100_000
LOCK_NAMESPACE = 0x424B4D45  # "BKME": advisory locks (namespace, tenant id) for measurement writes
FINAL, PROVISIONAL = Status.FINAL.value, Status.PROVISIONAL.value
QUALITIES = frozenset(Quality.values)
STATUSES = frozenset(Status.values)
MEASURED_KINDS = frozenset({GroupKind.SOURCE.value, GroupKind.CONSUMER.value})
ITEM_FIELDS = frozenset({"group", "start", "end", "energy_wh", "quality", "status"})
COLUMNS = ("tenant_id", "group_id", "quarter_start", "energy_wh", "quality", "status", "updated_at", "updated_by")


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
        raise InvalidInput.for_field("energy_wh", "energy_wh must be a whole number of Wh.")
    if value < 0:
        raise InvalidInput.for_field("energy_wh", "energy_wh must be 0 or more.")
    if value >= 2**63:
        raise InvalidInput.for_field("energy_wh", "energy_wh is out of range.")
    return value


def _choice(item: dict, name: str, allowed: frozenset, default: str) -> str:
    value = item.get(name, default)
    if value is None:
        value = default
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput.for_field(name, f"{name} must be one of {', '.join(sorted(allowed))}.")
    return value


def _instant(item: dict, name: str, cache: dict) -> dt.datetime:
    value = item.get(name)
    if value is None:
        raise InvalidInput.for_field(name, f"{name} is required.")
    key = value if isinstance(value, str) else None
    if key is not None and key in cache:
        return cache[key]
    instant = parse_instant(value, name)
    if key is not None:
        cache[key] = instant
    return instant


def bookable_error(group, start: dt.datetime) -> BkmError | None:
    """Why a value of ``group`` for the quarter-hour at ``start`` cannot be stored, or None."""
    end = start + dt.timedelta(seconds=QUARTER_SECONDS)
    if group.valid_from > start or (group.valid_until is not None and group.valid_until < end):
        until = group.valid_until.isoformat() if group.valid_until else "open end"
        return GroupNotValid(
            f"Group {group.code} is valid from {group.valid_from.isoformat()} to {until}; "
            f"the measurement is for {start.isoformat()}."
        )
    if group.closed_until is not None and start < group.closed_until:
        return PeriodClosed(
            f"Group {group.code} is closed until {group.closed_until.isoformat()}; "
            f"the measurement is for {start.isoformat()}."
        )
    return None


def clean_item(item, groups: GroupIndex, cache: dict) -> tuple:
    """One item as ``(group, start epoch, energy_wh, quality, status)``; raises ``BkmError``."""
    if not isinstance(item, dict):
        raise InvalidInput("Each measurement must be an object.")
    unknown = set(item) - ITEM_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput.for_field(name, f"Unknown field {name[:64]!r}.")
    ref = item.get("group")
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput.for_field("group", "group is required: an id, code or metering point.")
    group = groups.get(ref)
    if group is None:
        raise InvalidInput.for_field("group", f"Balance group {ref.strip()[:80]!r} not found.")
    if group.kind not in MEASURED_KINDS:
        raise InvalidInput.for_field(
            "group", f"Group {group.code} is a {group.kind}; measurements are for sources and consumers."
        )
    start = _instant(item, "start", cache)
    if item.get("end") is not None:
        end = _instant(item, "end", cache)
        if to_epoch(end) - to_epoch(start) != QUARTER_SECONDS:
            raise InvalidInput.for_field(
                "end", "A measurement covers exactly one quarter-hour: end = start + 15 minutes."
            )
    energy = _energy(item.get("energy_wh"))
    quality = _choice(item, "quality", QUALITIES, Quality.MEASURED.value)
    status = _choice(item, "status", STATUSES, PROVISIONAL)
    if status == FINAL and quality != Quality.MEASURED:
        raise InvalidInput.for_field(
            "status", f"Only a measured value can be final; a {quality} value stays provisional."
        )
    return group, to_epoch(start), energy, quality, status


@dataclass
class _Plan:
    inserts: dict = field(default_factory=dict)  # (group_id, epoch) -> (energy, quality, status)
    updates: dict = field(default_factory=dict)  # (group_id, epoch) -> (row id, energy, quality, status)
    result: IngestResult = field(default_factory=IngestResult)
    clarify: list = field(default_factory=list)  # (error, item)

    @property
    def touched(self) -> list[int]:
        return [epoch for _, epoch in (*self.inserts, *self.updates)]


def _stored(tenant, keys: set) -> dict:
    """``{(group_id, epoch): (row id, energy, quality, status)}`` for the keys that exist."""
    if not keys:
        return {}
    epochs = [epoch for _, epoch in keys]
    group_ids = sorted({group_id for group_id, _ in keys}, key=str)
    found = {}
    for chunk in chunks(group_ids, 500):
        rows = Measurement.objects.filter(
            tenant=tenant,
            group_id__in=chunk,
            quarter_start__gte=from_epoch(min(epochs)),
            quarter_start__lte=from_epoch(max(epochs)),
        ).values_list("id", "group_id", "quarter_start", "energy_wh", "quality", "status")
        for pk, group_id, quarter, energy, quality, status in rows:
            key = (group_id, to_epoch(quarter))
            if key in keys:
                found[key] = (pk, energy, quality, status)
    return found


def _plan(items: list, cleaned: list, stored: dict, *, correct_final: bool) -> _Plan:
    plan = _Plan()
    state: dict = {}  # key -> (row id or None, value, is stored)
    for index, group, epoch, energy, quality, status in cleaned:
        key = (group.pk, epoch)
        value = (energy, quality, status)
        if key in state:
            pk, current = state[key]
        elif key in stored:
            pk, *current = stored[key]
            current = tuple(current)
        else:
            pk, current = None, None
        if current == value:
            plan.result.unchanged += 1
            continue
        block = bookable_error(group, from_epoch(epoch))
        if block is not None:
            plan.result.rejected.append(_refusal(index, block))
            plan.clarify.append((block, items[index]))
            continue
        if current is not None and current[2] == FINAL and not correct_final:
            error = MeasurementFinal(
                f"The value of {group.code} for {from_epoch(epoch).isoformat()} is final ({current[0]} Wh); "
                "it is kept as a clarification case whose resolution applies the correction."
            )
            plan.result.rejected.append(_refusal(index, error))
            plan.clarify.append((error, items[index]))
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
    return plan


def _write(*, tenant, label: str, plan: _Plan, now: dt.datetime) -> None:
    if plan.inserts:
        rows = TableRows(Measurement, COLUMNS)
        instants: dict = {}
        for (group_id, epoch), (energy, quality, status) in plan.inserts.items():
            quarter = instants.get(epoch) or instants.setdefault(epoch, from_epoch(epoch))
            rows.add((tenant.pk, group_id, quarter, energy, quality, status, now, label))
        rows.write()
    if plan.updates:
        _update(list(plan.updates.values()), label=label, now=now)
    epochs = plan.touched
    if epochs:
        mark_changed(tenant_id=tenant.pk, start=from_epoch(min(epochs)), end=from_epoch(max(epochs) + QUARTER_SECONDS))


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


def _keep_for_clarification(*, tenant, label: str, clarify: list, channel: str) -> int:
    cases = [
        ClarificationCase(
            tenant=tenant,
            reason=ClarificationReason.for_error(error),
            detail=error.detail,
            payload=item,
            channel=channel,
            subject=ClarificationSubject.MEASUREMENT,
            created_by=label,
        )
        for error, item in clarify
    ]
    ClarificationCase.objects.bulk_create(cases, batch_size=2000)
    return len(cases)


def measurements_ingest(
    *,
    tenant,
    actor,
    items,
    channel: str = "bulk",
    dry_run: bool = False,
    correct_final: bool = False,
    keep_refused: bool = True,
) -> IngestResult:
    """Validate and store many measurements at once (see the module docstring).

    Valid items are stored even when others are refused. ``dry_run`` reports the same outcome and
    writes nothing. ``correct_final`` lets a value replace a final one and ``keep_refused=False``
    records no clarification case (both for resolving a case: ``measurement_rebook``).
    """
    if not isinstance(items, list):
        raise InvalidInput.for_field("measurements", "measurements must be a list of measurement objects.")
    if len(items) > MAX_ITEMS:
        raise InvalidInput.for_field("measurements", f"At most {MAX_ITEMS} measurements per request; split the upload.")
    label = actor_label(actor)
    with transaction.atomic():
        advisory_xact_lock(LOCK_NAMESPACE, tenant.pk)
        # Groups read under the lock: a close or validity change that committed before is seen.
        groups = group_index(tenant=tenant)
        cleaned, refused, cache = [], [], {}
        for index, item in enumerate(items):
            try:
                cleaned.append((index, *clean_item(item, groups, cache)))
            except BkmError as error:
                refused.append(_refusal(index, error))
            except (OverflowError, ValueError):
                refused.append(_refusal(index, InvalidInput("A value is out of range.")))
        stored = _stored(tenant, {(row[1].pk, row[2]) for row in cleaned})
        plan = _plan(items, cleaned, stored, correct_final=correct_final)
        result = plan.result
        result.rejected = sorted(refused + result.rejected, key=lambda entry: entry["index"])
        if dry_run:
            transaction.set_rollback(True)
            return result
        now = timezone.now()
        _write(tenant=tenant, label=label, plan=plan, now=now)
        cases = (
            _keep_for_clarification(tenant=tenant, label=label, clarify=plan.clarify, channel=channel)
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
