"""The allocation workload: one tenant-electricity site and a month of its meter readings.

A PV array and a battery share their energy among ``consumers`` consumers by the ``dynamic``
method (in proportion to each one's consumption in the quarter-hour). Every participant has one
measurement per quarter-hour, referenced by its metering point as a meter gateway sends it:

- ``PV``: zero from dusk to dawn (so many quarter-hours have nothing to share), a bell over the
  short winter day scaled by a seeded cloudiness per day; at noon on a clear day it covers the
  whole site and the rest is surplus.
- ``BATTERY``: discharges in the evening only (zero the rest of the day).
- Consumers: apartments (morning and evening peaks), heat pumps (cycling on and off), wallboxes
  (zero except for charging sessions on some evenings), common areas (a small base load, lights
  after dark) and shops (opening hours).

Everything is derived from the seed (byte-identical requests for the same parameters). Values of
every day but the last are final; the last day stays provisional. Plain Python (no Django).
"""

import datetime as dt
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from bench.workload import DEFAULT_START, LOCAL_OFFSET_HOURS, QUARTER, QUARTERS_PER_DAY

PRESETS = {  # consumers, days
    "tiny": (6, 1),
    "quick": (40, 3),
    "full": (200, 31),
}
CONSUMER_PROFILES = ("apartment", "heat_pump", "wallbox", "common", "shop")
PROFILE_WEIGHTS = (70, 10, 10, 5, 5)
MEAN_CONSUMER_WH = 100  # a rough mean per consumer and quarter-hour, to size the sources
PV_PEAK_FACTOR = 2.0  # PV's clear-noon output against the site's mean consumption
BATTERY_FACTOR = 0.35  # the battery's evening output against the site's mean consumption
FULL_SHARE = 10000
METHOD = "dynamic"


@dataclass(frozen=True)
class Participant:
    code: str
    name: str
    kind: str  # source | consumer
    profile: str  # pv | battery | one of CONSUMER_PROFILES
    metering_point: str
    scale: int  # Wh per quarter-hour at the profile's peak
    phase: float  # shifts a consumer's daily pattern by up to an hour


@dataclass
class AllocationWorkload:
    seed: int
    consumer_count: int
    days: int
    start: dt.datetime
    participants: list[Participant] = field(default_factory=list)
    surplus_to: str = "GRID"
    residual_from: str = "SUPPLIER"

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(days=self.days)

    @property
    def quarters(self) -> int:
        return self.days * QUARTERS_PER_DAY

    @property
    def sources(self) -> list[Participant]:
        return [p for p in self.participants if p.kind == "source"]

    @property
    def consumers(self) -> list[Participant]:
        return [p for p in self.participants if p.kind == "consumer"]

    @property
    def value_count(self) -> int:
        return len(self.participants) * self.quarters

    @property
    def final_until(self) -> dt.datetime:
        return self.end - dt.timedelta(days=1)

    def shares(self) -> list[int]:
        """Basis points per consumer summing to 10000 (``dynamic`` ignores them, the scheme needs them)."""
        count = len(self.consumers)
        base, extra = divmod(FULL_SHARE, count)
        return [base + (1 if i < extra else 0) for i in range(count)]

    def values(self) -> Iterator[dict]:
        """Every measurement as an API item, quarter-hour by quarter-hour (sources first)."""
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


def build_allocation_workload(
    *, consumers: int = 200, days: int = 31, seed: int = 42, start: dt.datetime = DEFAULT_START
) -> AllocationWorkload:
    if consumers < 2:
        raise ValueError("consumers must be at least 2")
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = random.Random(seed * 7919 + 1)
    workload = AllocationWorkload(seed=seed, consumer_count=consumers, days=days, start=start)
    site_mean = consumers * MEAN_CONSUMER_WH
    workload.participants.append(
        Participant("PV", "PV array", "source", "pv", _metering_point(1), round(site_mean * PV_PEAK_FACTOR), 0.0)
    )
    workload.participants.append(
        Participant(
            "BATTERY", "Battery", "source", "battery", _metering_point(2), round(site_mean * BATTERY_FACTOR), 0.0
        )
    )
    for i in range(consumers):
        profile = rng.choices(CONSUMER_PROFILES, weights=PROFILE_WEIGHTS)[0]
        low, high = {
            "apartment": (40, 160),
            "heat_pump": (200, 600),
            "wallbox": (1500, 2750),  # 6 to 11 kW while charging
            "common": (20, 80),
            "shop": (100, 400),
        }[profile]
        workload.participants.append(
            Participant(
                f"C-{i + 1:04d}",
                f"{profile.replace('_', ' ').capitalize()} {i + 1}",
                "consumer",
                profile,
                _metering_point(i + 3),
                rng.randint(low, high),
                rng.random(),
            )
        )
    return workload


def _metering_point(number: int) -> str:
    """A MeLo-shaped id: DE and 31 digits."""
    return f"DE{number:031d}"


def _iso(instant: dt.datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_values(workload: AllocationWorkload) -> Iterator[dict]:
    # One random stream per participant, consumed in time order; each also draws a state per day
    # (cloudiness, whether a car comes home, a heat pump's duty cycle).
    streams = [random.Random(workload.seed * 1_000_003 + 500_000 + n) for n in range(len(workload.participants))]
    days: list[float] = [0.0] * len(workload.participants)
    final_until = workload.final_until
    quarter_start = workload.start
    for number in range(workload.quarters):
        start_text = _iso(quarter_start)
        status = "final" if quarter_start < final_until else "provisional"
        hour = (quarter_start.hour + LOCAL_OFFSET_HOURS) % 24 + quarter_start.minute / 60
        new_day = number % QUARTERS_PER_DAY == 0
        for index, (participant, stream) in enumerate(zip(workload.participants, streams, strict=True)):
            if new_day:
                days[index] = stream.random()
            yield {
                "group": participant.metering_point,
                "start": start_text,
                "energy_wh": energy(participant, hour, days[index], stream),
                "quality": "measured",
                "status": status,
            }
        quarter_start += QUARTER


def energy(participant: Participant, hour: float, day: float, stream: random.Random) -> int:
    """Watt-hours in one quarter-hour starting at local ``hour``; ``day`` is the participant's draw for the day."""
    noise = stream.random()
    profile, scale = participant.profile, participant.scale
    if profile == "pv":
        if not 8 <= hour < 16:
            return 0
        clear = 0.15 + 0.85 * day  # from overcast to clear
        return int(scale * clear * math.sin(math.pi * (hour - 8) / 8) * (0.85 + 0.15 * noise))
    if profile == "battery":
        if not 17 <= hour < 23:
            return 0
        return int(scale * (0.5 + 0.5 * day) * (0.8 + 0.4 * noise))
    local = (hour - participant.phase) % 24
    if profile == "apartment":
        peaks = 0.8 * _bump(local, 7, 1.0) + 1.0 * _bump(local, 19.5, 2.0)
        return int(scale * (0.25 + peaks) * (0.6 + 0.8 * noise))
    if profile == "heat_pump":
        running = noise < 0.35 + 0.4 * day + (0.15 if local < 8 else 0.0)
        return int(scale * (0.7 + 0.3 * stream.random())) if running else int(scale * 0.02)
    if profile == "wallbox":
        arrives = 17 + 4 * participant.phase
        charging = day < 0.6 and arrives <= local < arrives + 1 + 4 * day
        return int(scale * (0.95 + 0.05 * noise)) if charging else 0
    if profile == "common":
        lights = 1.0 if local < 7 or local >= 17 else 0.3
        return int(scale * lights * (0.9 + 0.2 * noise))
    # shop
    open_ = 8 <= local < 19
    return int(scale * (1.0 if open_ else 0.15) * (0.8 + 0.4 * noise))


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


def batch_body(items: list[dict]) -> bytes:
    """The request body of ``POST /api/v1/measurements/bulk`` for one batch."""
    return json.dumps({"measurements": items}, separators=(",", ":")).encode()
