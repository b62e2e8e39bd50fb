import os

import pytest
from django.conf import settings
from django.db import connection

from bkm.factories import GroupFactory, TenantFactory, UserFactory

REQUIRE_SERVICES = os.environ.get("BKM_REQUIRE_SERVICES") == "1"


def _unavailable(reason: str):
    # In CI the services are required: a missing one fails the test instead of skipping it.
    if REQUIRE_SERVICES:
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _require_services(request):
    if request.node.get_closest_marker("postgres") and connection.vendor != "postgresql":
        _unavailable("needs PostgreSQL (set DATABASE_URL)")
    if request.node.get_closest_marker("redis") and not settings.REDIS_URL:
        _unavailable("needs Redis (set REDIS_URL)")


@pytest.fixture
def tenant(db):
    return TenantFactory(code="sonnenhof", name="Sonnenhof")


@pytest.fixture
def other_tenant(db):
    return TenantFactory(code="nachbar", name="Nachbar")


@pytest.fixture
def operator(tenant):
    return UserFactory(username="operator", tenant=tenant)


@pytest.fixture
def make_group(tenant):
    def make(code, kind="balance", **kwargs):
        kwargs.setdefault("tenant", tenant)
        return GroupFactory(code=code, kind=kind, **kwargs)

    return make
