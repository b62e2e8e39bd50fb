"""Property test of the allocation over the ledger: random schemes and measurements (gaps,
substitute and final values, corrections), and after every write the identities hold exactly per
quarter-hour, ``check_ledger`` is clean, and a re-run writes nothing."""

import datetime as dt
import itertools

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocation.measurements import measurements_ingest
from allocation.models import AllocationBooking, Measurement
from allocation.services import scheme_change
from balance_groups.factories import GroupFactory, TenantFactory
from core.errors import InvalidInput
from core.integrity import ledger_violations
from core.testing import T0, iso
from settlement.services import settlement_run
from transactions.models import Booking, ClarificationCase
from transactions.services import clarification_resolve

QUARTERS = 4
QUARTER = dt.timedelta(minutes=15)
_tenants = itertools.count()


@st.composite
def sites(draw):
    sources = draw(st.integers(1, 2))
    consumers = draw(st.integers(1, 4))
    cuts = sorted(draw(st.lists(st.integers(0, 10000), min_size=consumers - 1, max_size=consumers - 1)))
    shares = [b - a for a, b in zip([0, *cuts], [*cuts, 10000], strict=True)]
    value = st.one_of(
        st.none(),  # missing: a gap
        st.tuples(
            st.integers(0, draw(st.sampled_from([5, 1000, 10**9]))),
            st.sampled_from([("measured", "final"), ("measured", "provisional"), ("substitute", "provisional")]),
        ),
    )
    participants = sources + consumers
    first = draw(
        st.lists(st.lists(value, min_size=QUARTERS, max_size=QUARTERS), min_size=participants, max_size=participants)
    )
    second = draw(
        st.lists(st.lists(value, min_size=QUARTERS, max_size=QUARTERS), min_size=participants, max_size=participants)
    )
    method = draw(st.sampled_from(["dynamic", "static", "static_redistributed"]))
    return sources, shares, method, first, second


def _items(codes, values):
    return [
        {"group": code, "start": iso(T0 + q * QUARTER), "energy_wh": wh, "quality": quality, "status": status}
        for code, series in zip(codes, values, strict=True)
        for q, entry in enumerate(series)
        if entry is not None
        for wh, (quality, status) in [entry]
    ]


def _check(tenant, codes, n_sources):
    """Independently of the engine: per quarter-hour with every value, the flows out of each source
    sum to its generation and the flows into each consumer to its consumption; no flow elsewhere."""
    assert ledger_violations([tenant.pk]) == []

    values = {
        (m.group.code, m.quarter_start): m.energy_wh
        for m in Measurement.objects.filter(tenant=tenant).select_related("group")
    }
    flows = list(
        AllocationBooking.objects.filter(tenant=tenant).values_list(
            "quarter_start", "booking__source__code", "booking__destination__code", "booking__energy_wh"
        )
    )
    for q in range(QUARTERS):
        quarter = T0 + q * QUARTER
        here = [f for f in flows if f[0] == quarter]
        if any((code, quarter) not in values for code in codes):
            assert here == []  # a gap is not allocated
            continue
        for index, code in enumerate(codes):
            if index < n_sources:
                assert sum(wh for _, s, _, wh in here if s == code) == values[(code, quarter)]
            else:
                into = [wh for _, _, d, wh in here if d == code]
                assert sum(into) == values[(code, quarter)]
                assert all(0 < wh <= values[(code, quarter)] for wh in into)


@pytest.mark.django_db
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(site=sites())
def test_allocation_identities_hold_after_every_write(site):
    n_sources, shares, method, first, second = site
    with transaction.atomic():
        tenant = TenantFactory(code=f"prop-{next(_tenants)}")
        sources = [GroupFactory(tenant=tenant, code=f"S{i}", kind="source") for i in range(n_sources)]
        consumers = [GroupFactory(tenant=tenant, code=f"C{i}", kind="consumer") for i in range(len(shares))]
        grid = GroupFactory(tenant=tenant, code="GRID", kind="balance")
        codes = [g.code for g in (*sources, *consumers)]
        scheme_change(
            tenant=tenant,
            actor="system:test",
            code="P",
            name="P",
            method=method,
            sources=sources,
            consumers=list(zip(consumers, shares, strict=True)),
            surplus_to=grid,
            residual_from=grid,
            effective_from=T0,
        )
        measurements_ingest(tenant=tenant, actor="system:test", items=_items(codes, first))
        _check(tenant, codes, n_sources)

        before = sorted(Booking.objects.filter(tenant=tenant).values_list("pk", flat=True))
        settlement_run(tenant=tenant, start=T0, end=T0 + QUARTERS * QUARTER)
        assert sorted(Booking.objects.filter(tenant=tenant).values_list("pk", flat=True)) == before  # re-run: no change

        result = measurements_ingest(tenant=tenant, actor="system:test", items=_items(codes, second))
        assert all(r["code"] == "MEASUREMENT_FINAL" for r in result.rejected)
        _check(tenant, codes, n_sources)

        for case in ClarificationCase.objects.filter(tenant=tenant, status="open")[:2]:
            if case.payload["status"] != "final":
                with pytest.raises(InvalidInput, match="final measured value only"):
                    clarification_resolve(case=case, actor="system:test", action="rebook", note="corrected")
                continue
            clarification_resolve(case=case, actor="system:test", action="rebook", note="corrected")  # reversals
            _check(tenant, codes, n_sources)
        transaction.set_rollback(True)
