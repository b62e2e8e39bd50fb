"""``POST /api/v1/measurements/mscons``: the interchange as the body, the bulk summary with segment positions."""

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocation.models import Interchange, Measurement
from allocation.mscons.writer import Reading, write_interchange
from allocation.serializers import MSCONS_EXAMPLE
from core.testing import T0
from transactions.models import ClarificationCase

URL = "/api/v1/measurements/mscons"
MP = "DE0001234567890000000000000000001"
Q = dt.timedelta(minutes=15)


@pytest.fixture
def pv(make_group):
    return make_group("PV", "source", metering_point=MP)


def interchange(count=4, quantity="0.500", **options) -> bytes:
    return write_interchange([[Reading(MP, T0 + i * Q, quantity) for i in range(count)]], **options)


def post(api, body: bytes, content_type="application/edifact", query=""):
    return api.generic("POST", URL + query, body, content_type=content_type)


@pytest.mark.parametrize("content_type", ["application/edifact", "text/plain", "text/plain; charset=utf-8"])
def test_an_interchange_is_stored_and_summarised(api, pv, content_type):
    response = post(api, interchange(), content_type)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["replaced"], body["unchanged"], body["rejected"]) == (4, 0, 0, [])
    assert body["interchange"]["reference"] == "REF0001" and body["interchange"]["values"] == 4
    assert Interchange.objects.get().pk == body["interchange"]["id"]
    assert Measurement.objects.filter(group=pv).count() == 4


def test_rejections_carry_the_segment_and_its_text(api, pv):
    data = write_interchange(
        [[Reading(MP, T0, "1.000"), Reading(MP, T0 + Q, "1.0005"), Reading("DE-UNKNOWN", T0, "1")]]
    )
    body = post(api, data).json()
    assert body["created"] == 1
    assert [(row["code"], row["segment"] > 0, "index" in row) for row in body["rejected"]] == [
        ("VALIDATION_ERROR", True, False),
        ("UNKNOWN_METERING_POINT", True, False),
    ]
    assert body["rejected"][0]["text"].startswith("QTY+220:1.0005:KWH'")
    assert ClarificationCase.objects.count() == 1


def test_a_repeat_is_all_unchanged(api, pv):
    first = post(api, interchange()).json()
    again = post(api, interchange()).json()
    assert (again["created"], again["unchanged"]) == (0, 4)
    assert again["interchange"]["duplicate_of"] == first["interchange"]["id"]


def test_dry_run_stores_and_keeps_nothing(api, pv):
    body = post(api, interchange(), query="?dry_run=true").json()
    assert body["created"] == 4 and body["interchange"]["id"] is None
    assert not Measurement.objects.exists() and not Interchange.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not edifact",
        interchange(unt_offset=2),
        interchange()[:-40],
        interchange().replace(b"MSCONS:D", b"ORDERS:D"),
        b"UNA:+.? 'UNB+UNOB:3+a+b+1:1+R'" + "Ä".encode(),
    ],
    ids=["empty", "text", "unt-count", "truncated", "orders", "bad-bytes"],
)
def test_what_is_no_readable_interchange_is_400_and_nothing_stored(api, pv, body):
    response = post(api, body)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "VALIDATION_ERROR"
    assert not Measurement.objects.exists()


def test_json_is_not_an_interchange(api, pv):
    response = api.post(URL, {"measurements": []}, format="json")
    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_read_only_and_anonymous_clients_are_refused(readonly_api, anon, pv):
    assert post(readonly_api, interchange()).status_code == 403
    assert post(anon, interchange()).status_code == 401
    assert not Measurement.objects.exists()


def test_another_tenants_metering_point_is_unknown_here(other_api, pv):
    body = post(other_api, interchange()).json()
    assert [row["code"] for row in body["rejected"]] == ["UNKNOWN_METERING_POINT"] * 4
    assert not Measurement.objects.exists()


def test_a_body_over_the_limit_is_413(api, pv, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    assert post(api, interchange()).status_code == 413


CODES = {"VALIDATION_ERROR", "INVALID_TIME_ALIGNMENT", "PERIOD_CLOSED", "MEASUREMENT_FINAL", "UNKNOWN_METERING_POINT"}
SEED = write_interchange(
    [
        [Reading(MP, T0 + i * Q, "0.250") for i in range(3)]
        + [Reading("DE-OTHER", T0, "1.5", qualifier="67"), Reading(MP, T0 + 4 * Q, "1", unit="WH", offset_hours=1)],
        [Reading(MP, T0 + 5 * Q, "2.000", qualifier="Z18")],
    ]
)
mutation = st.tuples(
    st.sampled_from(["delete", "insert", "replace"]),
    st.integers(0, len(SEED)),
    st.integers(1, 12),
    st.sampled_from(
        [b"+", b":", b"'", b"?", b"\n", b"\x00", b"\xe9", b"\xc3", b"A", b"9", b".", b",", b"UNH+9+MSCONS'"]
    ),
)


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(mutations=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_interchanges_never_cause_a_5xx(api, pv, mutations):
    cache.clear()  # the throttle counts every example; this is about the answers, not the rate
    data = bytearray(SEED)
    for kind, at, size, text in mutations:
        if kind == "delete":
            del data[at : at + size]
        elif kind == "insert":
            data[at:at] = text
        else:
            data[at : at + len(text)] = text
    response = post(api, bytes(data))
    assert response.status_code in (200, 400), response.content[:300]
    body = response.json()
    if response.status_code == 400:
        assert body["code"] == "VALIDATION_ERROR" and body["detail"]
    else:
        assert {row["code"] for row in body["rejected"]} <= CODES
        assert all(row["segment"] > 0 and row["detail"] for row in body["rejected"])


def readme_example() -> bytes:
    text = (Path(django_settings.BASE_DIR) / "README.md").read_text()
    start = text.index("UNA:+.? '\nUNB+")
    return text[start : text.index("UNZ+1+REF0001'", start) + len("UNZ+1+REF0001'")].encode("iso-8859-1")


@pytest.mark.parametrize("example", [readme_example(), MSCONS_EXAMPLE.encode()], ids=["README", "OpenAPI"])
def test_the_documented_examples_import_as_documented(api, pv, example):
    body = post(api, example, "text/plain").json()
    assert (body["created"], body["rejected"], body["interchange"]["reference"]) == (1, [], "REF0001")
    assert Measurement.objects.get().energy_wh == 1234
