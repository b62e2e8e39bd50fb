"""Benchmark figures: percentiles, ratios, targets, the printed table and ``results.json``."""

import json
import math
import os
import tempfile
from pathlib import Path

REQUIRED_KEYS = (
    "ingest_values_per_s",
    "ingest_copy_baseline_rows_per_s",
    "ingest_ratio",
    "settle_seconds",
    "settle_sql_baseline_seconds",
    "settle_ratio",
    "balance_p50_ms",
    "balance_p95_ms",
    "dashboard_p50_ms",
    "peak_rss_mib",
    "bytes_per_line",
    "alloc_ingest_values_per_s",
    "alloc_seconds",
    "alloc_bookings_per_s",
    "alloc_sql_baseline_rows_per_s",
    "alloc_ratio",
    "alloc_peak_rss_mib",
    "periodic_quarter_seconds",
    "two_bookings_days_marked",
    "write_during_settlement_ms",
    "parallel_speedup",
    "check_ledger_seconds",
    "groups",
    "days",
    "values",
    "alloc_consumers",
    "alloc_days",
    "alloc_values",
    "machine",
)

# (key, comparison, threshold): what the issue asks the numbers to reach.
TARGETS = (
    ("ingest_ratio", ">=", 0.5),
    ("ingest_values_per_s", ">=", 50_000),
    ("settle_ratio", "<=", 1.5),
    ("balance_p50_ms", "<=", 50),
    ("dashboard_p50_ms", "<=", 300),
    ("peak_rss_mib", "<=", 1024),
    ("bytes_per_line", "<=", 100),
    ("alloc_ingest_values_per_s", ">=", 50_000),
    ("alloc_seconds", "<=", 30),
    ("alloc_peak_rss_mib", "<=", 1024),
    ("periodic_quarter_seconds", "<=", 1.0),
    ("parallel_speedup", ">=", 1.5),
    ("check_ledger_seconds", "<=", 30),
)


def percentile(samples: list[float], pct: float) -> float | None:
    """Linear-interpolated percentile (``pct`` in 0..100); None for no samples."""
    if not samples:
        return None
    if not 0 <= pct <= 100:
        raise ValueError("pct must be between 0 and 100")
    ordered = sorted(samples)
    position = (len(ordered) - 1) * pct / 100
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def rate(count: int | None, seconds: float | None) -> float | None:
    if count is None or not seconds:
        return None
    return count / seconds


def evaluate_targets(results: dict) -> dict:
    """Each target with its value and whether it is met (None when the figure is missing)."""
    evaluated = {}
    for key, comparison, threshold in TARGETS:
        value = results.get(key)
        met = None
        if value is not None:
            met = value >= threshold if comparison == ">=" else value <= threshold
        evaluated[key] = {"target": f"{comparison} {threshold}", "value": value, "met": met}
    return evaluated


def finalize_results(results: dict) -> dict:
    """Fill the derived figures (ratios, targets) and check every required key is present."""
    results = dict(results)
    results["ingest_ratio"] = _rounded(
        ratio(results.get("ingest_values_per_s"), results.get("ingest_copy_baseline_rows_per_s"))
    )
    results["settle_ratio"] = _rounded(ratio(results.get("settle_seconds"), results.get("settle_sql_baseline_seconds")))
    # Ours against the baseline, in rows written per second: above 1 is faster than plain SQL.
    results["alloc_ratio"] = _rounded(
        ratio(results.get("alloc_bookings_per_s"), results.get("alloc_sql_baseline_rows_per_s"))
    )
    missing = [key for key in REQUIRED_KEYS if key not in results]
    if missing:
        raise ValueError(f"results lack required key(s): {', '.join(missing)}")
    results["targets"] = evaluate_targets(results)
    return results


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def write_results(results: dict, path: str | Path) -> Path:
    """Write the results as JSON, atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(results, stream, indent=2, sort_keys=True, default=str)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3f}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".rstrip()


def format_table(results: dict) -> str:
    """A short human-readable summary of the run."""
    targets = results.get("targets") or evaluate_targets(results)

    def verdict(key):
        met = targets.get(key, {}).get("met")
        return "" if key not in targets else ("ok" if met else "MISSED" if met is not None else "n/a")

    rows = [
        ("ingest via API", _fmt(results.get("ingest_values_per_s"), "values/s"), "", ""),
        ("raw COPY baseline", _fmt(results.get("ingest_copy_baseline_rows_per_s"), "rows/s"), "", ""),
        ("ingest ratio", _fmt(results.get("ingest_ratio")), ">= 0.5", verdict("ingest_ratio")),
        (
            "ingest rate",
            _fmt(results.get("ingest_values_per_s"), "values/s"),
            ">= 50,000",
            verdict("ingest_values_per_s"),
        ),
        ("settlement", _fmt(results.get("settle_seconds"), "s"), "", ""),
        ("settlement lines/s", _fmt(results.get("settle_lines_per_s"), "lines/s"), "", ""),
        ("SQL GROUP BY baseline", _fmt(results.get("settle_sql_baseline_seconds"), "s"), "", ""),
        ("settle ratio", _fmt(results.get("settle_ratio")), "<= 1.5", verdict("settle_ratio")),
        (
            "balance p50 / p95",
            f"{_fmt(results.get('balance_p50_ms'))} / {_fmt(results.get('balance_p95_ms'), 'ms')}",
            "p50 <= 50 ms",
            verdict("balance_p50_ms"),
        ),
        (
            "dashboard p50 / p95",
            f"{_fmt(results.get('dashboard_p50_ms'))} / {_fmt(results.get('dashboard_p95_ms'), 'ms')}",
            "p50 <= 300 ms",
            verdict("dashboard_p50_ms"),
        ),
        ("peak RSS", _fmt(results.get("peak_rss_mib"), "MiB"), "<= 1024 MiB", verdict("peak_rss_mib")),
        ("bytes per ledger line", _fmt(results.get("bytes_per_line"), "B"), "<= 100 B", verdict("bytes_per_line")),
        (
            "measurement ingest via API",
            _fmt(results.get("alloc_ingest_values_per_s"), "values/s"),
            ">= 50,000",
            verdict("alloc_ingest_values_per_s"),
        ),
        ("allocation of the window", _fmt(results.get("alloc_seconds"), "s"), "<= 30 s", verdict("alloc_seconds")),
        ("allocation bookings/s", _fmt(results.get("alloc_bookings_per_s"), "bookings/s"), "", ""),
        ("SQL split baseline", _fmt(results.get("alloc_sql_baseline_rows_per_s"), "rows/s"), "", ""),
        ("allocation ratio (ours / SQL)", _fmt(results.get("alloc_ratio")), "", ""),
        (
            "allocation peak RSS",
            _fmt(results.get("alloc_peak_rss_mib"), "MiB"),
            "<= 1024 MiB",
            verdict("alloc_peak_rss_mib"),
        ),
        (
            "periodic run after one quarter-hour",
            _fmt(results.get("periodic_quarter_seconds"), "s"),
            "<= 1 s",
            verdict("periodic_quarter_seconds"),
        ),
        ("periodic run, nothing written", _fmt(results.get("periodic_unchanged_seconds"), "s"), "", ""),
        (
            "days marked by 2 bookings a month apart",
            _fmt(results.get("two_bookings_days_marked")),
            "",
            "",
        ),
        ("a write beside a settlement of its day", _fmt(results.get("write_during_settlement_ms"), "ms"), "", ""),
        (
            f"{results.get('parallel_days', '?')} days settled by 1 / 2 workers",
            f"{_fmt(results.get('parallel_1_worker_seconds'))} / {_fmt(results.get('parallel_2_worker_seconds'), 's')}",
            "",
            "",
        ),
        ("speed-up of 2 workers", _fmt(results.get("parallel_speedup")), ">= 1.5", verdict("parallel_speedup")),
        ("check_ledger", _fmt(results.get("check_ledger_seconds"), "s"), "<= 30 s", verdict("check_ledger_seconds")),
    ]
    machine = results.get("machine") or {}
    header = (
        f"BKM benchmark: {results.get('groups')} groups x {results.get('days')} days = "
        f"{_fmt(results.get('values'))} values; {machine.get('cores', '?')} cores, "
        f"{_fmt(machine.get('memory_mib'), 'MiB')}, PostgreSQL {machine.get('postgresql', '?')}"
    )
    if machine.get("load_average"):
        header += f"; load average {' '.join(str(load) for load in machine['load_average'])} at the start"
    site = (
        f"allocation site: {results.get('alloc_sources', '?')} sources + {results.get('alloc_consumers')} consumers "
        f"x {results.get('alloc_days')} days = {_fmt(results.get('alloc_values'))} measurements, "
        f"{_fmt(results.get('alloc_bookings'))} allocation bookings"
    )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [header, site, ""]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    for note in results.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
