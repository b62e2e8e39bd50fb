"""Reading tenants and balance groups, and the one rule for which group a reference means."""

import uuid

from django.db import connection
from django.db.models import Q
from django.utils.translation import gettext as _

from balance_groups.models import BalanceGroup, Tenant
from core.errors import NotFound


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


class GroupIndex:
    """Groups by id, code and metering point. A reference is a group's UUID or, failing that, its
    code or, failing that, its metering point (MaLo/MeLo)."""

    def __init__(self, groups):
        self.by_id: dict[uuid.UUID, BalanceGroup] = {}
        self.by_code: dict[str, BalanceGroup] = {}
        self.by_metering_point: dict[str, BalanceGroup] = {}
        for group in groups:
            self.by_id[group.pk] = group
            self.by_code[group.code] = group
            if group.metering_point:
                self.by_metering_point[group.metering_point] = group
            group.id_text = str(group.pk)  # formatted once for the many rows that name the group

    def get(self, ref) -> BalanceGroup | None:
        text = str(ref).strip()
        if len(text) >= 32:  # every spelling of a UUID has at least 32 characters
            pk = _as_uuid(text)
            if pk is not None and pk in self.by_id:
                return self.by_id[pk]
        group = self.by_code.get(text)
        return group if group is not None else self.by_metering_point.get(text)

    def resolve(self, ref) -> BalanceGroup:
        group = self.get(ref)
        if group is None:
            raise NotFound(_("Balance group %(ref)s not found.") % {"ref": repr(str(ref).strip()[:80])})
        return group


def group_index(*, tenant) -> GroupIndex:
    """Every group of the tenant, for resolving many references with one query."""
    return GroupIndex(BalanceGroup.objects.filter(tenant=tenant))


def group_get(*, tenant, ref) -> BalanceGroup:
    """A group of ``tenant`` by UUID or by code; anything else (another tenant's) is NOT_FOUND."""
    if isinstance(ref, BalanceGroup):
        if ref.tenant_id != tenant.pk:
            raise NotFound(_("Balance group %(ref)s not found.") % {"ref": ref.pk})
        return ref
    text = str(ref).strip()
    candidates = Q(code=text) | Q(metering_point=text)
    pk = _as_uuid(text)
    if pk is not None:
        candidates |= Q(pk=pk)
    return GroupIndex(BalanceGroup.objects.filter(tenant=tenant).filter(candidates)).resolve(text)


def group_list(*, tenant):
    return BalanceGroup.objects.filter(tenant=tenant)


def tenant_by_code(code: str) -> Tenant:
    tenant = Tenant.objects.filter(code=code).first()
    if tenant is None:
        raise NotFound(_("No tenant with code %(code)s.") % {"code": repr(code)})
    return tenant


def groups_locked_for_booking(*, group_ids) -> dict:
    """Fresh rows of the given groups, share-locked until the transaction ends.

    Bookings take a shared lock, closing and validity changes an exclusive one: an entry is
    checked against the bounds that hold when it commits, and concurrent bookings on the same
    groups do not wait for each other.
    """
    ids = sorted({str(group_id) for group_id in group_ids})
    if connection.vendor == "postgresql":
        rows = BalanceGroup.objects.raw(
            "SELECT * FROM balance_groups_balancegroup WHERE id = ANY(%s::uuid[]) ORDER BY id FOR SHARE", [ids]
        )
    else:
        rows = BalanceGroup.objects.filter(pk__in=ids)
    return {str(group.pk): group for group in rows}
