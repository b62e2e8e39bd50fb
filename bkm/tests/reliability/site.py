"""A small site with a three-level settlement hierarchy and an allocation scheme, deterministic
booking and measurement batches, and a tenant-independent snapshot of the ledger (to compare a
faulty or concurrent run with a clean one)."""

import datetime as dt
import random
from collections import defaultdict

from allocation.models import AllocationBooking
from allocation.services import scheme_change
from balance_groups.services import group_create
from core.testing import iso
from settlement.models import Imbalance, SettlementBooking
from settlement.services import rule_change
from transactions.models import Booking, BookingKind

UTC = dt.UTC
T0 = dt.datetime(2025, 10, 24, 22, tzinfo=UTC)  # local midnight (CEST); the autumn DST day follows
QUARTER = dt.timedelta(minutes=15)

GROUPS = [
    ("GRID", "balance"),
    ("HOUSE", "balance"),
    ("PV", "source"),
    ("BAT", "source"),
    ("APT-1", "consumer"),
    ("APT-2", "consumer"),
    ("HP", "consumer"),
]
RULES = [
    ("HOUSE", "1d", [("GRID", 10000)]),
    ("PV", "15min", [("HOUSE", 10000)]),
    ("BAT", "1h", [("HOUSE", 6000), ("GRID", 4000)]),
    ("APT-1", "1h", [("HOUSE", 10000)]),
    ("APT-2", "1h", [("HOUSE", 10000)]),
    ("HP", "15min", [("HOUSE", 10000)]),
]
FLOWS = [
    ("PV", "APT-1"),
    ("PV", "APT-2"),
    ("PV", "HP"),
    ("PV", "BAT"),
    ("BAT", "APT-1"),
    ("GRID", "HP"),
    ("PV", "GRID"),
]


def build_site(tenant, actor) -> dict:
    groups = {
        code: group_create(tenant=tenant, actor=actor, code=code, name=f"{code} ☀", kind=kind, valid_from=T0)
        for code, kind in GROUPS
    }
    for code, interval, targets in RULES:
        rule_change(
            group=groups[code],
            actor=actor,
            targets=[(groups[parent], share) for parent, share in targets],
            interval=interval,
            effective_from=T0,
        )
    return groups


METERED = ["PV", "BAT", "APT-1", "APT-2", "HP"]  # the participants of the site's allocation scheme


def add_scheme(tenant, groups, actor):
    """PV first, then the battery, shared dynamically among the apartments and the heat pump."""
    return scheme_change(
        tenant=tenant,
        actor=actor,
        code="HOUSE-SHARE",
        name="Mieterstrom",
        method="dynamic",
        sources=[groups["PV"], groups["BAT"]],
        consumers=[(groups["APT-1"], 4000), (groups["APT-2"], 4000), (groups["HP"], 2000)],
        surplus_to=groups["GRID"],
        residual_from=groups["GRID"],
        effective_from=T0,
    )


def measurement_universe(days: int, seed: int = 11, skip_every: int = 0, final_every: int = 0) -> list[dict]:
    """A value per metered group and quarter-hour (one of every ``skip_every`` left out: a gap)."""
    rng = random.Random(seed)
    items = []
    for q in range(days * 96):
        for m, code in enumerate(METERED):
            n = q * len(METERED) + m
            if skip_every and n % skip_every == skip_every - 1:
                continue
            item = {"group": code, "start": iso(T0 + q * QUARTER), "energy_wh": rng.choice([0, rng.randint(1, 3000)])}
            if final_every and n % final_every == 0:
                item["status"] = "final"
            items.append(item)
    return items


def universe(count: int, days: int, seed: int = 7, final_every: int = 0) -> list[dict]:
    """``count`` API-shaped items with external ids ``e-0``..; the same seed gives the same items."""
    rng = random.Random(seed)
    quarters = days * 96
    items = []
    for n in range(count):
        source, destination = rng.choice(FLOWS)
        start = rng.randrange(quarters - 8)
        length = rng.randint(1, 8)
        item = {
            "external_id": f"e-{n}",
            "source": source,
            "destination": destination,
            "start": iso(T0 + start * QUARTER),
            "end": iso(T0 + (start + length) * QUARTER),
            "energy_wh": rng.randint(1, 5000),
        }
        if final_every and n % final_every == 0:
            item["status"] = "final"
        items.append(item)
    return items


def snapshot(tenant) -> dict:
    """The ledger of a tenant in terms that do not depend on ids or on the order of writes."""
    manual = sorted(
        (b.external_id, b.source.code, b.destination.code, b.start, b.end, b.energy_wh, b.status, b.kind)
        for b in Booking.objects.filter(
            tenant=tenant, kind__in=[BookingKind.MANUAL, BookingKind.REVERSAL]
        ).select_related("source", "destination")
    )
    allocated = {
        (key.booking.source.code, key.booking.destination.code, key.quarter_start): (
            key.booking.energy_wh,
            key.booking.status,
        )
        for key in AllocationBooking.objects.filter(tenant=tenant).select_related(
            "booking__source", "booking__destination"
        )
    }
    settled = defaultdict(lambda: [0, True])
    for link in SettlementBooking.objects.filter(tenant=tenant).select_related("booking", "child", "parent"):
        key = (link.child.code, link.parent.code, link.window_start)
        booking = link.booking
        settled[key][0] += booking.energy_wh if booking.source_id == link.child_id else -booking.energy_wh
        settled[key][1] = settled[key][1] and booking.status == "final"
    imbalances = {
        (code, quarter): (inflow, outflow, final)
        for code, quarter, inflow, outflow, final in Imbalance.objects.filter(tenant=tenant).values_list(
            "group__code", "quarter_start", "inflow_wh", "outflow_wh", "is_final"
        )
    }
    return {
        "manual": manual,
        "allocated": allocated,
        "settled": {key: tuple(value) for key, value in settled.items() if value[0]},
        "imbalances": imbalances,
    }
