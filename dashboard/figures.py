"""Behind-the-meter figures for a window, derived from the groups' kinds, the hierarchy and the flows.

Definitions (also shown on the overview page):

- **Site groups** are the top balance (a group without a settlement rule that has children) and
  everything settled onto it. **Outside groups** are the other groups without a rule and without
  children (the supplier / public grid).
- **Physical flows** are manual bookings; a reversal counts as the negative of the booking it
  reverses; settlement bookings are accounting transfers and are left out.
- **Grid import**: flows from outside groups into site groups. **Grid export**: flows from site
  groups to outside groups.
- **PV generation** (local generation): what the site's `source` groups deliver, less what they
  take in (a battery's charging is subtracted from its discharge, so stored energy is not counted twice).
- **Consumption**: what the site's `consumer` groups take in, less what they deliver.
- **Self-consumption rate** = (generation - export) / generation: the share of local generation used on site.
- **Autarky rate** = (consumption - import) / consumption: the share of consumption not drawn from the grid.

All energies are integer Wh; the two rates are fractions (None where the denominator is zero).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Sum

from balance_groups.models import GroupKind
from transactions.models import BookingKind, LedgerLine


@dataclass(frozen=True)
class SiteFigures:
    generation_wh: int
    consumption_wh: int
    grid_import_wh: int
    grid_export_wh: int
    self_consumption_rate: float | None
    autarky_rate: float | None
    top_codes: list[str]
    outside_codes: list[str]


def _site_partition(roots) -> tuple[dict, set, set]:
    """From ``hierarchy_tree`` roots: kind per group id, site group ids, outside group ids."""
    kinds, site, outside = {}, set(), set()

    def walk(node, into: set):
        kinds[node.group.pk] = node.group.kind
        into.add(node.group.pk)
        for child in node.children:
            walk(child, into)

    for root in roots:
        if root.children:
            walk(root, site)
        else:
            kinds[root.group.pk] = root.group.kind
            outside.add(root.group.pk)
    return kinds, site, outside


def physical_flows(*, tenant, start: dt.datetime, end: dt.datetime) -> dict[tuple, int]:
    """Energy per (source id, destination id) over ``[start, end)``; reversals subtract, settlements are left out."""
    rows = (
        LedgerLine.objects.filter(tenant=tenant, quarter_start__gte=start, quarter_start__lt=end)
        .exclude(booking__kind=BookingKind.SETTLEMENT)
        .values("source_id", "destination_id", "booking__kind")
        .annotate(energy=Sum("energy_wh"))
    )
    flows: dict[tuple, int] = defaultdict(int)
    for row in rows:
        if row["booking__kind"] == BookingKind.REVERSAL:
            flows[(row["destination_id"], row["source_id"])] -= row["energy"]
        else:
            flows[(row["source_id"], row["destination_id"])] += row["energy"]
    return flows


def site_figures(*, tenant, roots, start: dt.datetime, end: dt.datetime) -> SiteFigures:
    """The behind-the-meter figures of ``[start, end)`` for the hierarchy ``roots`` (see module doc)."""
    kinds, site, outside = _site_partition(roots)
    flows = physical_flows(tenant=tenant, start=start, end=end)
    generation = consumption = grid_import = grid_export = 0
    for (source, destination), energy in flows.items():
        if source in outside and destination in site:
            grid_import += energy
        elif source in site and destination in outside:
            grid_export += energy
        if source in site and kinds.get(source) == GroupKind.SOURCE:
            generation += energy
        if destination in site and kinds.get(destination) == GroupKind.SOURCE:
            generation -= energy
        if destination in site and kinds.get(destination) == GroupKind.CONSUMER:
            consumption += energy
        if source in site and kinds.get(source) == GroupKind.CONSUMER:
            consumption -= energy
    generation, consumption = max(generation, 0), max(consumption, 0)
    self_consumption = _rate(generation - grid_export, generation)
    autarky = _rate(consumption - grid_import, consumption)
    return SiteFigures(
        generation_wh=generation,
        consumption_wh=consumption,
        grid_import_wh=grid_import,
        grid_export_wh=grid_export,
        self_consumption_rate=self_consumption,
        autarky_rate=autarky,
        top_codes=[root.group.code for root in roots if root.children],
        outside_codes=[root.group.code for root in roots if not root.children],
    )


def _rate(part: int, whole: int) -> float | None:
    if whole <= 0:
        return None
    return min(max(part / whole, 0.0), 1.0)
