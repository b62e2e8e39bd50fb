"""The demo site: a tenant-electricity building behind one grid connection, metered as a real one is.

Its meters deliver quarter-hour values in Wh and its allocation scheme says how the roof's PV and
the battery are shared among the consumers; the product computes every flow from those, as for a
real site. The values come from one deterministic simulation that always starts at
``HISTORY_START``, so a quarter-hour has the same value whichever window is seeded, and whenever.

Metering concept: the battery charges only from PV surplus. ``PV-ROOF`` meters what the roof
delivers to the building after the battery took its charge, ``BATTERY`` meters its discharge, so
stored energy is counted once, when it is used.
"""

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from allocation.mscons.writer import Reading, write_interchange
from core.quarters import QUARTER, floor_quarter, iter_quarters, local_date, local_day_bounds, site_zone

TENANT_CODE = "demo"
TENANT_NAME = "Sonnenhof Mieterstrom (Demo)"
HISTORY_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _melo(number: int) -> str:
    """A metering point id of the demo's (fictitious) metering operator: 33 characters like a MeLo."""
    return f"DE000563661{number:022d}"


# (code, name, kind, metering point): every source and consumer is metered.
GROUPS = [
    ("GRID-CONNECTION", "Netzanschluss Sonnenhof", "balance", None),
    ("SUPPLIER", "Reststromlieferant (Netzbezug)", "balance", None),
    ("GRID-FEED-IN", "Netzeinspeisung (Überschuss)", "balance", None),
    ("APARTMENTS", "Wohnungen", "balance", None),
    ("PV-ROOF", "PV-Anlage Dach (30 kWp)", "source", _melo(1)),
    ("BATTERY", "Batteriespeicher (20 kWh), Entladung", "source", _melo(2)),
    ("HEAT-PUMP", "Wärmepumpe", "consumer", _melo(3)),
    ("WALLBOX", "Wallbox Tiefgarage", "consumer", _melo(4)),
    ("APT-1", "Wohnung 1 (EG links)", "consumer", _melo(5)),
    ("APT-2", "Wohnung 2 (OG rechts)", "consumer", _melo(6)),
    ("APT-3", "Wohnung 3 (DG)", "consumer", _melo(7)),
    ("COMMON", "Allgemeinstrom (Treppenhaus, Keller)", "consumer", _melo(8)),
]
METERING_POINTS = {code: point for code, _, _, point in GROUPS if point}
METERED = list(METERING_POINTS)

# code -> (interval, [(parent code, share)]); GRID-CONNECTION is the top balance, SUPPLIER and
# GRID-FEED-IN are outside the site (no rule, no children).
RULES = {
    "PV-ROOF": ("15min", [("GRID-CONNECTION", 10000)]),
    "BATTERY": ("15min", [("GRID-CONNECTION", 10000)]),
    "HEAT-PUMP": ("1h", [("GRID-CONNECTION", 10000)]),
    "WALLBOX": ("15min", [("GRID-CONNECTION", 10000)]),
    "APARTMENTS": ("1h", [("GRID-CONNECTION", 10000)]),
    "APT-1": ("15min", [("APARTMENTS", 10000)]),
    "APT-2": ("15min", [("APARTMENTS", 10000)]),
    "APT-3": ("15min", [("APARTMENTS", 10000)]),
    "COMMON": ("1d", [("APARTMENTS", 6000), ("GRID-CONNECTION", 4000)]),
}

# The sharing contract: PV first, then the battery, each split in proportion to consumption.
# Shares are the contract's nominal split (the dynamic method keeps them for information).
SCHEME = {
    "code": "SONNENHOF",
    "name": "Mieterstrom Sonnenhof (PV vor Batterie, dynamisch)",
    "method": "dynamic",
    "sources": ["PV-ROOF", "BATTERY"],
    "consumers": [
        ("APT-1", 2000),
        ("APT-2", 2000),
        ("APT-3", 2000),
        ("HEAT-PUMP", 2000),
        ("WALLBOX", 1500),
        ("COMMON", 500),
    ],
    "surplus_to": "GRID-FEED-IN",
    "residual_from": "SUPPLIER",
    "prices": {
        "price_local_ct_per_kwh": Decimal("27.5"),
        "price_residual_ct_per_kwh": Decimal("38.9"),
        "base_fee_eur_per_month": Decimal("9.90"),
    },
}

# March is closed for the whole site; a value arriving late for it is kept as a clarification case.
CLOSED_UNTIL_LOCAL_DAY = dt.date(2026, 4, 1)
LATE_VALUE = {"group": "APT-2", "start": dt.datetime(2026, 3, 30, 18, 0, tzinfo=dt.UTC), "energy_wh": 412}
# A corrected true value for a quarter-hour already final: a clarification case to resolve.
CORRECTION = {"group": "APT-3", "start": dt.datetime(2026, 4, 2, 17, 0, tzinfo=dt.UTC), "more_wh": 58}

BATTERY_CAPACITY_WH = 20000
BATTERY_RESERVE_WH = 1000
BATTERY_MAX_WH_PER_QUARTER = 1250  # 5 kW
BATTERY_EFFICIENCY_PERCENT = 92
WALLBOX_WH_PER_QUARTER = 2750  # 11 kW


@dataclass(frozen=True)
class DemoWindow:
    start: dt.datetime
    end: dt.datetime


def previous_month_start(now: dt.datetime) -> dt.date:
    """The first local day of the month before the one holding ``now``."""
    return (now.astimezone(site_zone()).date().replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def demo_windows(now: dt.datetime) -> list[DemoWindow]:
    """A fortnight around the spring DST change (2026-03-29 has 92 quarter-hours) and the last
    four weeks up to the last complete quarter-hour, reaching back to the first of the previous
    month so that its statements are complete."""
    zone = site_zone()
    spring = DemoWindow(local_day_bounds(dt.date(2026, 3, 23), zone)[0], local_day_bounds(dt.date(2026, 4, 5), zone)[1])
    recent_end = floor_quarter(now)
    four_weeks_back = (recent_end - dt.timedelta(days=27)).astimezone(zone).date()
    recent_start = local_day_bounds(min(four_weeks_back, previous_month_start(now)), zone)[0]
    if recent_start <= spring.end:
        return [DemoWindow(min(spring.start, recent_start), max(spring.end, recent_end))]
    return [spring, DemoWindow(recent_start, recent_end)]


# The simulation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Day:
    clouds: float  # the part of clear-sky PV that reaches the panels
    mean_temp: float  # °C
    session: tuple[dt.datetime, int] | None  # wallbox: plug-in quarter-hour and the energy wanted (Wh)


# Apartment households: base load, morning, midday and evening peaks (Wh per quarter-hour).
APARTMENTS = {
    "APT-1": (18, 40, 45, 90),  # a retired couple, at home by day
    "APT-2": (25, 110, 15, 210),  # a family: breakfast and dinner
    "APT-3": (15, 70, 5, 150),  # two commuters
}


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-(((hour - centre) / width) ** 2))


def _sun(quarter: dt.datetime) -> tuple[float, float]:
    """(position in the day from -1 at sunrise to 1 at sunset, seasonal factor from -1 in December to
    1 in June) at the middle of the quarter-hour; solar noon is about 11:20 UTC on the site."""
    season = math.sin((quarter.timetuple().tm_yday - 80) / 365 * 2 * math.pi)
    half_day = 6.1 + 2.1 * season
    hour = quarter.hour + quarter.minute / 60 + 0.125
    return (hour - 11.3) / half_day, season


def _plan_day(date: dt.date, rng: random.Random) -> _Day:
    season = math.cos((date.timetuple().tm_yday - 196) / 365 * 2 * math.pi)  # 1 in mid-July, -1 in mid-January
    # Clear, mixed or overcast; winters are greyer (clear 15 %, overcast 50 % of winter days; 40 % and 20 % in summer).
    weather = rng.random()
    if weather < 0.275 + 0.125 * season:
        clouds = 0.9 + 0.1 * rng.random()
    elif weather < 0.65 + 0.15 * season:
        clouds = 0.4 + 0.45 * rng.random()
    else:
        clouds = 0.1 + 0.25 * rng.random()
    session = None
    if rng.random() < 0.6:
        plug_in = dt.datetime.combine(date, dt.time(17), tzinfo=site_zone()) + QUARTER * rng.randrange(15)
        session = (plug_in.astimezone(dt.UTC), rng.randrange(6000, 24000))
    return _Day(clouds=clouds, mean_temp=9.5 + 9.5 * season + rng.gauss(0, 3), session=session)


def _pv_generated(quarter: dt.datetime, day: _Day, rng: random.Random) -> int:
    position, season = _sun(quarter)
    if abs(position) >= 1:
        return 0
    peak_wh = 30 * (0.6 + 0.25 * season) * 250  # 30 kWp: about 11 kW at a clear December noon, 25 kW in June
    flicker = 0.95 + 0.1 * rng.random() if day.clouds > 0.9 else 0.6 + 0.8 * rng.random()
    return int(peak_wh * math.cos(position * math.pi / 2) ** 2 * min(day.clouds * flicker, 1.0))


def _apartment(code: str, hour: float, rng: random.Random) -> int:
    base, morning, midday, evening = APARTMENTS[code]
    load = base + morning * _bump(hour, 7.0, 1.0) + midday * _bump(hour, 12.5, 1.2) + evening * _bump(hour, 19.0, 1.6)
    spike = rng.randrange(80, 300) if rng.random() < 0.05 else 0  # kettle, oven, washing machine
    return int(load * (0.6 + 0.8 * rng.random())) + spike


def _heat_pump(hour: float, day: _Day, rng: random.Random) -> int:
    temperature = day.mean_temp + 4 * math.cos((hour - 15) / 24 * 2 * math.pi)  # coldest before dawn
    heating = max(0.0, 16 - temperature) * 14 * (0.8 + 0.4 * rng.random())  # about 20 kWh a day at 3 °C
    hot_water = 180 * (_bump(hour, 6.5, 0.7) + _bump(hour, 20.0, 0.8))
    return min(int(heating + hot_water), 600)  # 2.4 kW at most


def _common(quarter: dt.datetime, hour: float, rng: random.Random) -> int:
    dark = abs(_sun(quarter)[0]) >= 1 and 6 <= hour < 23
    lift = rng.randrange(15, 45) if 6 <= hour < 22 and rng.random() < 0.2 else 0
    return 20 + (25 if dark else 0) + lift + rng.randrange(6)


def simulate(until: dt.datetime) -> Iterator[tuple[dt.datetime, dict[str, int]]]:
    """Every quarter-hour from ``HISTORY_START`` to ``until`` with the meters' true values (Wh)."""
    rng = random.Random("sonnenhof")
    zone = site_zone()
    day_date, day = None, None
    battery_wh = BATTERY_RESERVE_WH
    wallbox_left = 0
    for quarter in iter_quarters(HISTORY_START, until):
        local = quarter.astimezone(zone)
        if local.date() != day_date:
            day_date = local.date()
            day = _plan_day(day_date, rng)
        hour = local.hour + local.minute / 60
        if day.session is not None and day.session[0] == quarter:
            wallbox_left += day.session[1]
        values = {code: _apartment(code, hour, rng) for code in APARTMENTS}
        values["HEAT-PUMP"] = _heat_pump(hour, day, rng)
        values["WALLBOX"] = min(wallbox_left, WALLBOX_WH_PER_QUARTER)
        wallbox_left -= values["WALLBOX"]
        values["COMMON"] = _common(quarter, hour, rng)
        demand = sum(values.values())
        generated = _pv_generated(quarter, day, rng)
        charge = min(max(generated - demand, 0), BATTERY_MAX_WH_PER_QUARTER)
        charge = min(charge, (BATTERY_CAPACITY_WH - battery_wh) * 100 // BATTERY_EFFICIENCY_PERCENT)
        battery_wh += charge * BATTERY_EFFICIENCY_PERCENT // 100
        discharge = min(max(demand - generated, 0), BATTERY_MAX_WH_PER_QUARTER, battery_wh - BATTERY_RESERVE_WH)
        battery_wh -= discharge
        values["PV-ROOF"] = generated - charge
        values["BATTERY"] = discharge
        yield quarter, values


def meter_values(windows: list[DemoWindow]) -> dict[tuple[str, dt.datetime], int]:
    """``{(group code, quarter-hour): Wh}`` of every meter over the windows."""
    values = {}
    for quarter, readings in simulate(max(window.end for window in windows)):
        if any(window.start <= quarter < window.end for window in windows):
            for code, energy in readings.items():
                values[(code, quarter)] = energy
    return values


# What the metering operator delivers ----------------------------------------------------------


@dataclass(frozen=True)
class Deliveries:
    """How the values arrive: provisional first (with substitute values where a meter failed and
    one value never sent), final later for the older days."""

    final_before: dt.datetime
    substitutes: dict[tuple[str, dt.datetime], int]  # substitute values of the first delivery
    gap: tuple[str, dt.datetime] | None  # the value that never arrives


def _local_quarter(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=site_zone()).astimezone(dt.UTC)


def plan_deliveries(windows: list[DemoWindow], values: dict, now: dt.datetime) -> Deliveries:
    """Days that ended before the day before yesterday are final. A few meter outages on such days are filled
    with substitute values (the mean of the neighbouring true values) until the final delivery;
    one apartment's value for one quarter-hour is never delivered."""
    final_before = local_day_bounds(local_date(now - dt.timedelta(days=2)))[0]
    final_days = sorted(
        {local_date(quarter) for _, quarter in values if local_day_bounds(local_date(quarter))[1] <= final_before}
    )
    if not final_days:
        return Deliveries(final_before=final_before, substitutes={}, gap=None)

    def day(back: int) -> dt.date:
        return final_days[max(0, len(final_days) - back)]

    substitutes = {}
    for code, first, count in (
        ("APT-1", _local_quarter(day(4), 10), 4),
        ("PV-ROOF", _local_quarter(day(6), 12), 3),
        ("HEAT-PUMP", _local_quarter(day(9), 3), 2),
    ):
        before, after = values[(code, first - QUARTER)], values[(code, first + QUARTER * count)]
        for i in range(count):
            substitutes[(code, first + QUARTER * i)] = (before + after) // 2
    return Deliveries(final_before=final_before, substitutes=substitutes, gap=("APT-2", _local_quarter(day(3), 19, 15)))


def _item(code: str, quarter: dt.datetime, energy: int, *, quality: str = "measured", status: str) -> dict:
    return {
        "group": METERING_POINTS[code],
        "start": quarter.isoformat(),
        "energy_wh": energy,
        "quality": quality,
        "status": status,
    }


def first_delivery(values: dict, deliveries: Deliveries, *, stored: set) -> list[dict]:
    """Provisional items for every value not stored yet, substitutes in place, the gap left out."""
    items = []
    for key, energy in sorted(values.items(), key=lambda entry: (entry[0][1], entry[0][0])):
        if key in stored or key == deliveries.gap:
            continue
        if key in deliveries.substitutes:
            items.append(_item(*key, deliveries.substitutes[key], quality="substitute", status="provisional"))
        else:
            items.append(_item(*key, energy, status="provisional"))
    return items


def final_delivery(values: dict, deliveries: Deliveries, *, final: set) -> list[dict]:
    """The true values, final, of the quarter-hours before ``final_before`` not final yet (the gap stays)."""
    return [
        _item(*key, energy, status="final")
        for key, energy in sorted(values.items(), key=lambda entry: (entry[0][1], entry[0][0]))
        if key[1] < deliveries.final_before and key not in final and key != deliveries.gap
    ]


def request_chunks(windows: list[DemoWindow], items: list[dict], *, days: int) -> Iterator[list[dict]]:
    """``items`` (ordered by quarter-hour) cut into requests of ``days`` days each within one window."""
    current: list[dict] = []
    current_key = None
    for item in items:
        quarter = dt.datetime.fromisoformat(item["start"])
        window = next(i for i, window in enumerate(windows) if window.start <= quarter < window.end)
        key = (window, (quarter - windows[window].start) // dt.timedelta(days=days))
        if key != current_key and current:
            yield current
            current = []
        current_key = key
        current.append(item)
    if current:
        yield current


def as_mscons(items: list[dict], *, reference: str) -> bytes:
    """Measurement items (final true values by metering point) as one MSCONS interchange."""
    readings = [
        Reading(
            item["group"],
            dt.datetime.fromisoformat(item["start"]),
            f"{item['energy_wh'] // 1000}.{item['energy_wh'] % 1000:03d}",
        )
        for item in sorted(items, key=lambda item: (item["group"], item["start"]))
    ]
    return write_interchange([readings], reference=reference, name=TENANT_NAME)
