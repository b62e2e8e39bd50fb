"""The whole benchmark on a tiny preset: correctness of the pipeline, not speed."""

import json

import pytest

from bench.results import REQUIRED_KEYS
from bench.runner import run
from bench.server import port_free
from bench.workload import build_workload


def free_port() -> int:
    for port in range(8309, 8301, -1):
        if port_free(port):
            return port
    pytest.skip("no free port in 8302-8309")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_tiny_bench_runs_end_to_end(tmp_path):
    from balance_groups.models import BalanceGroup
    from transactions.models import Booking, BookingKind, LedgerLine

    out = tmp_path / "results.json"
    results = run(groups=12, days=1, seed=3, batch_size=400, port=free_port(), read_requests=3, out=out, quiet=True)
    workload = build_workload(groups=12, days=1, seed=3)

    written = json.loads(out.read_text())
    assert set(REQUIRED_KEYS) <= set(written)
    assert written["values"] == workload.value_count == 7 * 96  # 12 groups: top, 2 areas, 2 grid, 7 leaves
    assert written["ingest_batches"] == 2  # 672 values in batches of 400

    # Every value went through the API exactly once and became one booking with one line.
    assert results["ingest_created"] == workload.value_count
    assert results["ingest_rejected"] == 0
    assert Booking.objects.filter(kind=BookingKind.MANUAL).count() == workload.value_count
    assert BalanceGroup.objects.count() == 12
    assert results["ingest_copy_baseline_rows"] == workload.value_count
    assert results["settle_input_lines"] == workload.value_count
    assert results["ingest_values_per_s"] > 0 and results["ingest_copy_baseline_rows_per_s"] > 0

    # The settlement ran and added settlement lines; the ledger is consistent afterwards.
    assert results["settle_seconds"] is not None
    assert Booking.objects.filter(kind=BookingKind.SETTLEMENT).exists()
    assert results["ledger_lines"] == LedgerLine.objects.count() > workload.value_count
    assert results["check_ledger"] == "clean"

    # Reads answered with the whole window; memory and storage figures are present.
    assert results["balance_intervals"] == 96
    assert results["balance_p50_ms"] is not None and results["balance_p95_ms"] >= results["balance_p50_ms"]
    assert results["bytes_per_line"] > 0
    assert results["app_processes"] == 3  # gunicorn master and two workers
    assert results["peak_rss_mib"] >= results["app_worker_peak_rss_mib"] > 0
    assert results["machine"]["cores"] >= 1
