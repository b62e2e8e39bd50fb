import uuid

from django.db import connection

from balance_groups.models import BalanceGroup
from bkm.errors import NotFound


def group_get(*, tenant, ref) -> BalanceGroup:
    """A group of ``tenant`` by UUID or by code; anything else (another tenant's) is NOT_FOUND."""
    if isinstance(ref, BalanceGroup):
        if ref.tenant_id != tenant.pk:
            raise NotFound(f"Balance group {ref.pk} not found.")
        return ref
    text = str(ref).strip()
    queryset = BalanceGroup.objects.filter(tenant=tenant)
    try:
        group = queryset.filter(pk=uuid.UUID(text)).first()
    except ValueError:
        group = None
    if group is None:
        group = queryset.filter(code=text).first()
    if group is None:
        raise NotFound(f"Balance group {text[:80]!r} not found.")
    return group


def group_list(*, tenant):
    return BalanceGroup.objects.filter(tenant=tenant)


def groups_by_ref(*, tenant) -> dict[str, BalanceGroup]:
    """Every group of the tenant keyed by code and by id string (for bulk resolution)."""
    index = {}
    for group in BalanceGroup.objects.filter(tenant=tenant):
        index[group.code] = group
        index[str(group.pk)] = group
    return index


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
