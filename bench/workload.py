"""The benchmark workload: a three-level site and a month of quarter-hour meter values.

Everything is derived from the seed, so two runs with the same parameters post byte-identical
requests. This module is plain Python (no Django) so the generator can be tested and profiled
on its own.

Layout for ``groups`` = G:

- ``SITE``: the top balance (no rule; its residual is the site's exchange with the outside).
- ``AREA-nnn``: about G/25 balances settled onto ``SITE``.
- ``GRID-IMPORT`` (source) and ``GRID-EXPORT`` (consumer), settled onto ``SITE``.
- The rest are leaves: sources (PV arrays, batteries) and consumers (apartments, heat pumps,
  wallboxes) settled onto their area; every tenth leaf is split 60/40 onto two areas.

Rule intervals are a seeded mix of 15min, 1h and 1d. Every leaf has one value per quarter-hour:
a source delivers to ``GRID-EXPORT``, a consumer draws from ``GRID-IMPORT``. Values of every day
but the last are final; the last day stays provisional.
"""

import datetime as dt
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

QUARTER = dt.timedelta(minutes=15)
QUARTERS_PER_DAY = 96
INTERVALS = ("15min", "1h", "1d")
INTERVAL_WEIGHTS = (5, 3, 2)
SOURCE_SHARE = 0.35
SPLIT_EVERY = 10
# 2026-01-01 00:00 in Europe/Berlin: January has no DST change, so every local day has 96 quarters.
DEFAULT_START = dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.UTC)
LOCAL_OFFSET_HOURS = 1  # for the load profiles only (CET); the ledger itself is all UTC

PRESETS = {
    "tiny": (12, 1),
    "quick": (100, 3),
    "full": (1000, 31),
}


@dataclass(frozen=True)
class GroupSpec:
    code: str
    name: str
    kind: str  # balance | source | consumer
    level: int  # 1 = top, 2 = under the top, 3 = leaf under an area
    profile: str = ""  # pv | battery | load | grid | ""


@dataclass(frozen=True)
class RuleSpec:
    group: str
    interval: str
    targets: tuple[tuple[str, int], ...]  # (parent code, basis points)


@dataclass(frozen=True)
class LeafParams:
    code: str
    profile: str
    scale: int  # peak Wh per quarter-hour
    phase: float


@dataclass
class Workload:
    seed: int
    groups_requested: int
    days: int
    start: dt.datetime
    groups: list[GroupSpec] = field(default_factory=list)
    rules: list[RuleSpec] = field(default_factory=list)
    leaves: list[LeafParams] = field(default_factory=list)

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=self.days)

    @property
    def quarters(self) -> int:
        return self.days * QUARTERS_PER_DAY

    @property
    def value_count(self) -> int:
        return len(self.leaves) * self.quarters

    @property
    def final_until(self) -> dt.datetime:
        """Values before this instant are final, the rest provisional (the last day)."""
        return self.start + dt.timedelta(days=self.days - 1)

    def values(self) -> Iterator[dict]:
        """Every value as an API booking item, quarter by quarter (the order a gateway sends them)."""
        return iter_values(self)

    def batches(self, size: int) -> Iterator[list[dict]]:
        batch: list[dict] = []
        for item in self.values():
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


def build_workload(
    *, groups: int = 1000, days: int = 31, seed: int = 42, start: dt.datetime = DEFAULT_START
) -> Workload:
    if groups < 8:
        raise ValueError("groups must be at least 8 (top, two areas, two grid groups, three leaves)")
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = random.Random(seed)
    workload = Workload(seed=seed, groups_requested=groups, days=days, start=start)
    areas = max(2, round(groups / 25))
    leaves = groups - 3 - areas

    workload.groups.append(GroupSpec("SITE", "Site grid connection", "balance", 1))
    area_codes = [f"AREA-{i + 1:03d}" for i in range(areas)]
    for number, code in enumerate(area_codes, start=1):
        workload.groups.append(GroupSpec(code, f"Building {number}", "balance", 2))
        workload.rules.append(RuleSpec(code, _pick_interval(rng), (("SITE", 10000),)))
    workload.groups.append(GroupSpec("GRID-IMPORT", "Grid import", "source", 2, "grid"))
    workload.groups.append(GroupSpec("GRID-EXPORT", "Grid export", "consumer", 2, "grid"))
    workload.rules.append(RuleSpec("GRID-IMPORT", "15min", (("SITE", 10000),)))
    workload.rules.append(RuleSpec("GRID-EXPORT", "15min", (("SITE", 10000),)))

    for i in range(leaves):
        area = i % areas
        if rng.random() < SOURCE_SHARE:
            profile = "pv" if rng.random() < 0.7 else "battery"
            kind = "source"
            code, name = (
                (f"PV-{i + 1:05d}", f"PV array {i + 1}")
                if profile == "pv"
                else (
                    f"BAT-{i + 1:05d}",
                    f"Battery {i + 1}",
                )
            )
            scale = rng.randint(500, 7500) if profile == "pv" else rng.randint(100, 1500)
        else:
            profile, kind = "load", "consumer"
            code, name = f"LOAD-{i + 1:05d}", f"Consumer {i + 1}"
            scale = rng.randint(50, 600)
        workload.groups.append(GroupSpec(code, name, kind, 3, profile))
        if i % SPLIT_EVERY == SPLIT_EVERY - 1:
            targets = ((area_codes[area], 6000), (area_codes[(area + 1) % areas], 4000))
        else:
            targets = ((area_codes[area], 10000),)
        workload.rules.append(RuleSpec(code, _pick_interval(rng), targets))
        workload.leaves.append(LeafParams(code, profile, scale, rng.random()))
    return workload


def _pick_interval(rng: random.Random) -> str:
    return rng.choices(INTERVALS, weights=INTERVAL_WEIGHTS)[0]


def _iso(instant: dt.datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_values(workload: Workload) -> Iterator[dict]:
    # One random stream per leaf, consumed in time order: deterministic for a given seed.
    streams = [random.Random(workload.seed * 1_000_003 + index) for index in range(len(workload.leaves))]
    final_until = workload.final_until
    quarter_start = workload.start
    for number in range(workload.quarters):
        quarter_end = quarter_start + QUARTER
        start_text, end_text = _iso(quarter_start), _iso(quarter_end)
        status = "final" if quarter_start < final_until else "provisional"
        hour = (quarter_start.hour + LOCAL_OFFSET_HOURS) % 24 + quarter_start.minute / 60
        for leaf, stream in zip(workload.leaves, streams, strict=True):
            energy = _energy(leaf, hour, stream)
            if leaf.profile == "load":
                source, destination = "GRID-IMPORT", leaf.code
            else:
                source, destination = leaf.code, "GRID-EXPORT"
            yield {
                "external_id": f"m-{leaf.code}-{number}",
                "source": source,
                "destination": destination,
                "start": start_text,
                "end": end_text,
                "energy_wh": energy,
                "status": status,
            }
        quarter_start = quarter_end


def _energy(leaf: LeafParams, hour: float, stream: random.Random) -> int:
    """Watt-hours in one quarter-hour; always at least 1 (a meter's standby reading)."""
    noise = stream.random()
    if leaf.profile == "pv":
        daylight = max(0.0, math.sin(math.pi * (hour - 8) / 8)) if 8 <= hour <= 16 else 0.0
        value = leaf.scale * daylight * (0.4 + 0.6 * noise)
    elif leaf.profile == "battery":
        evening = 1.0 if hour >= 17 or hour < 1 else 0.1
        value = leaf.scale * evening * noise
    else:
        shape = 0.6 + 0.4 * math.sin(math.pi * ((hour + 24 * leaf.phase) % 24) / 12) ** 2
        value = leaf.scale * shape * (0.7 + 0.6 * noise)
    return max(1, int(value))


def batch_body(items: list[dict]) -> bytes:
    """The request body of ``POST /api/v1/bookings/bulk`` for one batch."""
    return json.dumps({"bookings": items}, separators=(",", ":")).encode()
