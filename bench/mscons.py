"""The MSCONS import benchmark: one large interchange streamed from a file into PostgreSQL.

A month of quarter-hours for 200 metering points (about 595k values, one message per metering
point) is written to a temporary file, then imported three times, each in a fresh process so its
peak RSS is its own: reading alone (no database), the import, and the same file again (every value
unchanged). A baseline process that only sets up Django gives the RSS the others are compared to.

    make bench-mscons                  # or: python -m bench.mscons --points 200 --days 31
"""

import argparse
import datetime as dt
import multiprocessing
import os
import random
import resource
import tempfile
import time
from pathlib import Path

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bkm_bench_mscons"
TENANT = "bench-mscons"
START = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def point_id(number: int) -> str:
    return f"DE00BENCH{number:024d}"


def write_file(path: Path, *, points: int, days: int, seed: int) -> int:
    from allocation.mscons.writer import Reading, iter_interchange

    rng = random.Random(seed)
    quarters = days * 96

    def message(number: int):
        point = point_id(number)
        for q in range(quarters):
            yield Reading(point, START + dt.timedelta(minutes=15 * q), f"{rng.randrange(0, 2500) / 1000:.3f}")

    with path.open("wb") as handle:
        for chunk in iter_interchange(message(n) for n in range(points)):
            handle.write(chunk)
    return points * quarters


def compare_readers(path: Path, sample_bytes: int) -> tuple[int, float, float]:
    """Segments of the file's first ``sample_bytes`` read by pydifact's tokenizer and parser, and by ours.

    Returns (segments, pydifact seconds, our seconds); both must read the same segments.
    """
    from pydifact.control import Characters
    from pydifact.parser import Parser, TokenIterator
    from pydifact.tokenizer import Tokenizer

    from allocation.mscons.reader import SegmentSplitter

    with path.open("rb") as handle:
        head = handle.read(sample_bytes).decode("iso-8859-1")
    characters = Characters.from_str(head[:9])
    text = head[9:].lstrip()
    text = text[: text.rindex(characters.segment_terminator) + 1]
    began = time.perf_counter()
    theirs = list(
        Parser(characters=characters).convert_tokens_to_raw_segments(
            TokenIterator(Tokenizer().get_tokens(text, characters))
        )
    )
    middle = time.perf_counter()
    ours = list(SegmentSplitter(characters).segments([text]))
    ended = time.perf_counter()
    if ours != theirs:
        raise SystemExit("the segment splitter and pydifact read the sample differently")
    return len(ours), middle - began, ended - middle


def _peak_mib() -> float:
    """This process's peak RSS: VmHWM (reset by exec, unlike ru_maxrss, which keeps the parent's peak)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(task: str, path: str, queue) -> None:
    import django

    django.setup()
    from allocation.mscons.message import MsconsReader
    from allocation.mscons.services import file_source, mscons_import
    from balance_groups.models import Tenant

    tenant = Tenant.objects.get(code=TENANT)
    began = time.perf_counter()
    figures: dict = {}
    if task == "read":
        values = sum(1 for _ in MsconsReader(file_source(Path(path))()))
        figures = {"values": values}
    elif task in {"import", "repeat"}:
        report = mscons_import(tenant=tenant, actor=None, source=file_source(Path(path)), channel="command")
        figures = {
            "values": report.values,
            "created": report.created,
            "replaced": report.replaced,
            "unchanged": report.unchanged,
            "refused": len(report.rejected),
        }
    figures["seconds"] = time.perf_counter() - began
    figures["peak_rss_mib"] = _peak_mib()
    queue.put(figures)


def _in_fresh_process(task: str, path: Path) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(task, str(path), queue))
    process.start()
    figures = queue.get()
    process.join()
    if process.exitcode:
        raise SystemExit(f"the {task} process failed with exit code {process.exitcode}")
    return figures


def _prepare(points: int) -> None:
    import django

    from bench.runner import ensure_database

    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command

    from balance_groups.models import BalanceGroup, GroupKind, Tenant

    call_command("migrate", verbosity=0, interactive=False)
    call_command("flush", verbosity=0, interactive=False)
    tenant = Tenant.objects.create(code=TENANT, name="MSCONS benchmark")
    BalanceGroup.objects.bulk_create(
        BalanceGroup(
            tenant=tenant,
            code=f"METER-{n:03d}",
            name=f"Meter {n}",
            kind=GroupKind.CONSUMER,
            metering_point=point_id(n),
            valid_from=START - dt.timedelta(days=1),
        )
        for n in range(points)
    )
    from django.db import connections

    connections.close_all()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=200, help="metering points (one message each)")
    parser.add_argument("--days", type=int, default=31, help="days of quarter-hour values per metering point")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bkm.settings")
    if not os.environ.get("REDIS_URL"):
        raise SystemExit("set REDIS_URL: the follow-up allocation is queued for workers, not run inside the import")
    _prepare(args.points)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "month.edi"
        began = time.perf_counter()
        values = write_file(path, points=args.points, days=args.days, seed=args.seed)
        size_mib = path.stat().st_size / (1024 * 1024)
        print(
            f"interchange: {args.points} metering points x {args.days} days = {values:,} values, "
            f"{size_mib:.1f} MiB, written in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        segments, theirs, ours = compare_readers(path, 2 * 1024 * 1024)
        print(
            f"segments of the first 2 MiB ({segments:,}): pydifact's tokenizer and parser {theirs:.2f} s, "
            f"the segment splitter {ours:.2f} s ({theirs / ours:.1f}x), the same segments",
            flush=True,
        )
        baseline = _in_fresh_process("baseline", path)
        print(f"baseline (Django set up, nothing read): peak RSS {baseline['peak_rss_mib']:.0f} MiB", flush=True)
        for task, title in (("read", "read only"), ("import", "import"), ("repeat", "same file again")):
            figures = _in_fresh_process(task, path)
            rate = figures["values"] / figures["seconds"]
            counts = ", ".join(
                f"{k} {figures[k]:,}" for k in ("created", "replaced", "unchanged", "refused") if k in figures
            )
            peak, seconds = figures["peak_rss_mib"], figures["seconds"]
            print(
                f"{title:>16}: {seconds:6.1f} s  {rate:8,.0f} values/s  {size_mib / seconds:5.2f} MiB/s  "
                f"peak RSS {peak:.0f} MiB (+{peak - baseline['peak_rss_mib']:.0f} over baseline)"
                f"{'  ' + counts if counts else ''}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
