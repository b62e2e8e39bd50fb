"""Property-based conformance: schemathesis against the generated schema, in-process (WSGI).

Every operation gets a bounded number of generated requests (authenticated as the tenant's API
client), half with free path ids and half with ids of real objects. The responses must never be
5xx and must conform to the schema: documented status code, content type, headers and body.
"""

import datetime as dt
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core.testing import MONDAY as T0
from settlement.models import SettlementRun
from transactions.services import booking_create

EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def real_ids(api_site, tenant):
    from settlement.services import rule_change

    booking = booking_create(
        tenant=tenant,
        actor="system:test",
        source="PV-ROOF",
        destination="APT-1",
        start=T0,
        end=T0 + dt.timedelta(hours=1),
        energy_wh=1000,
    ).booking
    house = api_site["house"]
    rule = rule_change(group=api_site["pv"], actor="system:test", targets=[(house, 10000)], effective_from=T0)
    run = SettlementRun.objects.create(tenant=tenant, start=T0, end=T0 + dt.timedelta(hours=1))
    return {
        "balance-groups": "APT-1",
        "bookings": str(booking.pk),
        "settlement-rules": str(rule.pk),
        "settlement-runs": str(run.pk),
    }


def test_schemathesis_conformance(api_key, real_ids, settings_override_rates, keep_connection):
    from bkm.wsgi import application

    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    headers = {"Authorization": f"Token {api_key}"}
    operations, examples, failures = 0, 0, []
    statuses: Counter = Counter()
    succeeded: set[str] = set()

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        strategies = [operation.as_strategy(headers=headers)]
        collection = operation.path.split("/")[3]
        if "{id}" in operation.path and collection in real_ids:
            strategies.append(operation.as_strategy(headers=headers, path_parameters={"id": real_ids[collection]}))
        for strategy in strategies:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION // len(strategies),
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case):
                nonlocal examples
                examples += 1
                response = case.call()
                statuses[response.status_code] += 1
                if response.status_code < 300:
                    succeeded.add(f"{case.method} {case.operation.path}")
                try:
                    case.validate_response(response, checks=CHECKS)
                except (Exception, BaseExceptionGroup) as error:  # collected and reported together below
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {error}"[:600])

            run()

    print(f"schemathesis: {operations} operations, {examples} examples, {len(failures)} failures")
    print(f"schemathesis: statuses {dict(sorted(statuses.items()))}; operations with a 2xx: {len(succeeded)}")
    assert operations >= 18
    assert examples >= operations * 10
    assert len(succeeded) >= operations // 2  # the generated requests reach the endpoints, not just the guards
    assert not failures, "\n".join(failures[:10])


@pytest.fixture
def keep_connection():
    """The WSGI handler closes the database connection after each request; the test's transaction
    must survive the requests (Django's test client does the same)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def settings_override_rates(settings):
    # The generated traffic must not run into the client's rate limit.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"client": "100000/min", "bulk": "100000/min"},
    }
