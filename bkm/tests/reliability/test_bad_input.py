"""Bad input over the API: the documented 4xx with a stable code, never a 5xx, nothing written.

A table of hand-picked bad inputs (naive and misaligned instants, huge and negative numbers,
NaN, strings for numbers, unknown fields, wrong content types, oversized bodies, other tenants'
ids...), a hypothesis fuzz of the booking fields, and schemathesis' stateful run over the whole
schema following its links.
"""

import datetime as dt
import json
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import not_a_server_error

from bkm.tests.reliability import figures
from bkm.tests.reliability.world import HOUR, T0, build_world, fingerprint, iso
from core.integrity import ledger_violations

pytestmark = pytest.mark.django_db

# Codes an API answer may carry for a refused input (API.md plus the parser's).
CLIENT_CODES = {
    "VALIDATION_ERROR",
    "INVALID_TIME_ALIGNMENT",
    "PARSE_ERROR",
    "NOT_FOUND",
    "UNSUPPORTED_MEDIA_TYPE",
    "REQUEST_TOO_LARGE",
    "METHOD_NOT_ALLOWED",
    "PERIOD_CLOSED",
    "BOOKING_FINAL",
    "CONFLICT",
}


@pytest.fixture(autouse=True)
def _private_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "bad"}}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "100000/min", "bulk": "100000/min"},
    }
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def world():
    return build_world()


def booking(**overrides) -> dict:
    body = {
        "source": "PV-ROOF",
        "destination": "APT-1",
        "start": iso(T0 + 2 * HOUR),
        "end": iso(T0 + 3 * HOUR),
        "energy_wh": 1000,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


GROUP = {"code": "NEU", "name": "Neu", "kind": "consumer", "valid_from": "2026-03-02T00:00:00Z"}
BOOKINGS = "/api/v1/bookings/"
GROUPS = "/api/v1/balance-groups/"
RULES = "/api/v1/settlement-rules/"
RUNS = "/api/v1/settlement-runs/"

# (label, method, url, body, expected status, expected code); body None: no body; str: raw JSON text.
CASES = [
    ("naive start", "post", BOOKINGS, booking(start="2026-03-02T02:00:00"), 400, "VALIDATION_ERROR"),
    ("naive end", "post", BOOKINGS, booking(end="2026-03-02T03:00:00"), 400, "VALIDATION_ERROR"),
    ("misaligned start", "post", BOOKINGS, booking(start="2026-03-02T02:07:00Z"), 400, "INVALID_TIME_ALIGNMENT"),
    ("seconds", "post", BOOKINGS, booking(end="2026-03-02T03:00:01Z"), 400, "INVALID_TIME_ALIGNMENT"),
    ("odd offset", "post", BOOKINGS, booking(start="2026-03-02T03:10:00+01:03"), 400, "INVALID_TIME_ALIGNMENT"),
    ("date only", "post", BOOKINGS, booking(start="2026-03-02"), 400, "VALIDATION_ERROR"),
    ("not a date", "post", BOOKINGS, booking(start="gestern"), 400, "VALIDATION_ERROR"),
    ("year 10000", "post", BOOKINGS, booking(end="10000-01-01T00:00:00Z"), 400, "VALIDATION_ERROR"),
    ("start = end", "post", BOOKINGS, booking(end=iso(T0 + 2 * HOUR)), 400, "VALIDATION_ERROR"),
    ("start after end", "post", BOOKINGS, booking(end=iso(T0 + HOUR)), 400, "VALIDATION_ERROR"),
    ("zero energy", "post", BOOKINGS, booking(energy_wh=0), 400, "VALIDATION_ERROR"),
    ("negative energy", "post", BOOKINGS, booking(energy_wh=-5), 400, "VALIDATION_ERROR"),
    ("huge energy", "post", BOOKINGS, booking(energy_wh=10**30), 400, "VALIDATION_ERROR"),
    ("above bigint", "post", BOOKINGS, booking(energy_wh=2**63), 400, "VALIDATION_ERROR"),
    ("float energy", "post", BOOKINGS, booking(energy_wh=1000.5), 400, "VALIDATION_ERROR"),
    ("whole float energy", "post", BOOKINGS, booking(energy_wh=1000.0), 400, "VALIDATION_ERROR"),
    ("string energy", "post", BOOKINGS, booking(energy_wh="1000"), 400, "VALIDATION_ERROR"),
    ("bool energy", "post", BOOKINGS, booking(energy_wh=True), 400, "VALIDATION_ERROR"),
    ("null energy", "post", BOOKINGS, booking(energy_wh=None), 400, "VALIDATION_ERROR"),
    ("NaN energy", "post", BOOKINGS, json.dumps(booking()).replace("1000", "NaN"), 400, None),
    ("Infinity energy", "post", BOOKINGS, json.dumps(booking()).replace("1000", "Infinity"), 400, None),
    ("missing energy", "post", BOOKINGS, booking(energy_wh=...), 400, "VALIDATION_ERROR"),
    ("unknown field", "post", BOOKINGS, booking(tenant="fremd"), 400, "VALIDATION_ERROR"),
    ("same group", "post", BOOKINGS, booking(destination="PV-ROOF"), 400, "VALIDATION_ERROR"),
    ("unknown group", "post", BOOKINGS, booking(source="NIRGENDS"), 400, "VALIDATION_ERROR"),
    ("group as number", "post", BOOKINGS, booking(source=42), 400, "VALIDATION_ERROR"),
    ("bad status", "post", BOOKINGS, booking(status="FINAL"), 400, "VALIDATION_ERROR"),
    ("list body", "post", BOOKINGS, [booking()], 400, None),
    ("empty body", "post", BOOKINGS, None, 400, None),
    ("broken JSON", "post", BOOKINGS, '{"source": "PV-ROOF",', 400, "PARSE_ERROR"),
    ("long external id", "post", BOOKINGS, booking(external_id="x" * 201), 400, "VALIDATION_ERROR"),
    ("lone surrogate", "post", BOOKINGS, '{"source": "\\ud800", "destination": "APT-1"}', 400, None),
    ("bulk not a list", "post", "/api/v1/bookings/bulk", {"bookings": "alle"}, 400, "VALIDATION_ERROR"),
    ("bulk extra key", "post", "/api/v1/bookings/bulk", {"bookings": [], "tenant": "fremd"}, 400, "VALIDATION_ERROR"),
    ("group naive", "post", GROUPS, {**GROUP, "valid_from": "2026-03-02T00:00:00"}, 400, "VALIDATION_ERROR"),
    (
        "group misaligned",
        "post",
        GROUPS,
        {**GROUP, "valid_from": "2026-03-02T00:00:30Z"},
        400,
        "INVALID_TIME_ALIGNMENT",
    ),
    ("group bad kind", "post", GROUPS, {**GROUP, "kind": "battery"}, 400, "VALIDATION_ERROR"),
    ("group code spaces", "post", GROUPS, {**GROUP, "code": "A B"}, 400, "VALIDATION_ERROR"),
    ("group code too long", "post", GROUPS, {**GROUP, "code": "X" * 65}, 400, "VALIDATION_ERROR"),
    ("group duplicate code", "post", GROUPS, {**GROUP, "code": "APT-1"}, 400, "VALIDATION_ERROR"),
    ("group empty name", "post", GROUPS, {**GROUP, "name": " "}, 400, "VALIDATION_ERROR"),
    ("rule shares", "post", RULES, {"group": "APT-1", "targets": [{"parent": "HOUSE", "share": 9999}]}, 400, None),
    (
        "rule huge share",
        "post",
        RULES,
        {"group": "APT-1", "targets": [{"parent": "HOUSE", "share": 10**30}]},
        400,
        None,
    ),
    (
        "rule interval",
        "post",
        RULES,
        {"group": "APT-1", "targets": [{"parent": "HOUSE", "share": 10000}], "interval": "2h"},
        400,
        None,
    ),
    (
        "rule retroactive",
        "post",
        RULES,
        {"group": "PV-ROOF", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": iso(T0)},
        400,
        None,
    ),
    (
        "rule onto consumer",
        "post",
        RULES,
        {"group": "PV-ROOF", "targets": [{"parent": "APT-1", "share": 10000}]},
        400,
        None,
    ),
    (
        "rule onto itself",
        "post",
        RULES,
        {"group": "HOUSE", "targets": [{"parent": "HOUSE", "share": 10000}]},
        400,
        None,
    ),
    ("run naive", "post", RUNS, {"start": "2026-03-02T00:00:00", "end": iso(T0 + HOUR)}, 400, "VALIDATION_ERROR"),
    ("run too long", "post", RUNS, {"start": "2020-01-01T00:00:00Z", "end": iso(T0)}, 400, "VALIDATION_ERROR"),
    (
        "balance naive",
        "get",
        f"{GROUPS}APT-1/balance?start=2026-03-02T00:00:00&end=2026-03-03T00:00:00Z",
        None,
        400,
        None,
    ),
    (
        "balance resolution",
        "get",
        f"{GROUPS}APT-1/balance?start={iso(T0)}&end={iso(T0 + HOUR)}&resolution=5min",
        None,
        400,
        None,
    ),
    ("balance reversed", "get", f"{GROUPS}APT-1/balance?start={iso(T0 + HOUR)}&end={iso(T0)}", None, 400, None),
    ("imbalances garbage", "get", "/api/v1/imbalances/?start=morgen", None, 400, None),
    ("bookings bad cursor", "get", "/api/v1/bookings/?cursor=bz1hYmM%3D", None, 400, "VALIDATION_ERROR"),
    ("bookings tampered cursor", "get", "/api/v1/bookings/?cursor=cj0xJnA9eHh4", None, 400, "VALIDATION_ERROR"),
    ("lines tampered cursor", "get", "/api/v1/ledger-lines/?cursor=cj0xJnA9eHh4", None, 400, "VALIDATION_ERROR"),
    ("imbalances tampered cursor", "get", "/api/v1/imbalances/?cursor=cj0xJnA9eHh4", None, 400, "VALIDATION_ERROR"),
    ("booking id not uuid", "get", f"{BOOKINGS}nicht-da/", None, 404, "NOT_FOUND"),
    ("unknown booking", "get", f"{BOOKINGS}{uuid.uuid4()}/", None, 404, "NOT_FOUND"),
    ("unknown path", "get", "/api/v1/zaehler/", None, 404, "NOT_FOUND"),
    ("resolve bad action", "post", "/api/v1/clarifications/{case}/resolve", {"action": "delete"}, 400, None),
    ("dismiss without note", "post", "/api/v1/clarifications/{case}/resolve", {"action": "dismiss"}, 400, None),
    ("final booking resent", "post", BOOKINGS, "{final_resent}", 409, "BOOKING_FINAL"),
    ("closed period", "post", BOOKINGS, booking(source="GRID-IMPORT"), 409, "PERIOD_CLOSED"),
    ("delete group with bookings", "delete", f"{GROUPS}APT-1/", None, 409, "CONFLICT"),
    ("finalize settlement", "post", "/api/v1/bookings/{settlement}/finalize", None, 409, "CONFLICT"),
    ("reverse provisional", "post", "/api/v1/bookings/{booking}/reverse", None, 409, "CONFLICT"),
]


def _request(client, method, url, body, content_type="application/json"):
    if body is None:
        return getattr(client, method)(url)
    data = body if isinstance(body, str) else json.dumps(body)
    return getattr(client, method)(url, data=data, content_type=content_type)


def _ids(world) -> dict:
    from transactions.models import Booking, BookingKind

    settlement = Booking.objects.filter(
        tenant=world.owner.tenant, kind=BookingKind.SETTLEMENT, status="provisional"
    ).first()
    return {**world.owner.ids, "settlement": str(settlement.pk)}


def test_bad_inputs_get_a_stable_4xx_and_write_nothing(world):
    from transactions.models import Booking

    client = world.clients["owner"]
    ids = _ids(world)
    final = Booking.objects.get(pk=ids["final_booking"])
    final_resent = json.dumps(
        booking(
            external_id=final.external_id,
            start=iso(final.start),
            end=iso(final.end),
            energy_wh=final.energy_wh + 1,
            status="final",
        )
    )
    problems = []
    for label, method, url, body, status, code in CASES:
        before = fingerprint(world.owner.tenant)
        if body == "{final_resent}":
            body = final_resent
        response = _request(client, method, url.format(**ids), body)
        answer = response.json() if response.get("Content-Type", "").startswith("application/json") else {}
        wrong = response.status_code != status or answer.get("code") not in CLIENT_CODES or not answer.get("detail")
        if code and answer.get("code") != code:
            wrong = True
        after = fingerprint(world.owner.tenant)
        if label == "closed period":
            # Refused, and kept as a clarification case (with its audit entry): nothing else.
            assert len(after["cases"]) == len(before["cases"]) + 1
            after = {**after, "cases": before["cases"], "audit": before["audit"]}
        if wrong or after != before:
            problems.append(f"{label}: {response.status_code} {answer} written={after != before}")
    assert problems == [], "\n".join(problems)
    figures.add("bad_inputs", len(CASES))


def test_deeply_nested_json_is_a_400(world):
    before = fingerprint(world.owner.tenant)
    response = _request(world.clients["owner"], "post", BOOKINGS, "[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400
    assert response.json()["code"] == "PARSE_ERROR"
    assert fingerprint(world.owner.tenant) == before


UNKNOWN_FIELD_WRITES = [
    pytest.param(BOOKINGS, booking(), id="bookings"),
    pytest.param(GROUPS, GROUP, id="balance-groups"),
    pytest.param(
        RULES,
        {"group": "APT-1", "targets": [{"parent": "HOUSE", "share": 10000}]},
        id="settlement-rules",
    ),
    pytest.param(RUNS, {"start": iso(T0), "end": iso(T0 + HOUR)}, id="settlement-runs"),
    pytest.param("/api/v1/bookings/bulk", {"bookings": [booking()]}, id="bulk"),
]


@pytest.mark.parametrize(("url", "body"), UNKNOWN_FIELD_WRITES)
def test_an_unknown_field_is_refused_not_ignored(world, url, body):
    """``{"tenant": ...}`` must never be silently accepted: the tenant comes from the principal only."""
    before = fingerprint(world.owner.tenant)
    response = _request(world.clients["owner"], "post", url, {**body, "tenant": world.other.tenant.pk})
    figures.add("bad_inputs")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "VALIDATION_ERROR"
    if not url.endswith("/bulk"):  # the bulk envelope answers with its own message on "bookings"
        assert response.json()["errors"]["tenant"] == ["Unknown field."]
    assert fingerprint(world.owner.tenant) == before


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", json.dumps(booking())),
        ("application/x-www-form-urlencoded", "source=PV-ROOF&destination=APT-1&energy_wh=1"),
        ("application/xml", "<booking><energy_wh>1</energy_wh></booking>"),
        ("multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n"),
    ],
)
def test_wrong_content_types_are_415(world, content_type, body):
    before = fingerprint(world.owner.tenant)
    response = _request(world.clients["owner"], "post", BOOKINGS, body, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert fingerprint(world.owner.tenant) == before
    figures.add("bad_inputs")


def test_an_oversized_body_is_413(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 50_000
    items = [booking(external_id=f"big-{n}") for n in range(1000)]
    before = fingerprint(world.owner.tenant)
    response = _request(world.clients["owner"], "post", "/api/v1/bookings/bulk", {"bookings": items})
    assert response.status_code == 413
    assert response.json()["code"] == "REQUEST_TOO_LARGE"
    assert fingerprint(world.owner.tenant) == before
    figures.add("bad_inputs")


NUL_NAME = "a\x00b"


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        pytest.param("post", BOOKINGS, booking(name=NUL_NAME, external_id="nul"), id="single"),
        pytest.param(
            "post", "/api/v1/bookings/bulk", {"bookings": [booking(name=NUL_NAME, external_id="nul")]}, id="bulk"
        ),
        pytest.param("post", GROUPS, {**GROUP, "name": NUL_NAME}, id="group"),
        pytest.param("patch", f"{GROUPS}APT-1/", {"name": NUL_NAME}, id="group-patch"),
        pytest.param(
            "post", "/api/v1/clarifications/{case}/resolve", {"action": "dismiss", "note": NUL_NAME}, id="clarification"
        ),
        pytest.param("post", BOOKINGS, {**booking(), "a\x00b": 1}, id="key"),
    ],
)
def test_a_nul_character_is_a_400_not_a_500(world, method, url, body):
    """PostgreSQL text cannot hold NUL: any string with one is refused as invalid input, centrally."""
    before = fingerprint(world.owner.tenant)
    response = _request(world.clients["owner"], method, url.format(**world.owner.ids), body)
    assert response.status_code == 400, response.content[:300]
    answer = response.json()
    assert answer["code"] == "VALIDATION_ERROR"
    assert "NUL" in answer["detail"]
    assert fingerprint(world.owner.tenant) == before
    figures.add("bad_inputs")


def test_unicode_names_are_stored_exactly(world):
    name = "Wärmepumpe Süd 🔥 — Ωμέγα 北"
    response = _request(world.clients["owner"], "post", GROUPS, {**GROUP, "code": "WP-SÜD", "name": name})
    assert response.status_code == 201, response.content
    fetched = world.clients["owner"].get(f"{GROUPS}WP-SÜD/").json()
    assert (fetched["code"], fetched["name"]) == ("WP-SÜD", name)
    figures.add("bad_inputs")


def test_another_tenants_ids_look_exactly_like_ids_that_do_not_exist(world):
    """An id of another tenant gets the same answer as a random id: no way to probe for existence."""
    client = world.clients["owner"]
    theirs, nobody = world.other.ids, {key: str(uuid.uuid4()) for key in world.other.ids}
    probes = [
        ("get", f"{GROUPS}{{group}}/", None),
        ("patch", f"{GROUPS}{{group}}/", {"name": "gekapert"}),
        ("delete", f"{GROUPS}{{group}}/", None),
        ("post", f"{GROUPS}{{group}}/close", {}),
        ("get", f"{GROUPS}{{group}}/balance?start={iso(T0)}&end={iso(T0 + HOUR)}", None),
        ("get", f"{BOOKINGS}{{booking}}/", None),
        ("post", f"{BOOKINGS}{{final_booking}}/reverse", None),
        ("post", f"{BOOKINGS}{{booking}}/finalize", None),
        ("get", f"{RULES}{{rule}}/", None),
        ("get", f"{RUNS}{{run}}/", None),
        ("get", "/api/v1/clarifications/{case}/", None),
        ("post", "/api/v1/clarifications/{case}/resolve", {"action": "dismiss", "note": "x"}),
        ("post", BOOKINGS, booking(source="{group}")),
        ("post", BOOKINGS, booking(destination="{group}")),
        ("post", RULES, {"group": "{group}", "targets": [{"parent": "HOUSE", "share": 10000}]}),
        ("post", RULES, {"group": "APT-1", "targets": [{"parent": "{group}", "share": 10000}]}),
        ("get", "/api/v1/imbalances/?group={group}", None),
        ("get", "/api/v1/bookings/?group={group}", None),
    ]
    before = {"owner": fingerprint(world.owner.tenant), "other": fingerprint(world.other.tenant)}
    for method, url, body in probes:
        answers = []
        for ids in (theirs, nobody):
            filled = json.loads(json.dumps(body).replace("{group}", ids["group"])) if body else body
            response = _request(client, method, url.format(**ids), filled)
            answer = response.json()
            answers.append((response.status_code, answer.get("code"), sorted(answer.get("errors", {}))))
            if isinstance(answer, dict) and "results" in answer:
                answers[-1] = (response.status_code, "list", len(answer["results"]))
        assert answers[0] == answers[1], (method, url, answers)
        assert answers[0][0] != 200 or answers[0][1] == "list", (method, url, answers)
    assert fingerprint(world.owner.tenant) == before["owner"]
    assert fingerprint(world.other.tenant) == before["other"]
    figures.add("bad_inputs", 2 * len(probes))


# -- a fuzz of the booking fields ----------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["PV-ROOF", "APT-1", iso(T0), "2026-03-02T00:00:00", "2026-03-02T00:05:00Z", ""]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)
FIELDS = ("source", "destination", "start", "end", "energy_wh", "status", "external_id", "name")


def test_fuzzed_booking_fields_never_cause_a_5xx(world):
    client = world.clients["owner"]
    tried = 0

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        replaced=st.dictionaries(st.sampled_from(FIELDS), json_values, min_size=1, max_size=3),
        extra=st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=1),
        bulk=st.booleans(),
    )
    def run(replaced, extra, bulk):
        nonlocal tried
        tried += 1
        body = {**booking(external_id=f"fuzz-{tried}"), **replaced, **extra}
        url, payload = ("/api/v1/bookings/bulk", {"bookings": [body]}) if bulk else (BOOKINGS, body)
        response = _request(client, "post", url, payload)
        assert response.status_code < 500, (body, response.content[:300])
        answer = response.json()
        if response.status_code >= 400:
            assert answer["code"] in CLIENT_CODES and answer["detail"], answer
        elif bulk:
            for rejected in answer["rejected"]:
                assert rejected["code"] in CLIENT_CODES, rejected

    run()
    assert ledger_violations([world.owner.tenant.pk]) == []
    figures.add("bad_inputs", tried)


# -- schemathesis, stateful, over the whole schema -----------------------------------------


@pytest.fixture
def keep_connection():
    """The WSGI handler closes the connection after each request; the test's transaction stays."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schemathesis_stateful_links_never_5xx_and_keep_the_ledger_consistent(world, keep_connection):
    from django.db import transaction

    from bkm.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    machine = schema.as_state_machine()  # links from the schema, and those schemathesis infers
    links = sum(
        len(response.get("links", {}))
        for item in schema.raw_schema["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
    )
    assert links >= 10, "the schema's links drive the stateful run"
    key_client = world.clients["owner"]
    headers = {"Authorization": key_client._credentials["HTTP_AUTHORIZATION"]}
    calls = {"n": 0, "statuses": {}}
    before_other = fingerprint(world.other.tenant)

    violations = []  # (what broke, the scenario's calls that broke it)

    class Workflow(machine):
        def setup(self):
            # Each scenario starts from the same data: its answers, and so the links they feed, are
            # reproducible, as hypothesis expects when it replays a scenario.
            self.savepoint = transaction.savepoint()
            self.calls = []

        def teardown(self):
            found = ledger_violations()
            if found:
                violations.append((found, self.calls))
            transaction.savepoint_rollback(self.savepoint)

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, **kwargs):
            self.calls.append(f"{case.method} {case.formatted_path} -> {response.status_code}")
            calls["n"] += 1
            calls["statuses"][response.status_code] = calls["statuses"].get(response.status_code, 0) + 1
            case.validate_response(response, checks=[not_a_server_error])

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=40,
            stateful_step_count=8,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    print(f"schemathesis stateful: {links} links, {calls['n']} calls, statuses {sorted(calls['statuses'].items())}")
    assert calls["n"] >= 40
    assert any(200 <= status < 300 for status in calls["statuses"])
    assert violations == [], "\n".join(
        f"{found[:3]} after:\n  " + "\n  ".join(scenario) for found, scenario in violations[:2]
    )
    assert ledger_violations() == []
    assert fingerprint(world.other.tenant) == before_other
    figures.add("schemathesis_stateful_calls", calls["n"])
    figures.put("schemathesis_links", links)


# -- hostile strings and instants over every write endpoint ---------------------------------

hostile_text = st.text(
    alphabet=st.characters(codec=None, categories=None, exclude_categories=()), max_size=40
) | st.sampled_from(["\x00", "\ud800", "a\udfffb", "\x07", "=HYPERLINK(1)", "a" * 300, "\u202e", " ", ""])
hostile_instant = (
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=14)), dt.timezone(-dt.timedelta(hours=12))]),
    ).map(lambda instant: instant.isoformat())
    | st.sampled_from(["9999-12-31T23:45:00Z", "0001-01-01T00:00:00Z", "2026-03-02T00:07:00Z", "2026-03-02T00:00:00"])
    | hostile_text
)
WRITE_ENDPOINTS = {
    "group": ("post", GROUPS, lambda t, i: {**GROUP, "code": f"F{abs(hash(t)) % 10**6}", "name": t, "valid_from": i}),
    "group-patch": ("patch", "/api/v1/balance-groups/APT-1/", lambda t, i: {"name": t, "valid_until": i}),
    "close": ("post", "/api/v1/balance-groups/APT-1/close", lambda t, i: {"until": i}),
    "rule": (
        "post",
        RULES,
        lambda t, i: {"group": t or "APT-1", "targets": [{"parent": "HOUSE", "share": 10000}], "effective_from": i},
    ),
    "run": ("post", "/api/v1/settlement-runs/", lambda t, i: {"start": i, "end": iso(T0 + HOUR)}),
    "resolve": ("post", "/api/v1/clarifications/{case}/resolve", lambda t, i: {"action": "dismiss", "note": t}),
    "booking": ("post", BOOKINGS, lambda t, i: booking(name=t, start=i)),
    "bulk": ("post", "/api/v1/bookings/bulk", lambda t, i: {"bookings": [booking(external_id=t, end=i)]}),
    "measurements": (
        "post",
        "/api/v1/measurements/bulk",
        lambda t, i: {"measurements": [{"group": t or "APT-1", "start": i, "energy_wh": 5, "quality": "measured"}]},
    ),
    "scheme": (
        "post",
        "/api/v1/allocation-schemes/",
        lambda t, i: {
            "code": t,
            "name": t or "Neu",
            "method": "static",
            "sources": ["PV-ROOF"],
            "consumers": [{"group": "APT-1", "share": 10000}],
            "surplus_to": "HOUSE",
            "residual_from": "GRID-IMPORT",
            "effective_from": i,
            "price_local_ct_per_kwh": t,
        },
    ),
}


def test_hostile_strings_and_instants_on_every_write_endpoint_never_cause_a_5xx(world):
    """Never a 5xx; and a refusal by any endpoint but the booking and measurement ones (which keep
    refused items as clarification cases) writes nothing at all."""
    client = world.clients["owner"]
    seen = set()

    @settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(endpoint=st.sampled_from(sorted(WRITE_ENDPOINTS)), text=hostile_text, instant=hostile_instant)
    def run(endpoint, text, instant):
        method, url, body = WRITE_ENDPOINTS[endpoint]
        before = fingerprint(world.owner.tenant)
        response = _request(client, method, url.format(**world.owner.ids), body(text, instant))
        assert response.status_code < 500, (endpoint, text, instant, response.content[:300])
        if response.status_code >= 400:
            answer = response.json()
            assert answer["code"] in CLIENT_CODES and answer["detail"], answer
            if endpoint not in ("booking", "bulk", "measurements"):
                assert fingerprint(world.owner.tenant) == before, (endpoint, text, instant)
        seen.add(endpoint)

    run()
    assert seen == set(WRITE_ENDPOINTS)
    assert ledger_violations([world.owner.tenant.pk]) == []
    figures.add("bad_inputs", 300)
