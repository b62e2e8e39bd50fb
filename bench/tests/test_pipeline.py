"""The whole benchmark on a tiny preset: correctness of the pipeline, not speed."""

import json

import pytest

from allocation.engine.arithmetic import allocate_quarter
from bench.allocation_workload import METHOD, build_allocation_workload
from bench.incremental_steps import NEW_BOOKINGS
from bench.results import REQUIRED_KEYS
from bench.runner import run
from bench.server import port_free
from bench.workload import build_workload


def expected_rows(site) -> tuple[int, int]:
    """(allocation bookings, SQL baseline rows) of the site, computed here quarter-hour by quarter-hour."""
    items = [item["energy_wh"] for item in site.values()]
    sources, width = len(site.sources), len(site.participants)
    bookings = baseline = 0
    for q in range(site.quarters):
        energies = items[q * width : (q + 1) * width]
        generation, consumption = energies[:sources], energies[sources:]
        result = allocate_quarter(METHOD, generation, consumption, site.shares())
        bookings += sum(1 for parts in result.allocated for part in parts if part)
        bookings += sum(1 for wh in (*result.surplus, *result.residual) if wh)
        demand = sum(consumption)
        local = [0] * len(consumption)
        for g in generation:
            parts = [min(g, demand) * c // demand if demand else 0 for c in consumption]
            baseline += sum(1 for part in parts if part) + (g > demand)
            local = [a + b for a, b in zip(local, parts, strict=True)]
        baseline += sum(1 for c, a in zip(consumption, local, strict=True) if c > a)
    return bookings, baseline


def free_port() -> int:
    for port in range(8309, 8301, -1):
        if port_free(port):
            return port
    pytest.skip("no free port in 8302-8309")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_tiny_bench_runs_end_to_end(tmp_path):
    from django.db.models import Sum

    from allocation.models import AllocationBooking
    from balance_groups.models import BalanceGroup
    from transactions.models import Booking, BookingKind, LedgerLine

    out = tmp_path / "results.json"
    results = run(
        groups=12,
        days=1,
        seed=3,
        batch_size=400,
        port=free_port(),
        read_requests=3,
        alloc_consumers=5,
        alloc_days=1,
        alloc_batch_size=300,
        out=out,
        quiet=True,
    )
    workload = build_workload(groups=12, days=1, seed=3)
    site = build_allocation_workload(consumers=5, days=1, seed=3)

    written = json.loads(out.read_text())
    assert set(REQUIRED_KEYS) <= set(written)
    assert written["values"] == workload.value_count == 7 * 96  # 12 groups: top, 2 areas, 2 grid, 7 leaves
    assert written["ingest_batches"] == 2  # 672 values in batches of 400

    # Every value went through the API exactly once and became one booking with one line.
    assert results["ingest_created"] == workload.value_count
    assert results["ingest_rejected"] == 0
    assert Booking.objects.filter(kind=BookingKind.MANUAL).count() == workload.value_count + NEW_BOOKINGS
    assert BalanceGroup.objects.count() == 12 + 9  # the allocation site: 2 sources, 5 consumers, grid, supplier
    assert results["ingest_copy_baseline_rows"] == workload.value_count
    assert results["settle_input_lines"] == workload.value_count
    assert results["ingest_values_per_s"] > 0 and results["ingest_copy_baseline_rows_per_s"] > 0

    # The settlement ran and added settlement lines; the ledger is consistent afterwards.
    assert results["settle_seconds"] is not None
    assert Booking.objects.filter(kind=BookingKind.SETTLEMENT).exists()
    # (ledger_lines is taken before the allocation site adds its bookings, one line each)
    assert results["ledger_lines"] == LedgerLine.objects.count() - results["alloc_bookings"] > workload.value_count
    assert results["check_ledger"] == "clean"

    # After the settlement: exactly the written day is marked (one day here), one task asked for per
    # write, and the periodic runs settled what the writes changed.
    assert (results["two_bookings_days_marked"], results["two_bookings_tasks_asked"]) == (1, 1)
    assert results["quarter_write_values"] == 7  # one value of each leaf
    assert (results["quarter_days_marked"], results["quarter_tasks_asked"]) == (1, 1)
    assert results["periodic_quarter_bookings_changed"] > 0
    assert results["periodic_unchanged_runs"] == 0
    assert results["write_during_settlement_ms"] > 0
    # Two workers share the marked days: together they read the lines one worker reads, once.
    one, two = results["parallel_1_worker_lines_read"], results["parallel_2_worker_lines_read"]
    assert len(one) == 1 and len(two) == 2
    assert sum(two) == sum(one) > 0
    assert results["parallel_speedup"] > 0

    # Reads answered with the whole window; memory and storage figures are present.
    assert results["balance_intervals"] == 96
    assert results["balance_p50_ms"] is not None and results["balance_p95_ms"] >= results["balance_p50_ms"]
    assert results["bytes_per_line"] > 0
    assert results["app_processes"] == 3  # gunicorn master and two workers
    assert results["peak_rss_mib"] >= results["app_worker_peak_rss_mib"] > 0
    assert results["machine"]["cores"] >= 1

    # The allocation site: every measurement through the API once, in batches of 300.
    assert results["alloc_values"] == site.value_count == 7 * 96
    assert (results["alloc_ingest_created"], results["alloc_ingest_rejected"]) == (site.value_count, 0)
    assert results["alloc_ingest_batches"] == 3
    # One run allocated the announced day and wrote exactly the bookings the arithmetic gives.
    bookings, baseline_rows = expected_rows(site)
    assert (results["alloc_run_status"], results["alloc_days_announced"], results["alloc_run_days"]) == (
        "succeeded",
        1,
        1,
    )
    assert results["alloc_bookings"] == bookings == results["alloc_run_bookings_created"]
    allocation = Booking.objects.filter(kind=BookingKind.ALLOCATION)
    assert allocation.count() == AllocationBooking.objects.count() == bookings
    meters = {p.metering_point for p in site.consumers}
    consumed = sum(item["energy_wh"] for item in site.values() if item["group"] in meters)
    assert allocation.filter(destination__code__startswith="C-").aggregate(wh=Sum("energy_wh"))["wh"] == consumed
    assert results["alloc_sql_baseline_rows"] == baseline_rows
    assert results["alloc_bookings_per_s"] > 0 and results["alloc_sql_baseline_rows_per_s"] > 0
    ours, plain = results["alloc_bookings_per_s"], results["alloc_sql_baseline_rows_per_s"]
    assert results["alloc_ratio"] == round(ours / plain, 3)
    assert results["alloc_peak_rss_mib"] >= results["alloc_process_ready_rss_mib"] > 0
    assert results["alloc_bytes_per_booking"] > 0
