import datetime as dt
import os

import pytest

from balance_groups.factories import GroupFactory, UserFactory
from settlement.services import rule_change

UTC = dt.UTC
DAY = dt.date(2026, 3, 10)  # a winter day in Europe/Berlin: local = UTC + 1h
DAY_START = dt.datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"

# The browser tests' live server listens on a free port the system picks (so parallel runs never clash).
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1:0")


@pytest.fixture(autouse=True)
def _plain_static_storage(settings):
    # The manifest storage needs collectstatic; tests resolve assets from the finders instead.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def local(hour: int, minute: int = 0) -> dt.datetime:
    """An instant on DAY given in local (CET) wall time."""
    return DAY_START + dt.timedelta(hours=hour, minutes=minute)


@pytest.fixture
def site(tenant, operator, make_group):
    """A small site: GRID-CONNECTION (top balance) with PV and APT settled onto it; SUPPLIER outside."""
    groups = {
        "GRID-CONNECTION": make_group("GRID-CONNECTION", "balance", name="Netzanschluss"),
        "SUPPLIER": make_group("SUPPLIER", "balance", name="Lieferant"),
        "HOUSE": make_group("HOUSE", "balance", name="Haus"),
        "PV": make_group("PV", "source", name="PV-Anlage"),
        "APT": make_group("APT", "consumer", name="Wohnung"),
    }
    for code in ("PV", "APT", "HOUSE"):
        rule_change(
            group=groups[code],
            actor=operator,
            targets=[(groups["GRID-CONNECTION"], 10000)],
            effective_from=groups[code].valid_from,
        )
    return groups


@pytest.fixture
def flows(site, book):
    """One hour (10:00-11:00 local) of PV to the apartment, import, export; two bookings final."""
    return {
        "pv_apt": book("PV", "APT", local(10), local(11), 400, status="final", external_id="pv-apt"),
        "supplier_apt": book("SUPPLIER", "APT", local(10), local(11), 200, external_id="sup-apt"),
        "pv_supplier": book("PV", "SUPPLIER", local(10), local(11), 100, status="final", external_id="pv-sup"),
    }


@pytest.fixture
def client_in(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def stranger(other_tenant):
    """Another tenant's user and group, which the operator must never see."""
    return {
        "user": UserFactory(username="stranger", tenant=other_tenant),
        "group": GroupFactory(tenant=other_tenant, code="FOREIGN-PV", kind="source", name="Fremde PV"),
    }


@pytest.fixture
def no_tenant_user(db):
    return UserFactory(username="orphan", tenant=None)
