"""The demo site: a tenant-electricity building behind one grid connection.

Everything is deterministic (seeded per quarter-hour) and keyed by external ids, so seeding
twice changes nothing.
"""

import datetime as dt
import math
import random
from dataclasses import dataclass

from core.quarters import QUARTER, floor_quarter, iter_quarters, local_day_bounds, site_zone
from core.splitting import split_by_shares

TENANT_CODE = "demo"
TENANT_NAME = "Sonnenhof Mieterstrom (Demo)"
HISTORY_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# (code, name, kind)
GROUPS = [
    ("GRID-CONNECTION", "Netzanschluss Sonnenhof", "balance"),
    ("SUPPLIER", "Lieferant / öffentliches Netz", "balance"),
    ("APARTMENTS", "Wohnungen", "balance"),
    ("PV-ROOF", "PV-Anlage Dach (30 kWp)", "source"),
    ("BATTERY", "Batteriespeicher (20 kWh)", "source"),
    ("HEAT-PUMP", "Wärmepumpe", "consumer"),
    ("WALLBOX", "Wallbox Tiefgarage", "consumer"),
    ("APT-1", "Wohnung 1 (EG links)", "consumer"),
    ("APT-2", "Wohnung 2 (OG rechts)", "consumer"),
    ("APT-3", "Wohnung 3 (DG)", "consumer"),
    ("COMMON", "Allgemeinstrom (Treppenhaus, Keller)", "consumer"),
]

# code -> (interval, [(parent code, share)]); SUPPLIER and GRID-CONNECTION are the roots.
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

CONSUMERS = ["APT-1", "APT-2", "APT-3", "HEAT-PUMP", "WALLBOX", "COMMON"]
BATTERY_CAPACITY_WH = 20000
BATTERY_MAX_WH_PER_QUARTER = 2500


@dataclass(frozen=True)
class DemoWindow:
    start: dt.datetime
    end: dt.datetime


def demo_windows(now: dt.datetime) -> list[DemoWindow]:
    """A fortnight around the spring DST change (2026-03-29 has 92 quarter-hours) and the last
    seven days up to the last complete quarter-hour."""
    zone = site_zone()
    spring = DemoWindow(local_day_bounds(dt.date(2026, 3, 23), zone)[0], local_day_bounds(dt.date(2026, 4, 5), zone)[1])
    recent_end = floor_quarter(now)
    recent_start = local_day_bounds((recent_end - dt.timedelta(days=7)).astimezone(zone).date(), zone)[0]
    if recent_start <= spring.end:
        return [DemoWindow(min(spring.start, recent_start), max(spring.end, recent_end))]
    return [spring, DemoWindow(recent_start, recent_end)]


def _pv_wh(quarter: dt.datetime, rng: random.Random) -> int:
    local = quarter.astimezone(site_zone())
    hour = local.hour + local.minute / 60 + 0.125
    day_of_year = local.timetuple().tm_yday
    # Longer, higher days in summer; clouds scale the whole day and each quarter a little.
    half_day = 4.0 + 3.5 * math.sin((day_of_year - 80) / 365 * 2 * math.pi)
    noon = 13.2
    if abs(hour - noon) >= half_day:
        return 0
    peak_kw = 22 + 8 * math.sin((day_of_year - 80) / 365 * 2 * math.pi)
    clouds = 0.35 + 0.65 * random.Random(local.date().toordinal()).random()
    shape = math.cos((hour - noon) / half_day * math.pi / 2) ** 2
    return int(peak_kw * 250 * shape * clouds * (0.85 + 0.3 * rng.random()))


def _demand_wh(code: str, quarter: dt.datetime, rng: random.Random) -> int:
    local = quarter.astimezone(site_zone())
    hour = local.hour + local.minute / 60
    if code.startswith("APT"):
        evening = 1.0 if 17 <= hour < 22 else 0.0
        morning = 0.6 if 6 <= hour < 9 else 0.0
        return int(40 + 90 * (evening + morning) * rng.random() + 20 * rng.random())
    if code == "HEAT-PUMP":
        month = local.month
        cold = 1.0 if month in (11, 12, 1, 2, 3) else 0.3
        night = 1.25 if hour < 6 or hour >= 22 else 1.0
        return int(cold * night * (350 + 200 * rng.random()))
    if code == "WALLBOX":
        charging_day = random.Random(local.date().toordinal() * 7).random() < 0.5
        return 2750 if charging_day and 18 <= hour < 21 else 0
    if code == "COMMON":
        return int(25 + (30 if 18 <= hour < 23 else 0) + 10 * rng.random())
    raise ValueError(code)


def quarter_flows(quarter: dt.datetime, battery_wh: int) -> tuple[list[tuple[str, str, int]], int]:
    """The flows of one quarter-hour as (source, destination, Wh), and the new battery charge.

    PV serves the consumers first (shared by demand), then charges the battery, then is
    exported; what PV and battery cannot cover comes from the supplier.
    """
    rng = random.Random(int(quarter.timestamp()))
    demand = {code: _demand_wh(code, quarter, rng) for code in CONSUMERS}
    total_demand = sum(demand.values())
    pv = _pv_wh(quarter, rng)
    flows = []
    pv_to_load = min(pv, total_demand)
    if pv_to_load:
        codes = [code for code in CONSUMERS if demand[code]]
        shares = _shares([demand[code] for code in codes])
        for code, part in zip(codes, split_by_shares(pv_to_load, shares), strict=True):
            flows.append(("PV-ROOF", code, part))
            demand[code] -= part
    surplus = pv - pv_to_load
    charge = min(surplus, BATTERY_MAX_WH_PER_QUARTER, BATTERY_CAPACITY_WH - battery_wh)
    if charge:
        flows.append(("PV-ROOF", "BATTERY", charge))
        battery_wh += charge
    if surplus - charge:
        flows.append(("PV-ROOF", "SUPPLIER", surplus - charge))
    for code in CONSUMERS:
        from_battery = min(demand[code], battery_wh, BATTERY_MAX_WH_PER_QUARTER // 3)
        if from_battery:
            flows.append(("BATTERY", code, from_battery))
            battery_wh -= from_battery
            demand[code] -= from_battery
        if demand[code]:
            flows.append(("SUPPLIER", code, demand[code]))
    return [flow for flow in flows if flow[2] > 0], battery_wh


def _shares(weights: list[int]) -> list[int]:
    """Basis-point shares proportional to positive integer weights, summing to 10000."""
    total = sum(weights)
    return split_by_shares(10000, [10000]) if len(weights) == 1 else _largest_remainder(weights, total)


def _largest_remainder(weights: list[int], total: int) -> list[int]:
    exact = [10000 * weight for weight in weights]
    shares = [value // total for value in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] % total), i))
    for i in order[: 10000 - sum(shares)]:
        shares[i] += 1
    # A zero share is not allowed by split_by_shares' callers here only if weights are 0: they are not.
    return shares


def booking_items(window: DemoWindow, *, final_before: dt.datetime):
    """API-shaped booking items for every quarter-hour of the window."""
    battery = 0
    for quarter in iter_quarters(window.start, window.end):
        flows, battery = quarter_flows(quarter, battery)
        stamp = quarter.strftime("%Y%m%dT%H%MZ")
        for source, destination, energy in flows:
            yield {
                "external_id": f"demo:{stamp}:{source}:{destination}",
                "name": f"{source} → {destination}",
                "source": source,
                "destination": destination,
                "start": quarter.isoformat(),
                "end": (quarter + QUARTER).isoformat(),
                "energy_wh": energy,
                "status": "final" if quarter + QUARTER <= final_before else "provisional",
            }
