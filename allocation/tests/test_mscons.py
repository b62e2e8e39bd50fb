"""MSCONS interchanges in: the reader, the value rules, the import and its record (DOMAIN.md, "MSCONS")."""

import datetime as dt

import pytest

from allocation.models import Interchange, InterchangeStatus, Measurement
from allocation.mscons.reader import InterchangeError
from allocation.mscons.services import bytes_source, mscons_import, mscons_import_previewed
from allocation.mscons.writer import Reading, write_interchange
from allocation.tests.conftest import MP_APT, MP_PV
from core.errors import InvalidInput
from core.testing import T0
from transactions.models import ClarificationCase, ClarificationReason, ClarificationStatus
from transactions.services import clarification_resolve

MP_NEW = "DE0009999999990000000000000000009"
Q = dt.timedelta(minutes=15)


@pytest.fixture
def send(tenant, operator):
    def run(data: bytes, **options):
        options.setdefault("channel", "api")
        return mscons_import(tenant=tenant, actor=operator, source=bytes_source(data), **options)

    return run


def readings(point=MP_PV, count=4, start=T0, quantity="1.250", **fields):
    return [Reading(point, start + i * Q, quantity, **fields) for i in range(count)]


def stored(group):
    return list(
        Measurement.objects.filter(group=group).order_by("quarter_start").values_list("energy_wh", "quality", "status")
    )


def refused(report):
    return [(row["segment"], row["code"], row["detail"]) for row in report.rejected]


# --- the envelope and the syntax -------------------------------------------------------------------


@pytest.mark.parametrize("una", [":+.? '", ":+,? '", None], ids=["decimal-point", "decimal-comma", "no-UNA"])
def test_decimal_mark_of_the_interchange_is_read(meters, send, una):
    report = send(write_interchange([readings(quantity="1.234")], una=una))
    assert (report.created, report.rejected) == (4, [])
    assert stored(meters.pv) == [(1234, "measured", "final")] * 4


def test_other_separators_and_released_characters(meters, send):
    """UNA may name other separators; a released separator inside a value is text, not structure."""
    data = write_interchange([readings(count=2)], una="|*.# !", name="Müller *Netz* | Köln!#")
    report = send(data)
    assert (report.created, report.messages, report.rejected) == (2, 1, [])


def test_escaped_characters_in_the_default_syntax(meters, send):
    data = write_interchange([readings(count=1)], name="Meier+Söhne: 'Strom'", reference="A+B:C'D?E")
    assert b"Meier?+S" in data and b"?:" in data and b"?'Strom?'" in data and b"+A?+B?:C?'D??E'" in data
    report = send(data)
    assert (report.created, report.reference) == (1, "A+B:C'D?E")


def test_latin1_interchange_with_umlauts(meters, send):
    data = write_interchange([readings(count=1)], name="Stadtwerke Düsseldorf Ölmühle")
    assert "ü".encode("iso-8859-1") in data
    assert send(data).created == 1


def test_utf8_declared_as_unoc_is_read_as_latin1_and_utf8_as_unow(meters, send):
    data = write_interchange([readings(count=1)], syntax="UNOW", encoding="utf-8", name="Grün")
    assert send(data).created == 1


def test_bytes_not_in_the_declared_character_set_refuse_the_file(meters, send):
    data = write_interchange([readings(count=1)], syntax="UNOB", encoding="utf-8", name="Grün")
    with pytest.raises(InterchangeError, match="not ASCII"):
        send(data)
    assert not Measurement.objects.exists()


def test_several_messages_and_metering_locations(meters, send):
    data = write_interchange([readings(MP_PV, 2) + readings(MP_APT, 3), readings(MP_APT, 2, start=T0 + 2 * Q)])
    report = send(data)
    assert (report.messages, report.values, report.created, report.replaced) == (2, 7, 6, 0)
    assert report.unchanged == 1  # APT 03:45 is sent by both messages with the same value
    assert len(stored(meters.apt)) == 4


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"unt_offset": 1}, "UNT counts"),
        ({"unz_reference": "OTHER"}, "UNZ reference"),
    ],
    ids=["wrong-UNT-count", "UNZ-reference"],
)
def test_envelope_faults_refuse_the_whole_interchange(meters, send, options, match):
    with pytest.raises(InterchangeError, match=match):
        send(write_interchange([readings()], **options))
    assert not Measurement.objects.exists()
    row = Interchange.objects.get()
    assert row.status == InterchangeStatus.REFUSED and match in row.error


def test_unt_reference_must_match_unh(meters, send):
    data = write_interchange([readings()]).replace(b"UNT+", b"UNT+").replace(b"+1'\nUNZ", b"+7'\nUNZ")
    with pytest.raises(InterchangeError, match="UNT reference '7'"):
        send(data)


def test_truncated_file(meters, send):
    data = write_interchange([readings(count=8)])
    for cut in (len(data) // 2, len(data) - 5):
        with pytest.raises(InterchangeError, match="truncated"):
            send(data[:cut])
    assert not Measurement.objects.exists()


def test_another_message_type_is_no_mscons_interchange(meters, send):
    data = write_interchange([readings()]).replace(b"MSCONS:D:04B", b"UTILMD:D:11A")
    with pytest.raises(InterchangeError, match="UTILMD, not MSCONS"):
        send(data)


@pytest.mark.parametrize("data", [b"", b"hello world", b'{"measurements": []}', b"UNB+XXXX:3+a+b+1:1+R'"])
def test_what_is_no_interchange_at_all(meters, send, data):
    with pytest.raises(InterchangeError):
        send(data)


# --- the values ----------------------------------------------------------------------------------


def test_every_qualifier(meters, send):
    data = write_interchange(
        [
            [
                Reading(MP_PV, T0, "1.000", qualifier="220"),
                Reading(MP_PV, T0 + Q, "2.000", qualifier="67"),
                Reading(MP_PV, T0 + 2 * Q, "3.000", qualifier="201"),
                Reading(MP_PV, T0 + 3 * Q, "4.000", qualifier="Z18"),
                Reading(MP_PV, T0 + 4 * Q, "5.000", qualifier="187"),
                Reading(MP_PV, T0 + 5 * Q, "6.000", qualifier="20"),
                Reading(MP_PV, T0 + 6 * Q, "7.000", qualifier="46"),
            ]
        ]
    )
    report = send(data)
    assert stored(meters.pv) == [
        (1000, "measured", "final"),
        (2000, "substitute", "provisional"),
        (3000, "estimated", "provisional"),
        (4000, "estimated", "provisional"),
    ]
    details = [detail for _, _, detail in refused(report)]
    assert "forecast" in details[0] and "unusable" in details[1] and "'46'" in details[2]
    assert [code for _, code, _ in refused(report)] == ["VALIDATION_ERROR"] * 3


@pytest.mark.parametrize(
    ("quantity", "unit", "expected"),
    [
        ("1.234", "KWH", 1234),
        ("0.001", "KWH", 1),
        ("12", "KWH", 12000),
        ("1.2340", "KWH", 1234),
        ("0", "KWH", 0),
        ("815", "WH", 815),
        ("815.000", "WH", 815),
    ],
)
def test_energy_units_to_whole_wh(meters, send, quantity, unit, expected):
    assert send(write_interchange([readings(count=1, quantity=quantity, unit=unit)])).created == 1
    assert stored(meters.pv) == [(expected, "measured", "final")]


@pytest.mark.parametrize(
    ("quantity", "unit", "match"),
    [
        ("1.2345", "KWH", "not a whole number of Wh"),
        ("815.5", "WH", "not a whole number of Wh"),
        ("1.000", "KWT", "power, not energy"),
        ("1.000", None, "no unit"),
        ("1.000", "M3", "not an energy unit"),
        ("-1.000", "KWH", "negative"),
        ("1,5", "KWH", "decimal mark"),
        ("1e3", "KWH", "not a number"),
    ],
)
def test_values_that_are_refused_never_rounded(meters, send, quantity, unit, match):
    report = send(
        write_interchange([[*readings(count=2, quantity="1.000"), Reading(MP_PV, T0 + 5 * Q, quantity, unit=unit)]])
    )
    assert report.created == 2
    [(segment, code, detail)] = refused(report)
    assert match in detail and code == "VALIDATION_ERROR"
    assert report.rejected[0]["text"].startswith("QTY+220:") and "DTM+163:" in report.rejected[0]["text"]
    assert segment > 0


def test_segment_position_is_the_line_of_a_one_segment_per_line_file(meters, send):
    data = write_interchange([[Reading(MP_PV, T0, "1.000", unit="KWT")]])
    lines = data.decode("iso-8859-1").splitlines()
    [row] = send(data).rejected
    assert lines[row["segment"] - 1] == row["text"].split("'")[0] + "'"


@pytest.mark.parametrize(
    ("reading", "match"),
    [
        (Reading(MP_PV, T0, "1.000", minutes=60), "60 minutes"),
        (Reading(MP_PV, T0, "1.000", minutes=5), "5 minutes"),
        (Reading(MP_PV, T0, "1.000", offset_hours=None, date_format="203"), "no UTC offset"),
        (Reading(MP_PV, T0, "1.000", offset_hours=None), "no UTC offset"),
        (Reading(MP_PV, T0, "1.000", date_format="102"), "format 102"),
        (Reading(MP_PV, T0 + dt.timedelta(minutes=5), "1.000"), "quarter-hour boundary"),
    ],
    ids=["hour", "five-minutes", "format-203", "303-without-offset", "format-102", "misaligned"],
)
def test_intervals_and_times(meters, send, reading, match):
    [row] = send(write_interchange([[reading]])).rejected
    assert match in row["detail"]


def test_local_offsets_are_converted_to_utc(meters, send):
    report = send(write_interchange([[Reading(MP_PV, T0, "1.000", offset_hours=1)]]))
    assert report.created == 1
    assert Measurement.objects.get().quarter_start == T0
    assert b"202601010100?+01" in write_interchange([[Reading(MP_PV, T0, "1.000", offset_hours=1)]])


def test_unknown_metering_point_refuses_its_values_and_keeps_one_case(meters, send, make_group, operator):
    data = write_interchange([readings(MP_PV, 2) + readings(MP_NEW, 3)])
    report = send(data)
    assert report.created == 2
    assert [code for _, code, _ in refused(report)] == ["UNKNOWN_METERING_POINT"] * 3
    case = ClarificationCase.objects.get()
    assert case.reason == ClarificationReason.UNKNOWN_METERING_POINT
    assert case.payload["metering_point"] == MP_NEW and case.payload["values"] == 3
    assert case.origin["interchange"] == report.interchange.pk and case.origin["text"] == f"LOC+172+{MP_NEW}'"
    assert data.decode("iso-8859-1").splitlines()[case.origin["segment"] - 1] == case.origin["text"]

    new = make_group("APT-9", "consumer", metering_point=MP_NEW)
    clarification_resolve(actor=operator, case=case, action="rebook", note="meter installed")
    assert stored(new) == [(1250, "measured", "final")] * 3
    case.refresh_from_db()
    assert case.status == ClarificationStatus.REBOOKED


def test_repeated_import_is_all_unchanged_and_adds_no_case(meters, send):
    data = write_interchange([readings(MP_PV, 4) + readings(MP_NEW, 1)])
    first = send(data)
    again = send(data)
    assert (again.created, again.replaced, again.unchanged) == (0, 0, 4)
    assert again.duplicate_of == first.interchange
    assert ClarificationCase.objects.count() == 1
    assert again.interchange.content is None and again.interchange.original_bytes() == data


def test_corrected_interchange_replaces_substitute_values_with_true_values(meters, send):
    send(write_interchange([readings(count=4, quantity="0.900", qualifier="67")]))
    assert stored(meters.pv) == [(900, "substitute", "provisional")] * 4
    report = send(write_interchange([readings(count=4, quantity="1.000")], reference="REF0002"))
    assert (report.created, report.replaced) == (0, 4)
    assert stored(meters.pv) == [(1000, "measured", "final")] * 4


def test_final_value_sent_again_with_another_value_is_a_case_with_its_segment(meters, send):
    send(write_interchange([readings(count=2, quantity="1.000")]))
    report = send(write_interchange([readings(count=2, quantity="1.100")], reference="REF0003"))
    assert [code for _, code, _ in refused(report)] == ["MEASUREMENT_FINAL"] * 2
    cases = ClarificationCase.objects.order_by("created_at")
    assert [case.reason for case in cases] == [ClarificationReason.MEASUREMENT_FINAL] * 2
    assert cases[0].origin["segment"] == report.rejected[0]["segment"]
    assert cases[0].origin["text"].startswith("QTY+220:1.100:KWH'")


def test_closed_period_values_are_cases(meters, send, tenant):
    meters.pv.closed_until = T0 + 2 * Q
    meters.pv.save()
    report = send(write_interchange([readings(count=4)]))
    assert report.created == 2
    assert [code for _, code, _ in refused(report)] == ["PERIOD_CLOSED"] * 2
    assert ClarificationCase.objects.filter(reason=ClarificationReason.PERIOD_CLOSED).count() == 2


def test_dry_run_writes_nothing_and_a_kept_preview_imports_later(meters, send, operator):
    data = write_interchange([readings(count=3)])
    assert send(data, dry_run=True).created == 3
    assert not Measurement.objects.exists() and not Interchange.objects.exists()
    preview = send(data, dry_run=True, keep_preview=True, channel="dashboard", filename="day.edi")
    assert preview.interchange.status == InterchangeStatus.PREVIEWED
    assert preview.days == [
        {
            "metering_point": MP_PV,
            "group": "PV",
            "day": "2026-01-01",
            "values": 3,
            "energy_wh": 3750,
            "qualities": {"measured": 3},
        }
    ]
    assert not Measurement.objects.exists()
    report = mscons_import_previewed(interchange=preview.interchange, actor=operator)
    assert report.created == 3 and report.interchange.status == InterchangeStatus.IMPORTED
    assert list(Interchange.objects.values_list("pk", "status")) == [(preview.interchange.pk, "imported")]
    with pytest.raises(InvalidInput, match="only a preview is imported"):
        mscons_import_previewed(interchange=preview.interchange, actor=operator)


def without_lines(data: bytes, drop) -> bytes:
    """The one-message interchange without the lines ``drop(line)`` picks, its UNT count kept right."""
    lines = data.decode("iso-8859-1").splitlines()
    kept = [line for line in lines if not drop(line)]
    unt = next(i for i, line in enumerate(kept) if line.startswith("UNT+"))
    count, reference = kept[unt][4:-1].split("+")
    kept[unt] = f"UNT+{int(count) - (len(lines) - len(kept))}+{reference}'"
    return "\n".join(kept).encode("iso-8859-1")


def test_qty_outside_a_location_and_without_interval(meters, send):
    data = without_lines(write_interchange([readings(count=1)]), lambda line: line.startswith("LOC+"))
    assert "before any metering location" in send(data).rejected[0]["detail"]
    first_end = write_interchange([readings(count=2)]).decode("iso-8859-1").split("DTM+164", 1)[1].split("'", 1)[0]
    data = without_lines(write_interchange([readings(count=2)]), lambda line: line == f"DTM+164{first_end}'")
    report = send(data)
    assert report.created == 1 and "No interval" in report.rejected[0]["detail"]


def test_a_corrected_interchange_reallocates_and_finalizes(site, make_scheme, send):
    """Substitute values allocate provisionally; the true values that replace them allocate final."""
    from allocation.tests.test_engine import flows
    from core.integrity import ledger_violations

    points = {}
    for number, group in enumerate((site.pv, site.apt1, site.apt2), start=1):
        group.metering_point = points[group.code] = f"DE000000000000000000000000000000{number}"
        group.save()
    make_scheme("dynamic", sources=[site.pv])

    def interchange(values: dict, qualifier: str, reference: str) -> bytes:
        return write_interchange(
            [[Reading(points[code], T0, quantity, qualifier=qualifier) for code, quantity in values.items()]],
            reference=reference,
        )

    send(interchange({"PV": "0.100", "APT-1": "0.050", "APT-2": "0.050"}, "67", "R1"))
    assert flows()[("PV", "APT-1", T0)] == (50, "provisional")
    report = send(interchange({"PV": "0.080", "APT-1": "0.060", "APT-2": "0.040"}, "220", "R2"))
    assert (report.replaced, report.rejected) == (3, [])
    assert flows() == {
        ("PV", "APT-1", T0): (48, "final"),
        ("PV", "APT-2", T0): (32, "final"),
        ("GRID", "APT-1", T0): (12, "final"),
        ("GRID", "APT-2", T0): (8, "final"),
    }
    assert not list(ledger_violations())


def test_a_date_that_does_not_exist_is_refused(meters, send):
    data = write_interchange([readings(count=1)]).replace(b"DTM+163:202601010000", b"DTM+163:202613010000")
    [row] = send(data).rejected
    assert "is not a date and time" in row["detail"] and "202613010000+00" in row["detail"]
