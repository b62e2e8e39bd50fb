"""``manage.py import_mscons PATH [PATH ...] --tenant CODE``: MSCONS interchanges from files, e.g. a mailbox's."""

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from allocation.mscons.reader import InterchangeError
from allocation.mscons.services import MsconsReport, file_source, mscons_import
from balance_groups.models import Tenant, User
from balance_groups.selectors import tenant_by_code
from core.errors import NotFound

ACTOR = "system:import_mscons"
CHANNEL = "command"
USAGE_ERROR = 2  # a bad path, tenant or user: nothing was imported
REFUSED = 1  # a value or a whole file was refused; the rest was imported
LOG_PROGRESS_FROM = 10 << 20  # bytes: off a terminal, only a file this large reports its progress
BAR_WIDTH = 30

HELP = """\
Import MSCONS interchanges (EDIFACT metering messages) from files, through the same import as the
API and the dashboard: values for the tenant's groups by metering point, replaced, unchanged or
refused by the same rules, every interchange kept with its bytes and its result (admin:
Interchanges).

Each PATH is a file or a folder. Of a folder, its regular files are imported in the order of
their names (with --recursive, those of its subfolders too); hidden files (.name) are skipped.
One line per file reports what its import did; a file refused as a whole (not an MSCONS
interchange, a broken envelope) is reported and the command goes on with the next file.

As a cron job or the target of a mailbox fetcher:
  - Exit status 0: nothing refused. 1: a value or a whole file was refused (everything else was
    imported; the refusals are on the interchange in the admin and, with -v 2, printed here).
    2: a bad PATH, --tenant or --user; nothing was imported.
  - Importing the same file again is safe: the same bytes are recorded and import nothing anew.
    Files are never moved or deleted; archive them after the run (e.g. on exit status 0).
  - Let the fetcher write a file under a hidden name and rename it when complete: a run that
    starts meanwhile skips it instead of reading half a file.
  - -v 0 prints only files with refusals, so cron mails only when there is something to look
    at; progress goes to stderr, as a live line on a terminal only.

Example (crontab):
  */15 * * * * cd /srv/bkm && .venv/bin/python manage.py import_mscons /srv/mscons/inbox \\
      --tenant sonnenhof -v 0
"""


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's order of the options, the description's paragraphs and lists as written."""


@dataclass
class _Totals:
    files: int = 0
    files_refused: int = 0
    values: int = 0
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    refused: int = 0

    def add(self, report: MsconsReport) -> None:
        self.values += report.values
        self.created += report.created
        self.replaced += report.replaced
        self.unchanged += report.unchanged
        self.refused += len(report.rejected)


class _Progress:
    """The bytes read of one file on stderr: a live bar on a terminal, else a line per tenth of a large file."""

    def __init__(self, stream, label: str, total: int):
        self.stream, self.label, self.total = stream, label, max(total, 1)
        self.live = stream.isatty()
        self.quiet = not self.live and total < LOG_PROGRESS_FROM
        self.done = self.shown = 0

    def __call__(self, nbytes: int) -> None:
        self.done += nbytes
        if self.quiet:
            return
        if self.live:
            percent = min(100, self.done * 100 // self.total)
            if percent != self.shown:
                self.shown = percent
                bar = "#" * (percent * BAR_WIDTH // 100)
                self._write(f"\r{self.label} [{bar:<{BAR_WIDTH}}] {percent:3d}% of {_size(self.total)}", ending="")
        else:
            tenth = min(10, self.done * 10 // self.total)
            if tenth > self.shown:
                self.shown = tenth
                self._write(f"{self.label}: {tenth * 10}% of {_size(self.total)} read")

    def close(self) -> None:
        if self.live and self.shown:
            self._write("\r\033[K", ending="")  # the summary line takes the bar's place

    def _write(self, text: str, ending: str = "\n") -> None:
        self.stream.write(text, style_func=str, ending=ending)  # progress is not an error: no colour
        self.stream.flush()


def _size(nbytes: int) -> str:
    return f"{nbytes / (1 << 20):.1f} MiB" if nbytes >= 1 << 20 else f"{nbytes} bytes"


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="An interchange file, or a folder of them.")
        parser.add_argument(
            "--tenant",
            required=True,
            metavar="CODE_OR_NAME",
            help="The tenant the values are for: its code (e.g. sonnenhof) or its name.",
        )
        parser.add_argument(
            "--user",
            metavar="USERNAME",
            help=f"Record the import as this user's (a user of the tenant, or a superuser); default: {ACTOR}.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Read and check everything and report what would be imported; store nothing, not even the files.",
        )
        parser.add_argument(
            "--recursive", action="store_true", help="Of a folder, import the files of its subfolders too."
        )

    def handle(self, *args, paths, tenant, user=None, dry_run=False, recursive=False, verbosity=1, **options):
        tenant = self._tenant(tenant)
        actor = self._actor(user, tenant) if user else ACTOR
        files = self._files(paths, recursive)
        began = time.monotonic()
        totals = _Totals()
        for path in files:
            totals.files += 1
            self._import(path, tenant=tenant, actor=actor, dry_run=dry_run, verbosity=verbosity, totals=totals)
        if verbosity >= 1:
            self._total(totals, dry_run=dry_run, seconds=time.monotonic() - began)
        if totals.refused or totals.files_refused:
            raise CommandError(
                f"Refused: {_plural(totals.refused, 'value')}, {_plural(totals.files_refused, 'file')} as a whole.",
                returncode=REFUSED,
            )

    def _tenant(self, key: str) -> Tenant:
        try:
            return tenant_by_code(key)
        except NotFound:
            pass
        named = list(Tenant.objects.filter(name__iexact=key)[:2])
        if len(named) > 1:
            raise CommandError(f"Several tenants are named {key!r}; give the tenant's code.", returncode=USAGE_ERROR)
        if not named:
            raise CommandError(f"No tenant with the code or name {key!r}.", returncode=USAGE_ERROR)
        return named[0]

    def _actor(self, username: str, tenant: Tenant) -> User:
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.", returncode=USAGE_ERROR)
        if not user.is_superuser and user.tenant_id != tenant.pk:
            raise CommandError(f"User {username!r} does not belong to tenant {tenant.code}.", returncode=USAGE_ERROR)
        return user

    def _files(self, paths: list[str], recursive: bool) -> list[Path]:
        """Every file to import, in order, each once; checked before the first is imported."""
        found, seen = [], set()
        for given in paths:
            path = Path(given)
            try:
                if path.is_dir():
                    entries = path.rglob("*") if recursive else path.iterdir()
                    files = sorted(
                        (entry for entry in entries if entry.is_file() and not _hidden(entry.relative_to(path))),
                        key=lambda entry, folder=path: entry.relative_to(folder).parts,
                    )
                elif path.is_file():
                    files = [path]
                elif path.exists():
                    raise CommandError(f"{given}: neither a regular file nor a folder.", returncode=USAGE_ERROR)
                else:
                    raise CommandError(f"{given}: no such file or folder.", returncode=USAGE_ERROR)
            except OSError as error:
                raise CommandError(f"{given}: {error.strerror or error}.", returncode=USAGE_ERROR) from error
            for file in files:
                if (key := file.resolve()) not in seen:
                    seen.add(key)
                    found.append(file)
        return found

    def _import(self, path: Path, *, tenant, actor, dry_run: bool, verbosity: int, totals: _Totals) -> None:
        progress = None
        try:
            if verbosity >= 1:
                progress = _Progress(self.stderr, str(path), path.stat().st_size)
            report = mscons_import(
                tenant=tenant,
                actor=actor,
                source=file_source(path),
                channel=CHANNEL,
                filename=path.name,
                dry_run=dry_run,
                on_progress=progress,
            )
        except InterchangeError as error:
            self._refused_file(path, error.detail, progress, totals)
            return
        except OSError as error:  # vanished or unreadable since it was listed
            self._refused_file(path, f"not readable: {error.strerror or error}", progress, totals)
            return
        if progress:
            progress.close()
        totals.add(report)
        if verbosity >= 1 or report.rejected:
            self.stdout.write(self._summary(path, report))
        if verbosity >= 2:
            for row in report.rejected:
                self.stdout.write(f"  segment {row['segment']} {row['code']}: {row['detail']}")

    def _refused_file(self, path: Path, reason: str, progress: _Progress | None, totals: _Totals) -> None:
        if progress:
            progress.close()
        totals.files_refused += 1
        self.stdout.write(self.style.ERROR(f"{path}: refused as a whole: {reason}"))

    def _summary(self, path: Path, report: MsconsReport) -> str:
        which = "dry run, nothing stored" if report.dry_run else f"interchange #{report.interchange.pk}"
        line = (
            f"{path}: {which}, reference {report.reference or '-'}: {_plural(report.messages, 'message')}, "
            f"{_plural(report.values, 'value')}: {report.created} created, {report.replaced} replaced, "
            f"{report.unchanged} unchanged, {len(report.rejected)} refused"
        )
        if report.duplicate_of:
            line += f"; same bytes as interchange #{report.duplicate_of.pk}: imported again without effect"
        return self.style.WARNING(line) if report.rejected else line

    def _total(self, totals: _Totals, *, dry_run: bool, seconds: float) -> None:
        files = _plural(totals.files, "file")
        if totals.files_refused:
            files += f" ({totals.files_refused} refused as a whole)"
        line = (
            f"{'Dry run, nothing stored: ' if dry_run else ''}{files}, {_plural(totals.values, 'value')}: "
            f"{totals.created} created, {totals.replaced} replaced, {totals.unchanged} unchanged, "
            f"{totals.refused} refused ({seconds:.1f} s)"
        )
        clean = not (totals.refused or totals.files_refused)
        self.stdout.write(self.style.SUCCESS(line) if clean else line)
