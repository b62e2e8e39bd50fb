"""Comparing what a level should have (``nets.Wanted``) with the settlement bookings stored.

A diff, so an unchanged input writes nothing and a final booking is never touched: a changed
provisional booking is replaced under the same key, input that arrives after a final settlement
is settled as the next revision, and a window no rule produces any more loses what is provisional.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Case, F, IntegerField, Value, When

from core.db import EpochSeconds
from core.quarters import to_epoch
from settlement.engine.nets import Wanted
from settlement.models import SettlementBooking
from transactions.models import BookingStatus


@dataclass
class Existing:
    booking_id: object
    revision: int
    window_end: int
    delivers: bool  # the child is the booking's source
    energy_wh: int
    final: bool

    @property
    def signed(self) -> int:
        return self.energy_wh if self.delivers else -self.energy_wh


@dataclass(slots=True)
class NewBooking:
    want: Wanted
    amount: int  # signed, as ``Wanted.amount``
    revision: int
    final: bool
    replaces: bool  # takes the place of a provisional booking under the same key


@dataclass
class LevelChanges:
    delete: list = field(default_factory=list)  # booking ids
    finalize: list = field(default_factory=list)  # booking ids
    create: list[NewBooking] = field(default_factory=list)

    @property
    def replaced(self) -> int:
        return sum(1 for new in self.create if new.replaces)


def existing_links(group_ids, u0, u1) -> dict:
    """Stored settlement keys of the groups' windows in the unit: (rule, parent, start epoch) -> [Existing]."""
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
            Existing(booking_id, revision, end, bool(delivers), energy, status == BookingStatus.FINAL)
        )
    return existing


def level_changes(wanted: list[Wanted], existing: dict, now_epoch: int) -> LevelChanges:
    changes = LevelChanges()
    seen = set()
    for want in wanted:
        key = (want.rule_id, want.parent_id, want.start_epoch)
        seen.add(key)
        current = existing.get(key, ())
        if not current:
            if want.amount:
                changes.create.append(NewBooking(want, want.amount, 0, want.final, False))
            continue
        finals = [link for link in current if link.final]
        provisionals = sorted((link for link in current if not link.final), key=lambda link: link.revision)
        remainder = want.amount - sum(link.signed for link in finals)
        if remainder == 0:
            changes.delete.extend(link.booking_id for link in provisionals)
            continue
        if provisionals:
            keep = provisionals[-1]
            changes.delete.extend(link.booking_id for link in provisionals[:-1])
            same_flow = (
                keep.delivers == (remainder > 0)
                and keep.energy_wh == abs(remainder)
                and keep.window_end == to_epoch(want.window_end)
            )
            if same_flow:
                if want.final:
                    changes.finalize.append(keep.booking_id)
                continue
            changes.delete.append(keep.booking_id)
            changes.create.append(NewBooking(want, remainder, keep.revision, want.final, True))
            continue
        revision = max((link.revision for link in current), default=-1) + 1
        changes.create.append(NewBooking(want, remainder, revision, want.final, False))

    # A window no rule produces any more: drop what is provisional there.
    for key, current in existing.items():
        if key not in seen and current[0].window_end <= now_epoch:
            changes.delete.extend(link.booking_id for link in current if not link.final)
    return changes
