"""The embedded topology over real HTTP: a live server, in-process tasks. A measurement written is
allocated before the answer returns, so the first read is already up to date and final."""

import pytest

from balance_groups.factories import TenantFactory
from balance_groups.services import api_client_create
from bkm.tests.http import (
    ALLOCATION_HOUR,
    ALLOCATION_VALUES,
    allocation_site,
    allocation_values_as_mscons,
    assert_allocated_hour,
    call,
    post_mscons,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_measurements_sent_over_http_are_allocated_at_once(live_server):
    tenant = TenantFactory(code="embedded-allocation")
    _, key = api_client_create(tenant=tenant, name="gateway")
    base = live_server.url + "/api/v1/"
    scheme = allocation_site(base, key)
    summary = call(base, key, "POST", "measurements/bulk", {"measurements": ALLOCATION_VALUES})
    assert (summary["created"], summary["rejected"]) == (12, [])
    answer = call(base, key, "GET", f"allocation-schemes/{scheme['id']}/allocation?{ALLOCATION_HOUR}")
    assert answer["up_to_date"] is True
    assert_allocated_hour(base, key, answer)
    again = call(base, key, "POST", "measurements/bulk", {"measurements": ALLOCATION_VALUES})
    assert (again["created"], again["unchanged"]) == (0, 12)


def test_an_mscons_interchange_sent_over_http_is_allocated_at_once(live_server):
    tenant = TenantFactory(code="embedded-mscons")
    _, key = api_client_create(tenant=tenant, name="mailbox")
    base = live_server.url + "/api/v1/"
    scheme = allocation_site(base, key)
    data = allocation_values_as_mscons(base, key)
    summary = post_mscons(base, key, data)
    assert (summary["created"], summary["rejected"], summary["interchange"]["values"]) == (12, [], 12)
    answer = call(base, key, "GET", f"allocation-schemes/{scheme['id']}/allocation?{ALLOCATION_HOUR}")
    assert answer["up_to_date"] is True
    assert_allocated_hour(base, key, answer)
    again = post_mscons(base, key, data)
    assert (again["unchanged"], again["interchange"]["duplicate_of"]) == (12, summary["interchange"]["id"])
