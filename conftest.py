import os

import pytest
from django.conf import settings
from django.db import connection
from django.utils import translation
from hypothesis import settings as hypothesis_settings

from balance_groups.factories import GroupFactory, TenantFactory, UserFactory
from transactions.services import booking_create

REQUIRE_SERVICES = os.environ.get("BKM_REQUIRE_SERVICES") == "1"

# The API suites' fixtures (clients per principal, a small site), shared by every app's tests/api.
pytest_plugins = ["bkm.tests.api_fixtures"]

# Hypothesis: database-backed examples are slow by nature (no deadline); CI prints the blob that
# reproduces a failure. HYPOTHESIS_PROFILE=thorough runs many more examples locally.
hypothesis_settings.register_profile("ci", deadline=None, print_blob=True)
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("thorough", deadline=None, max_examples=1000, stateful_step_count=60)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


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


@pytest.fixture(autouse=True)
def _default_language():
    # A request activates its language in the thread and leaves it there; every test starts in English.
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _celery_eager(request):
    # Tasks run in-process, so balances are current right after a write; a test that drives a
    # real worker opts out with the ``celery_worker`` marker.
    from bkm.celery import app

    if request.node.get_closest_marker("celery_worker"):
        yield
        return
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


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


@pytest.fixture
def book(tenant, operator):
    """``book(source, destination, start, end, energy_wh, ...)``: a booking through the service."""

    def make(source, destination, start, end, energy_wh, status="provisional", external_id=None):
        return booking_create(
            tenant=tenant,
            actor=operator,
            source=source,
            destination=destination,
            start=start,
            end=end,
            energy_wh=energy_wh,
            status=status,
            external_id=external_id,
        ).booking

    return make


@pytest.fixture
def broker_mode(monkeypatch):
    """As in production with a broker and no worker: writes only mark days dirty, and the tasks a
    service sends on commit are recorded here as ``(short task name, *arguments)``."""
    from bkm.celery import app

    sent = []
    monkeypatch.setattr("core.jobs.send", lambda name, kwargs: sent.append((name.rsplit(".", 1)[-1], *kwargs.values())))
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield sent
    app.conf.task_always_eager = previous
