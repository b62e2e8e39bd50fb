"""Fixtures of the API suites (every app's ``tests/api`` and ``bkm/tests/api``), loaded by the root
``conftest.py`` as a plugin: API clients per principal and a small site of groups."""

import pytest
from rest_framework.test import APIClient

from balance_groups.services import api_client_create


@pytest.fixture(autouse=True)
def _local_cache(settings):
    """Throttle counters in a private in-memory cache, empty for every test."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api"}}
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def _client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def api_key(tenant):
    _client, key = api_client_create(tenant=tenant, name="gateway")
    return key


@pytest.fixture
def api(api_key):
    return _client_with(api_key)


@pytest.fixture
def readonly_api(tenant):
    _client, key = api_client_create(tenant=tenant, name="reader", read_only=True)
    return _client_with(key)


@pytest.fixture
def other_api(other_tenant):
    _client, key = api_client_create(tenant=other_tenant, name="neighbour")
    return _client_with(key)


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def session_api(operator):
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(operator)
    return client


@pytest.fixture
def api_site(make_group):
    """PV and grid feed a house balance; an apartment consumes."""
    return {
        "house": make_group("HOUSE", "balance"),
        "pv": make_group("PV-ROOF", "source"),
        "grid": make_group("GRID-IMPORT", "source"),
        "apt": make_group("APT-1", "consumer"),
    }
