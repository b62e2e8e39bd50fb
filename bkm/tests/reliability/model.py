"""A small in-memory reference model of the ledger rules in ``/shared/DOMAIN.md``.

Time is a quarter-hour index relative to ``BASE``; the model knows nothing of the database.
It predicts the outcome of every write (created, replaced, unchanged or an error code), the
manual ledger per group and quarter-hour, and the settlement amount and status per
(child, parent, window). The stateful test compares the real services with it after each step.

The window covers a local midnight (23:00Z) and the spring DST change (01:00Z), so days of
92 quarter-hours and hour/day windows are exercised.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from core.quarters import QUARTER, local_date, local_day_bounds
from core.splitting import split_by_shares, split_energy

UTC = dt.UTC
BASE = dt.datetime(2025, 3, 29, 22, tzinfo=UTC)  # local midnight is 23:00Z; the clocks jump at 01:00Z
QUARTERS = 16
FULL = 10000


def instant(index: int) -> dt.datetime:
    return BASE + index * QUARTER


def index_of(value: dt.datetime) -> int:
    seconds = int((value - BASE).total_seconds())
    assert seconds % 900 == 0, value
    return seconds // 900


@dataclass
class MBooking:
    src: str
    dst: str
    start: int
    end: int
    energy: int
    status: str = "provisional"
    name: str = ""
    kind: str = "manual"
    reversed: bool = False
    db_id: object = None

    @property
    def content(self) -> tuple:
        return (self.src, self.dst, self.start, self.end, self.energy, self.status, self.name)

    def lines(self) -> list[tuple[int, int]]:
        parts = split_energy(self.energy, self.end - self.start)
        return [(self.start + i, part) for i, part in enumerate(parts) if part > 0]


@dataclass(frozen=True)
class MVersion:
    start: int
    interval: str  # 15min, 1h, 1d
    targets: tuple  # ((parent code, share), ...)


@dataclass
class Expected:
    amount: int = 0  # signed: > 0 the child delivers to the parent
    final: bool = True


@dataclass
class LedgerModel:
    kinds: dict = field(default_factory=dict)  # code -> kind
    closed: dict = field(default_factory=dict)  # code -> index or None
    versions: dict = field(default_factory=dict)  # code -> [MVersion], sorted
    bookings: dict = field(default_factory=dict)  # key (external id or "#n") -> MBooking
    open_cases: int = 0
    serial: int = 0

    # -- groups and rules -------------------------------------------------------------------

    def add_group(self, code: str, kind: str) -> None:
        self.kinds[code] = kind
        self.closed[code] = None

    def close(self, code: str, until: int) -> str:
        if self.closed[code] is not None and until < self.closed[code]:
            return "VALIDATION_ERROR"
        self.closed[code] = until
        return "closed"

    def change_rule(self, code: str, version: MVersion) -> str:
        current = self.versions.setdefault(code, [])
        if current and version.start <= current[-1].start:
            return "VALIDATION_ERROR"
        current.append(version)
        return "changed"

    # -- bookings ---------------------------------------------------------------------------

    def _blocked(self, src: str, dst: str, start: int) -> bool:
        return any(self.closed[g] is not None and start < self.closed[g] for g in (src, dst))

    def book(self, ext, booking: MBooking, *, keeps_case: bool = True) -> str:
        """``booking_create``: the outcome, or the error code; the model changes as the service does."""
        if booking.src == booking.dst:
            return "VALIDATION_ERROR"
        existing = self.bookings.get(ext) if ext is not None else None
        if existing is not None and existing.content == booking.content:
            return "unchanged"
        if self._blocked(booking.src, booking.dst, booking.start):
            self.open_cases += keeps_case
            return "PERIOD_CLOSED"
        if existing is not None:
            if existing.status == "final":
                return "BOOKING_FINAL"
            if self._blocked(existing.src, existing.dst, existing.start):
                self.open_cases += keeps_case
                return "PERIOD_CLOSED"
            booking.db_id = existing.db_id
            self.bookings[ext] = booking
            return "replaced"
        if ext is None:
            self.serial += 1
            ext = f"#{self.serial}"
        self.bookings[ext] = booking
        return "created"

    def finalize(self, key) -> str:
        self.bookings[key].status = "final"
        return "final"

    def reverse(self, key) -> tuple[str, MBooking | None]:
        original = self.bookings[key]
        if original.kind != "manual" or original.status != "final" or original.reversed:
            return "CONFLICT", None
        if self._blocked(original.dst, original.src, original.start):
            return "PERIOD_CLOSED", None
        original.reversed = True
        reversal = MBooking(
            original.dst, original.src, original.start, original.end, original.energy, "final", kind="reversal"
        )
        self.serial += 1
        self.bookings[f"#{self.serial}"] = reversal
        return "reversed", reversal

    # -- expectations -----------------------------------------------------------------------

    def manual_nets(self) -> dict:
        """(group, quarter) -> [net Wh, provisional line count] over manual and reversal bookings."""
        nets: dict = defaultdict(lambda: [0, 0])
        for booking in self.bookings.values():
            provisional = booking.status != "final"
            for quarter, energy in booking.lines():
                nets[(booking.dst, quarter)][0] += energy
                nets[(booking.src, quarter)][0] -= energy
                nets[(booking.dst, quarter)][1] += provisional
                nets[(booking.src, quarter)][1] += provisional
        return nets

    @staticmethod
    def units() -> list[tuple[int, int]]:
        """The local days covering the model's window, as quarter indexes."""
        days = sorted({local_date(instant(0)), local_date(instant(QUARTERS - 1))})
        return [tuple(index_of(bound) for bound in local_day_bounds(day)) for day in days]

    @staticmethod
    def _grid_end(interval: str, index: int) -> int:
        if interval == "15min":
            return index + 1
        if interval == "1h":
            return (index // 4 + 1) * 4  # BASE is on a full UTC hour
        return index_of(local_day_bounds(local_date(instant(index)))[1])

    def windows(self, code: str, versions: list[MVersion] | None = None) -> list[tuple[MVersion, int, int]]:
        """A group's rule windows: the version in force at a window's start applies to the whole
        window, windows follow the interval's grid and never cross a local midnight."""
        versions = self.versions.get(code, []) if versions is None else versions
        result = []
        for u0, u1 in self.units():
            i = u0
            while i < u1:
                current = None
                for n, version in enumerate(versions):
                    until = versions[n + 1].start if n + 1 < len(versions) else None
                    if version.start <= i and (until is None or i < until):
                        current = version
                if current is None:
                    later = [version.start for version in versions if version.start > i]
                    if not later:
                        break
                    i = min(later)
                    continue
                end = min(self._grid_end(current.interval, i), u1)
                result.append((current, i, end))
                i = end
        return result

    def levels(self) -> dict:
        children = defaultdict(set)
        for code, versions in self.versions.items():
            for version in versions:
                for parent, _ in version.targets:
                    children[parent].add(code)

        def level(code):
            return 1 + max(level(child) for child in children[code]) if children[code] else 0

        return {code: level(code) for code in self.versions}

    def settlements(self) -> dict:
        """(child, parent, window start) -> Expected, settling bottom-up through the hierarchy."""
        nets = self.manual_nets()
        expected: dict = {}
        incoming: dict = defaultdict(list)  # parent -> [(window start, window end, amount, final)]
        levels = self.levels()
        for code in sorted(levels, key=lambda c: (levels[c], c)):
            for version, start, end in self.windows(code):
                net, final = 0, True
                for quarter in range(start, end):
                    value, provisional = nets.get((code, quarter), (0, 0))
                    net += value
                    final = final and not provisional
                for w0, w1, amount, child_final in incoming[code]:
                    if start <= w0 < end:
                        # The hierarchy used here nests children's windows in their parent's.
                        assert w1 <= end, "a child's window crosses its parent's"
                        net += amount
                        final = final and child_final
                parts = split_by_shares(net, [share for _, share in version.targets])
                for (parent, _), part in zip(version.targets, parts, strict=True):
                    expected[(code, parent, start)] = Expected(part, final)
                    incoming[parent].append((start, end, part, final))
        return expected

    def lines_touch(self, code: str, start: int, end: int) -> bool:
        return any(
            code in (b.src, b.dst) and any(start <= q < end for q, _ in b.lines()) for b in self.bookings.values()
        )
