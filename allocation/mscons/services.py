"""Importing MSCONS interchanges: every channel (API, dashboard, command line) comes through here.

An interchange is imported in one transaction, its values through the same bulk service as the
JSON path (``measurements_ingest``, in chunks), so replace/unchanged/refuse and the clarification
cases are the same. A value for a metering point that no group carries is refused, and kept as
one clarification case per metering point whose resolution imports its values from the kept
interchange. Every interchange that arrives is kept (bytes, checksum, who, when, result); one
whose bytes were imported before is imported again without effect: no new clarification cases.
"""

import hashlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from allocation.measurements import LOCK_NAMESPACE, measurements_ingest
from allocation.models import Interchange, InterchangeStatus
from allocation.mscons.message import MsconsReader, Refusal, Value
from allocation.mscons.reader import InterchangeError
from balance_groups.audit import actor_label
from balance_groups.selectors import group_index
from core.db import advisory_xact_lock
from core.errors import InvalidInput, UnknownMeteringPoint
from core.quarters import QUARTER_SECONDS, from_epoch, local_date
from core.text import Message
from transactions.models import ClarificationCase, ClarificationReason, ClarificationSubject

CHANNEL = "mscons"
CHUNK_VALUES = 20_000  # values per call of the bulk service
READ_BYTES = 1 << 20
REFUSALS_KEPT = 1000  # on the interchange's record; the report lists them all

Source = Callable[[], Iterable[bytes]]  # the interchange's bytes in order; called once per pass


def bytes_source(data: bytes) -> Source:
    return lambda: (data[i : i + READ_BYTES] for i in range(0, len(data), READ_BYTES)) if data else iter([b""])


def file_source(path: Path) -> Source:
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while chunk := handle.read(READ_BYTES):
                yield chunk

    return chunks


@dataclass
class MsconsReport:
    """What one import did, or would do (``dry_run``)."""

    dry_run: bool
    interchange: Interchange | None = None
    duplicate_of: Interchange | None = None
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    rejected: list[dict] = field(default_factory=list)  # {"segment", "code", "detail", "text"}
    messages: int = 0
    values: int = 0
    reference: str = ""
    sender: str = ""
    recipient: str = ""
    days: list[dict] = field(default_factory=list)  # {"metering_point", "group", "day", "values", "energy_wh", ...}

    def as_api(self) -> dict:
        return {
            "created": self.created,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "interchange": {
                "id": self.interchange.pk if self.interchange else None,
                "reference": self.reference,
                "sender": self.sender,
                "recipient": self.recipient,
                "messages": self.messages,
                "values": self.values,
                "duplicate_of": self.duplicate_of.pk if self.duplicate_of else None,
            },
        }


@dataclass
class _Fingerprint:
    sha256: str
    size: int
    content: bytes  # zlib-compressed


def _fingerprint(source: Source) -> _Fingerprint:
    digest, compressor, size, parts = hashlib.sha256(), zlib.compressobj(6), 0, []
    for chunk in source():
        digest.update(chunk)
        size += len(chunk)
        parts.append(compressor.compress(chunk))
    parts.append(compressor.flush())
    return _Fingerprint(digest.hexdigest(), size, b"".join(parts))


class _Import:
    """One pass over an interchange inside the caller's transaction."""

    def __init__(self, *, tenant, actor, reader: MsconsReader, keep_cases: bool, interchange_id, only=None):
        self.tenant, self.actor, self.reader = tenant, actor, reader
        self.keep_cases, self.interchange_id, self.only = keep_cases, interchange_id, only
        self.groups = group_index(tenant=tenant)
        self.report_rows: list[dict] = []
        self.counts = {"created": 0, "replaced": 0, "unchanged": 0}
        self.items: list[dict] = []
        self.origins: list[Value] = []
        self.unknown: dict[str, dict] = {}  # metering point -> its values' span
        self.days: dict[tuple, list] = {}
        self.quarters: dict[int, tuple[str, str]] = {}  # epoch -> (ISO start, local day), once per quarter-hour

    def run(self) -> None:
        for entry in self.reader:
            if self.only is not None and entry.metering_point != self.only:
                continue
            if isinstance(entry, Refusal):
                self._refuse(entry.position, InvalidInput.code, entry.detail, entry.segments)
                continue
            group = self.groups.by_metering_point.get(entry.metering_point)
            if group is None:
                self._unknown(entry)
                continue
            start, day = self._quarter(entry.start)
            self._count_day(entry, group, day)
            self.items.append(
                {
                    "group": group.id_text,
                    "start": start,
                    "energy_wh": entry.energy_wh,
                    "quality": entry.quality,
                    "status": entry.status,
                }
            )
            self.origins.append(entry)
            if len(self.items) >= CHUNK_VALUES:
                self._flush()
        self._flush()
        if self.keep_cases:
            self._keep_unknown()

    def _refuse(self, position: int, code: str, detail: str, segments) -> None:
        self.report_rows.append(
            {"segment": position, "code": code, "detail": detail, "text": self.reader.text(segments)}
        )

    def _origin(self, index: int) -> dict:
        value = self.origins[index]
        return {"interchange": self.interchange_id, "segment": value.position, "text": self.reader.text(value.segments)}

    def _flush(self) -> None:
        if not self.items:
            return
        result = measurements_ingest(
            tenant=self.tenant,
            actor=self.actor,
            items=self.items,
            channel=CHANNEL,
            keep_refused=self.keep_cases,
            origin=self._origin,
        )
        self.counts["created"] += result.created
        self.counts["replaced"] += result.replaced
        self.counts["unchanged"] += result.unchanged
        for refusal in result.rejected:
            value = self.origins[refusal["index"]]
            self._refuse(value.position, refusal["code"], refusal["detail"], value.segments)
        self.items, self.origins = [], []

    def _unknown(self, value: Value) -> None:
        self._refuse(
            value.position,
            UnknownMeteringPoint.code,
            _("No group carries the metering point %(metering_point)s; its values are kept as a clarification case.")
            % {"metering_point": value.metering_point},
            value.segments,
        )
        span = self.unknown.get(value.metering_point)
        if span is None:
            self.unknown[value.metering_point] = {
                "values": 1,
                "first": value.start,
                "last": value.start,
            }
        else:
            span["values"] += 1
            span["first"], span["last"] = min(span["first"], value.start), max(span["last"], value.start)

    def _keep_unknown(self) -> None:
        label = actor_label(self.actor)
        ClarificationCase.objects.bulk_create(
            ClarificationCase(
                tenant=self.tenant,
                reason=ClarificationReason.UNKNOWN_METERING_POINT,
                detail=str(unknown_point_message(point, span["values"])),
                detail_message=unknown_point_message(point, span["values"]).as_json(),
                payload={
                    "metering_point": point,
                    "values": span["values"],
                    "start": from_epoch(span["first"]).isoformat(),
                    "end": from_epoch(span["last"] + QUARTER_SECONDS).isoformat(),
                },
                origin={
                    "interchange": self.interchange_id,
                    "segment": self.reader.locations[point].position,
                    "text": self.reader.text([self.reader.locations[point]]),
                },
                channel=CHANNEL,
                subject=ClarificationSubject.MEASUREMENT,
                created_by=label,
            )
            for point, span in self.unknown.items()
        )

    def _quarter(self, epoch: int) -> tuple[str, str]:
        known = self.quarters.get(epoch)
        if known is None:
            instant = from_epoch(epoch)
            known = self.quarters[epoch] = (instant.isoformat(), local_date(instant).isoformat())
        return known

    def _count_day(self, value: Value, group, day: str) -> None:
        key = (value.metering_point, day)
        row = self.days.get(key)
        if row is None:
            row = self.days[key] = [group.code, 0, 0, {}]
        row[1] += 1
        row[2] += value.energy_wh
        row[3][value.quality] = row[3].get(value.quality, 0) + 1

    def day_rows(self) -> list[dict]:
        return [
            {
                "metering_point": point,
                "group": code,
                "day": day,
                "values": count,
                "energy_wh": energy,
                "qualities": qualities,
            }
            for (point, day), (code, count, energy, qualities) in sorted(self.days.items())
        ]


def _fill(report: MsconsReport, run: _Import) -> None:
    envelope = run.reader.envelope
    report.created, report.replaced, report.unchanged = (run.counts[k] for k in ("created", "replaced", "unchanged"))
    report.rejected = sorted(run.report_rows, key=lambda row: row["segment"])
    report.messages, report.values = envelope.messages, run.reader.values_read
    report.reference, report.sender, report.recipient = envelope.reference, envelope.sender, envelope.recipient
    report.days = run.day_rows()


REPORTED = ("reference", "sender", "recipient", "messages", "values", "created", "replaced", "unchanged", "days")
RESULT_FIELDS = (*REPORTED, "refused", "refusals")


def _record(row: Interchange, report: MsconsReport) -> None:
    for name in REPORTED:
        setattr(row, name, getattr(report, name))
    row.refused = len(report.rejected)
    row.refusals = report.rejected[:REFUSALS_KEPT]


def _progress(source: Source, on_progress) -> Source:
    if on_progress is None:
        return source

    def chunks() -> Iterator[bytes]:
        for chunk in source():
            yield chunk
            on_progress(len(chunk))

    return chunks


def mscons_import(
    *,
    tenant,
    actor,
    source: Source,
    channel: str,
    filename: str = "",
    dry_run: bool = False,
    keep_preview: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> MsconsReport:
    """Import (or, ``dry_run``, preview) one interchange; ``InterchangeError`` refuses it as a whole.

    The interchange is kept unless it is a dry run; ``keep_preview`` keeps a dry run's as
    ``previewed``, to be imported later by ``mscons_import_previewed``.
    """
    fingerprint = _fingerprint(source)
    duplicate_of = _imported_before(tenant, fingerprint.sha256)
    keep = not dry_run or keep_preview
    row = Interchange(
        tenant=tenant,
        received_at=timezone.now(),
        received_by=actor_label(actor),
        channel=channel,
        filename=filename[:255],
        sha256=fingerprint.sha256,
        size_bytes=fingerprint.size,
        content=None if duplicate_of else fingerprint.content,
        duplicate_of=duplicate_of,
        status=InterchangeStatus.PREVIEWED if dry_run else InterchangeStatus.IMPORTED,
    )
    report = MsconsReport(dry_run=dry_run, duplicate_of=duplicate_of)
    try:
        _run(
            row, report, tenant=tenant, actor=actor, source=_progress(source, on_progress), keep_cases=not duplicate_of
        )
    except InterchangeError as error:
        if keep:
            row.pk, row.status, row.error = None, InterchangeStatus.REFUSED, error.detail
            row.save()
        raise
    if dry_run and keep:
        _record(row, report)
        row.save()
        report.interchange = row
    return report


def _imported_before(tenant, sha256: str) -> Interchange | None:
    """The first imported interchange of the tenant with these bytes."""
    return (
        Interchange.objects.filter(tenant=tenant, sha256=sha256, status=InterchangeStatus.IMPORTED)
        .order_by("received_at", "id")
        .first()
    )


def _run(row: Interchange, report: MsconsReport, *, tenant, actor, source: Source, keep_cases: bool) -> None:
    with transaction.atomic():
        advisory_xact_lock(LOCK_NAMESPACE, tenant.pk)  # groups read under the lock the bulk service takes
        if row.pk is not None:  # a preview becoming the import: its bytes are stored already
            row.save(update_fields=["status", "duplicate_of"])
        elif not report.dry_run:
            row.save()
        run = _Import(
            tenant=tenant, actor=actor, reader=MsconsReader(source()), keep_cases=keep_cases, interchange_id=row.pk
        )
        run.run()
        _fill(report, run)
        if report.dry_run:
            transaction.set_rollback(True)
            return
        _record(row, report)
        row.save(update_fields=RESULT_FIELDS)  # not the bytes again
        report.interchange = row


def mscons_import_previewed(*, interchange: Interchange, actor) -> MsconsReport:
    """Import an interchange that was previewed (the dashboard's second step): its record becomes the import's."""
    with transaction.atomic():
        row = Interchange.objects.select_for_update().get(pk=interchange.pk)  # one import of a preview at a time
        if row.status != InterchangeStatus.PREVIEWED:
            raise InvalidInput(
                _("Interchange %(id)s has the status %(status)s; only a preview is imported.")
                % {"id": row.pk, "status": row.status}
            )
        duplicate_of = _imported_before(row.tenant, row.sha256)
        row.status, row.duplicate_of = InterchangeStatus.IMPORTED, duplicate_of
        report = MsconsReport(dry_run=False, duplicate_of=duplicate_of)
        source = bytes_source(row.original_bytes())
        _run(row, report, tenant=row.tenant, actor=actor, source=source, keep_cases=duplicate_of is None)
    return report


def mscons_rebook(*, case, actor) -> None:
    """Resolve an unknown metering point's case: import its values from the kept interchange.

    Values refused now for another reason (a closed period, a final value) become cases of their own.
    """
    point = case.payload.get("metering_point", "")
    tenant = case.tenant
    if group_index(tenant=tenant).by_metering_point.get(point) is None:
        raise UnknownMeteringPoint(
            _("Still no group carries the metering point %(metering_point)s; set it on a group first.")
            % {"metering_point": point}
        )
    interchange = Interchange.objects.filter(tenant=tenant, pk=(case.origin or {}).get("interchange")).first()
    if interchange is None:
        raise InvalidInput(_("The interchange of this case is no longer kept."))
    with transaction.atomic():
        advisory_xact_lock(LOCK_NAMESPACE, tenant.pk)
        reader = MsconsReader(bytes_source(interchange.original_bytes())())
        _Import(
            tenant=tenant, actor=actor, reader=reader, keep_cases=True, interchange_id=interchange.pk, only=point
        ).run()


def unknown_point_message(point: str, count: int) -> Message:
    # One and many as two texts: German counts like English (one, otherwise many).
    one = gettext_noop(
        "%(count)d value for metering point %(metering_point)s, which no group carries. Set it on a "
        "group, then rebook: the value is imported from the kept interchange."
    )
    many = gettext_noop(
        "%(count)d values for metering point %(metering_point)s, which no group carries. Set it on a "
        "group, then rebook: the values are imported from the kept interchange."
    )
    return Message(one if count == 1 else many, {"count": count, "metering_point": point})
