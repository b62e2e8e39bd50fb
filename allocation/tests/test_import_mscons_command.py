"""``manage.py import_mscons``: files and folders in, one line per file, an exit status a cron job can act on."""

import datetime as dt
import io
import re

import pytest
from django.core.management import CommandError, call_command

from allocation.management.commands import import_mscons
from allocation.models import Interchange, InterchangeStatus, Measurement
from allocation.mscons.writer import Reading, write_interchange
from allocation.tests.conftest import MP_APT, MP_PV
from balance_groups.factories import UserFactory
from core.testing import T0

Q = dt.timedelta(minutes=15)


def interchange(point=MP_PV, count=4, *, reference="REF0001", qualifier="220", **options) -> bytes:
    readings = [Reading(point, T0 + i * Q, "1.250", qualifier=qualifier) for i in range(count)]
    return write_interchange([readings], reference=reference, **options)


@pytest.fixture
def inbox(tmp_path, meters):
    """A mailbox's folder: two interchanges, one being written (hidden) and an archive subfolder."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "b-apt.edi").write_bytes(interchange(MP_APT, 3, reference="REF0002"))
    (folder / "a-pv.edi").write_bytes(interchange(MP_PV, 4, reference="REF0001"))
    (folder / ".c-partial.edi").write_bytes(b"UNA:+.? 'UNB+UNOC")
    (folder / "archive").mkdir()
    (folder / "archive" / "old.edi").write_bytes(interchange(MP_APT, 1, reference="REF0000"))
    return folder


class TTY(io.StringIO):
    def isatty(self):
        return True


def run(*args, tenant="sonnenhof", stderr=None, **options) -> tuple[str, str]:
    out, err = io.StringIO(), stderr or io.StringIO()
    call_command("import_mscons", *map(str, args), tenant=tenant, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def refused(*args, **options) -> tuple[CommandError, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_mscons", *map(str, args), stdout=out, stderr=io.StringIO(), **options)
    return caught.value, out.getvalue()


def test_a_folder_is_imported_file_by_file_in_name_order(inbox, meters):
    out, err = run(inbox)
    lines = out.splitlines()
    first, second = Interchange.objects.order_by("id")
    assert lines == [
        f"{inbox}/a-pv.edi: interchange #{first.pk}, reference REF0001: 1 message, 4 values: "
        "4 created, 0 replaced, 0 unchanged, 0 refused",
        f"{inbox}/b-apt.edi: interchange #{second.pk}, reference REF0002: 1 message, 3 values: "
        "3 created, 0 replaced, 0 unchanged, 0 refused",
        lines[2],
    ]
    assert re.fullmatch(r"2 files, 7 values: 7 created, 0 replaced, 0 unchanged, 0 refused \(\d+\.\d s\)", lines[2])
    assert err == ""  # off a terminal, a small file reports no progress
    assert Measurement.objects.filter(group=meters.pv).count() == 4
    assert Measurement.objects.filter(group=meters.apt).count() == 3  # not the archive's, not the hidden file's
    assert [(row.filename, row.channel, row.received_by, row.status) for row in (first, second)] == [
        ("a-pv.edi", "command", "system:import_mscons", InterchangeStatus.IMPORTED),
        ("b-apt.edi", "command", "system:import_mscons", InterchangeStatus.IMPORTED),
    ]
    assert first.original_bytes() == (inbox / "a-pv.edi").read_bytes()


def test_recursive_takes_the_subfolders_and_a_file_is_named_on_its_own(inbox, meters):
    out, _ = run(inbox, recursive=True)
    assert [line.split(":")[0] for line in out.splitlines()[:3]] == [
        f"{inbox}/a-pv.edi",
        f"{inbox}/archive/old.edi",
        f"{inbox}/b-apt.edi",
    ]
    named = (inbox / ".c-partial.edi", inbox / "a-pv.edi", inbox / "archive/../a-pv.edi")
    _, out = refused(*named, tenant="sonnenhof", dry_run=True)
    hidden, pv, total = out.splitlines()
    assert hidden.startswith(f"{inbox}/.c-partial.edi: refused as a whole")  # named on its own: read
    assert pv.startswith(f"{inbox}/a-pv.edi: dry run") and total.startswith("Dry run, nothing stored: 2 files")


def test_dry_run_stores_nothing_and_reports_what_it_would_do(inbox, meters):
    out, _ = run(inbox, dry_run=True)
    assert out.splitlines()[0] == (
        f"{inbox}/a-pv.edi: dry run, nothing stored, reference REF0001: 1 message, 4 values: "
        "4 created, 0 replaced, 0 unchanged, 0 refused"
    )
    assert out.splitlines()[-1].startswith("Dry run, nothing stored: 2 files, 7 values: 7 created")
    assert not Measurement.objects.exists() and not Interchange.objects.exists()


def test_a_refused_value_sets_exit_status_1_and_the_rest_is_imported(tmp_path, meters):
    mixed = write_interchange(
        [[Reading(MP_PV, T0, "1.000"), Reading(MP_PV, T0 + Q, "2.000", qualifier="187"), Reading(MP_APT, T0, "0.5")]]
    )
    (tmp_path / "mixed.edi").write_bytes(mixed)
    error, out = refused(tmp_path, tenant="sonnenhof", verbosity=2)
    assert error.returncode == 1
    assert str(error) == "Refused: 1 value, 0 files as a whole."
    summary, detail = out.splitlines()[:2]
    assert summary.endswith("3 values: 2 created, 0 replaced, 0 unchanged, 1 refused")
    assert re.fullmatch(r"  segment \d+ VALIDATION_ERROR: .*187.*", detail), detail
    assert Measurement.objects.count() == 2
    _, quiet = refused(tmp_path, tenant="sonnenhof", verbosity=0)  # a cron job's run: only what to look at
    (line,) = quiet.splitlines()
    assert "3 values: 0 created, 0 replaced, 2 unchanged, 1 refused; same bytes as interchange" in line


def test_a_file_refused_as_a_whole_is_reported_and_the_next_is_imported(tmp_path, meters):
    (tmp_path / "1-broken.edi").write_bytes(interchange(unt_offset=1))
    (tmp_path / "2-good.edi").write_bytes(interchange(MP_APT, 2, reference="REF0002"))
    error, out = refused(tmp_path, tenant="sonnenhof")
    assert error.returncode == 1
    assert str(error) == "Refused: 0 values, 1 file as a whole."
    broken, good, total = out.splitlines()
    assert broken.startswith(f"{tmp_path}/1-broken.edi: refused as a whole: Segment ") and "UNT counts" in broken
    assert good.endswith("2 values: 2 created, 0 replaced, 0 unchanged, 0 refused")
    assert total.startswith("2 files (1 refused as a whole), 2 values: 2 created")
    assert Measurement.objects.filter(group=meters.apt).count() == 2
    assert sorted(Interchange.objects.values_list("filename", "status")) == [
        ("1-broken.edi", InterchangeStatus.REFUSED),
        ("2-good.edi", InterchangeStatus.IMPORTED),
    ]


def test_the_same_folder_again_imports_nothing_anew(inbox, meters):
    run(inbox)
    first, second = Interchange.objects.order_by("id")
    out, _ = run(inbox)  # exit status 0: no CommandError
    lines = out.splitlines()
    assert lines[0].endswith(
        f"4 values: 0 created, 0 replaced, 4 unchanged, 0 refused; same bytes as interchange #{first.pk}: "
        "imported again without effect"
    )
    assert lines[1].endswith(f"same bytes as interchange #{second.pk}: imported again without effect")
    assert lines[2].startswith("2 files, 7 values: 0 created, 0 replaced, 7 unchanged, 0 refused")
    assert Measurement.objects.count() == 7
    assert Interchange.objects.filter(duplicate_of__isnull=False).count() == 2  # every arrival is recorded


def test_tenant_by_name_and_user_as_actor(inbox, tenant, operator):
    run(inbox / "a-pv.edi", tenant="sonnenhof", user="operator", verbosity=0)
    run(inbox / "b-apt.edi", tenant="Sonnenhof", verbosity=0)
    assert list(Interchange.objects.order_by("id").values_list("tenant", "received_by")) == [
        (tenant.pk, "user:operator"),
        (tenant.pk, "system:import_mscons"),
    ]


@pytest.mark.parametrize(
    ("arguments", "options", "message"),
    [
        (["{inbox}"], {"tenant": "nobody"}, "No tenant with the code or name 'nobody'."),
        (["{inbox}/missing.edi"], {}, "/missing.edi: no such file or folder."),
        (["{inbox}"], {"user": "ghost"}, "No active user 'ghost'."),
        (["{inbox}"], {"user": "stranger"}, "User 'stranger' does not belong to tenant sonnenhof."),
    ],
    ids=["unknown-tenant", "missing-path", "unknown-user", "user-of-another-tenant"],
)
def test_a_bad_argument_is_exit_status_2_before_anything_is_imported(inbox, other_tenant, arguments, options, message):
    UserFactory(username="stranger", tenant=other_tenant)
    options.setdefault("tenant", "sonnenhof")
    error, _ = refused(*(argument.format(inbox=inbox) for argument in arguments), **options)
    assert error.returncode == 2
    assert str(error).endswith(message)
    assert not Interchange.objects.exists()


def test_progress_is_a_live_line_on_a_terminal_and_a_line_per_tenth_in_a_log(inbox, meters, monkeypatch):
    _, err = run(inbox / "a-pv.edi", stderr=TTY(), dry_run=True)
    assert err.startswith(f"\r{inbox}/a-pv.edi [") and "100% of" in err and err.endswith("\r\033[K")
    assert "\n" not in err
    monkeypatch.setattr(import_mscons, "LOG_PROGRESS_FROM", 0)
    _, err = run(inbox / "a-pv.edi", dry_run=True)
    size = (inbox / "a-pv.edi").stat().st_size
    assert err == f"{inbox}/a-pv.edi: 100% of {size} bytes read\n"  # one read covers it all
    _, err = run(inbox / "a-pv.edi", dry_run=True, verbosity=0)
    assert err == ""


def test_help_documents_every_option_and_the_exit_status():
    parser = import_mscons.Command().create_parser("manage.py", "import_mscons")
    text = parser.format_help()
    assert "Exit status 0: nothing refused" in text and "cron" in text
    own = [action for action in parser._actions if action.dest in {"paths", "tenant", "user", "dry_run", "recursive"}]
    assert len(own) == 5 and all(action.help for action in own)
