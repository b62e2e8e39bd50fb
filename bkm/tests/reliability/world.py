"""Two tenants with the same group codes, every kind of object, and every kind of principal."""

import datetime as dt
from dataclasses import dataclass, field

import pytest
from rest_framework.test import APIClient

from allocation.measurements import measurements_ingest
from allocation.models import AllocationScheme, Measurement
from allocation.mscons.services import bytes_source, mscons_import
from allocation.mscons.writer import Reading, write_interchange
from allocation.services import scheme_change
from balance_groups.factories import TenantFactory, UserFactory
from balance_groups.models import AuditEntry, BalanceGroup
from balance_groups.services import api_client_create, api_client_revoke, group_close, group_create
from core.errors import PeriodClosed
from core.testing import HOUR, iso
from core.testing import MONDAY as T0
from settlement.models import SettlementRule, SettlementRun
from settlement.services import rule_change, settlement_run
from transactions.models import Booking, ClarificationCase, LedgerLine
from transactions.services import booking_create

CODES = (("HOUSE", "balance"), ("PV-ROOF", "source"), ("GRID-IMPORT", "source"), ("APT-1", "consumer"))


@dataclass
class Side:
    tenant: object
    groups: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)  # kind -> id of one object (str)


def build_side(code: str, label: str) -> Side:
    tenant = TenantFactory(code=code, name=label)
    side = Side(tenant)
    actor = "system:test"
    for group_code, kind in CODES:
        side.groups[group_code] = group_create(
            tenant=tenant, actor=actor, code=group_code, name=f"{label} {group_code}", kind=kind, valid_from=T0
        )
    rule = rule_change(
        group=side.groups["PV-ROOF"], actor=actor, targets=[(side.groups["HOUSE"], 10000)], effective_from=T0
    )

    def book(**extra):
        fields = {"source": "PV-ROOF", "destination": "APT-1", "start": T0, "end": T0 + HOUR, "energy_wh": 1001}
        fields.update(extra)
        return booking_create(tenant=tenant, actor=actor, **fields).booking

    provisional = book(external_id=f"{code}-p")
    final = book(external_id=f"{code}-f", status="final", start=T0 + HOUR, end=T0 + 2 * HOUR)
    group_close(group=side.groups["GRID-IMPORT"], actor=actor, until=T0 + dt.timedelta(days=1))
    payload = {"source": "GRID-IMPORT", "destination": "APT-1", "start": iso(T0), "end": iso(T0 + HOUR)}
    payload["energy_wh"] = 5
    with pytest.raises(PeriodClosed):
        book(source="GRID-IMPORT", energy_wh=5, payload=payload)
    # A scheme whose code only this tenant has (dashboard pages are addressed by code), and values.
    scheme = scheme_change(
        tenant=tenant,
        actor=actor,
        code=f"{code}-SHARE",
        name=f"{label} Mieterstrom",
        method="dynamic",
        sources=[side.groups["PV-ROOF"]],
        consumers=[(side.groups["APT-1"], 10000)],
        surplus_to=side.groups["HOUSE"],
        residual_from=side.groups["GRID-IMPORT"],
        effective_from=T0,
    )
    measurements_ingest(
        tenant=tenant,
        actor=actor,
        items=[
            {"group": "PV-ROOF", "start": iso(T0 + 2 * HOUR), "energy_wh": 100},
            {"group": "APT-1", "start": iso(T0 + 2 * HOUR), "energy_wh": 60},
        ],
    )
    # An MSCONS interchange kept for the tenant (the dashboard lists it and serves its bytes).
    side.groups["APT-1"].metering_point = f"DE00{code.upper():0>29}"[:33]
    side.groups["APT-1"].save(update_fields=["metering_point"])
    interchange = mscons_import(
        tenant=tenant,
        actor=actor,
        source=bytes_source(
            write_interchange([[Reading(side.groups["APT-1"].metering_point, T0 + 3 * HOUR, "0.040")]])
        ),
        channel="api",
    ).interchange
    run = settlement_run(tenant=tenant, start=T0, end=T0 + 2 * HOUR)
    side.ids = {
        "group": str(side.groups["APT-1"].pk),
        "group_code": "APT-1",
        "rule": str(rule.pk),
        "booking": str(provisional.pk),
        "final_booking": str(final.pk),
        "case": str(ClarificationCase.objects.get(tenant=tenant).pk),
        "run": str(run.pk),
        "scheme": str(scheme.pk),
        "scheme_code": scheme.code,
        "interchange": str(interchange.pk),
    }
    return side


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def session_client(user, enforce_csrf: bool = False) -> APIClient:
    client = APIClient(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    return client


def fingerprint(tenant) -> dict:
    """Everything a tenant owns, counted, plus the ledger's total: any write shows up here."""
    return {
        "groups": list(
            BalanceGroup.objects.filter(tenant=tenant)
            .order_by("code")
            .values_list("code", "name", "valid_from", "valid_until", "closed_until")
        ),
        "rules": SettlementRule.objects.filter(tenant=tenant).count(),
        "bookings": list(
            Booking.objects.filter(tenant=tenant).order_by("pk").values_list("pk", "status", "energy_wh", "end")
        ),
        "lines": LedgerLine.objects.filter(tenant=tenant).count(),
        "cases": list(ClarificationCase.objects.filter(tenant=tenant).order_by("pk").values_list("pk", "status")),
        "runs": SettlementRun.objects.filter(tenant=tenant).count(),
        "schemes": AllocationScheme.objects.filter(tenant=tenant).count(),
        "measurements": list(
            Measurement.objects.filter(tenant=tenant).order_by("pk").values_list("pk", "energy_wh", "status")
        ),
        "audit": AuditEntry.objects.filter(tenant=tenant).count(),
    }


@dataclass
class World:
    owner: Side
    other: Side
    clients: dict  # principal name -> APIClient
    users: dict


def build_world() -> World:
    owner = build_side("eigen", "Eigentum")
    other = build_side("fremd", "Nachbarschaft")
    _, owner_key = api_client_create(tenant=owner.tenant, name="gateway")
    _, reader_key = api_client_create(tenant=owner.tenant, name="reader", read_only=True)
    _, other_key = api_client_create(tenant=other.tenant, name="neighbour")
    revoked, revoked_key = api_client_create(tenant=owner.tenant, name="old-gateway")
    api_client_revoke(client=revoked, actor="system:test")
    users = {
        "owner_user": UserFactory(username="eigen-op", tenant=owner.tenant),
        "other_user": UserFactory(username="fremd-op", tenant=other.tenant),
        "no_tenant_user": UserFactory(username="niemand", tenant=None),
    }
    clients = {
        "owner": token_client(owner_key),
        "read_only": token_client(reader_key),
        "other_tenant": token_client(other_key),
        "revoked": token_client(revoked_key),
        "anonymous": APIClient(),
        "owner_session": session_client(users["owner_user"]),
        "other_session": session_client(users["other_user"]),
        "no_tenant_session": session_client(users["no_tenant_user"]),
    }
    return World(owner, other, clients, users)
