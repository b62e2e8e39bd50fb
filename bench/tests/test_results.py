import json

import pytest

from bench.results import REQUIRED_KEYS, finalize_results, format_table, percentile, rate, ratio, write_results


def figures(**overrides) -> dict:
    base = {
        "ingest_values_per_s": 60_000.0,
        "ingest_copy_baseline_rows_per_s": 300_000.0,
        "settle_seconds": 12.0,
        "settle_sql_baseline_seconds": 10.0,
        "balance_p50_ms": 20.0,
        "balance_p95_ms": 30.0,
        "dashboard_p50_ms": 120.0,
        "dashboard_p95_ms": 150.0,
        "peak_rss_mib": 400.0,
        "bytes_per_line": 120.5,
        "alloc_ingest_values_per_s": 80_000.0,
        "alloc_seconds": 40.0,
        "alloc_bookings": 760_000,
        "alloc_bookings_per_s": 19_000.0,
        "alloc_sql_baseline_rows_per_s": 950_000.0,
        "alloc_peak_rss_mib": 300.0,
        "periodic_quarter_seconds": 3.2,
        "two_bookings_days_marked": 2,
        "write_during_settlement_ms": 12.0,
        "parallel_speedup": 1.6,
        "check_ledger_seconds": 42.0,
        "alloc_sources": 2,
        "alloc_consumers": 200,
        "alloc_days": 31,
        "alloc_values": 601_152,
        "groups": 1000,
        "days": 31,
        "values": 2_848_032,
        "machine": {"cores": 2, "memory_mib": 24105, "postgresql": "15.20", "load_average": [1.5, 0.8, 0.4]},
        "notes": ["settled explicitly"],
    }
    base.update(overrides)
    return base


def test_percentile_interpolates():
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == pytest.approx(50.5)
    assert percentile(samples, 95) == pytest.approx(95.05)
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_and_rate_tolerate_missing_figures():
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(None, 4.0) is None
    assert ratio(1.0, 0) is None
    assert rate(100, 4.0) == 25.0
    assert rate(100, 0) is None


def test_finalize_computes_ratios_and_targets():
    results = finalize_results(figures())
    assert results["ingest_ratio"] == 0.2
    assert results["settle_ratio"] == 1.2
    targets = results["targets"]
    assert targets["ingest_ratio"] == {"target": ">= 0.5", "value": 0.2, "met": False}
    assert targets["ingest_values_per_s"]["met"] is True
    assert targets["settle_ratio"]["met"] is True
    assert targets["bytes_per_line"]["met"] is False
    assert results["alloc_ratio"] == 0.02
    assert targets["alloc_ingest_values_per_s"]["met"] is True
    assert targets["alloc_seconds"] == {"target": "<= 30", "value": 40.0, "met": False}
    assert targets["alloc_peak_rss_mib"]["met"] is True
    assert targets["periodic_quarter_seconds"] == {"target": "<= 1.0", "value": 3.2, "met": False}
    assert targets["parallel_speedup"] == {"target": ">= 1.5", "value": 1.6, "met": True}
    assert targets["check_ledger_seconds"] == {"target": "<= 30", "value": 42.0, "met": False}
    assert set(REQUIRED_KEYS) <= set(results)


def test_missing_figure_is_not_a_met_target():
    results = finalize_results(figures(dashboard_p50_ms=None, settle_seconds=None))
    assert results["settle_ratio"] is None
    assert results["targets"]["settle_ratio"]["met"] is None
    assert results["targets"]["dashboard_p50_ms"]["met"] is None


def test_finalize_refuses_incomplete_results():
    incomplete = figures()
    del incomplete["bytes_per_line"]
    with pytest.raises(ValueError, match="bytes_per_line"):
        finalize_results(incomplete)


def test_write_results_round_trips(tmp_path):
    results = finalize_results(figures())
    path = write_results(results, tmp_path / "out" / "results.json")
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(json.dumps(results))
    assert loaded["machine"]["cores"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]  # no temporary file left


def test_write_results_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "results.json"
    path.write_text('{"old": true}')
    with pytest.raises(TypeError):
        write_results({(1, 2): "a tuple is no JSON key"}, path)
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_table_shows_figures_and_verdicts():
    table = format_table(finalize_results(figures()))
    assert "1000 groups x 31 days = 2,848,032 values" in table
    assert "PostgreSQL 15.20; load average 1.5 0.8 0.4 at the start" in table
    assert "60,000 values/s" in table
    ingest_line = next(line for line in table.splitlines() if line.startswith("ingest ratio"))
    assert ingest_line.endswith("MISSED")
    settle_line = next(line for line in table.splitlines() if line.startswith("settle ratio"))
    assert settle_line.endswith("ok")
    assert "note: settled explicitly" in table
    assert "allocation site: 2 sources + 200 consumers x 31 days = 601,152 measurements, 760,000" in table
    allocation_line = next(line for line in table.splitlines() if line.startswith("allocation of the window"))
    assert "40.00 s" in allocation_line and allocation_line.endswith("MISSED")
    periodic_line = next(line for line in table.splitlines() if line.startswith("periodic run after one quarter"))
    assert "3.20 s" in periodic_line and periodic_line.endswith("MISSED")
    ratio_line = next(line for line in table.splitlines() if line.startswith("allocation ratio"))
    assert ratio_line.split()[-1] == "0.020"
