import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from balance_groups.audit import audit_record
from balance_groups.models import ApiClient, AuditAction, BalanceGroup, GroupKind, Tenant
from core.errors import Conflict, InvalidInput
from core.ledger import group_has_entries_outside
from core.quarters import next_quarter_after, require_aligned
from core.text import require_clean_text

GROUP_EDITABLE_FIELDS = ("code", "name", "valid_from", "valid_until")


def tenant_get_or_create(*, code: str, name: str | None = None) -> tuple[Tenant, bool]:
    return Tenant.objects.get_or_create(code=code, defaults={"name": name or code})


@transaction.atomic
def api_client_create(
    *, tenant: Tenant, name: str, read_only: bool = False, actor="system:cli"
) -> tuple[ApiClient, str]:
    """Create an API client; the plain token is returned once and only its hash is stored."""
    key = ApiClient.generate_key()
    client = ApiClient.objects.create(
        tenant=tenant, name=name, read_only=read_only, key_prefix=key[:8], key_hash=ApiClient.hash_key(key)
    )
    audit_record(
        tenant=tenant, actor=actor, action=AuditAction.API_CLIENT_CREATE, obj=client, data={"read_only": read_only}
    )
    return client, key


@transaction.atomic
def api_client_revoke(*, client: ApiClient, actor) -> ApiClient:
    if client.revoked_at is None:
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
        audit_record(tenant=client.tenant, actor=actor, action=AuditAction.API_CLIENT_REVOKE, obj=client)
    return client


def _validate_code(code) -> str:
    code = (code or "").strip() if isinstance(code, str) else code
    if not isinstance(code, str) or not code:
        raise InvalidInput.for_field("code", "code is required.")
    if len(code) > 64 or any(ch.isspace() for ch in code):
        raise InvalidInput.for_field("code", "code must be at most 64 characters without spaces.")
    return require_clean_text(code, "code")


def _validate_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput.for_field("name", "name is required.")
    if len(name) > 200:
        raise InvalidInput.for_field("name", "name must be at most 200 characters.")
    return require_clean_text(name.strip(), "name")


def _validate_validity(valid_from, valid_until):
    valid_from = require_aligned(valid_from, "valid_from")
    if valid_until is not None:
        valid_until = require_aligned(valid_until, "valid_until")
        if valid_until <= valid_from:
            raise InvalidInput.for_field("valid_until", "valid_until must be after valid_from.")
    return valid_from, valid_until


@transaction.atomic
def group_create(
    *, tenant: Tenant, actor, code: str, name: str, kind: str, valid_from: dt.datetime, valid_until=None
) -> BalanceGroup:
    code = _validate_code(code)
    name = _validate_name(name)
    if kind not in GroupKind.values:
        raise InvalidInput.for_field("kind", f"kind must be one of {', '.join(GroupKind.values)}.")
    valid_from, valid_until = _validate_validity(valid_from, valid_until)
    if BalanceGroup.objects.filter(tenant=tenant, code=code).exists():
        raise InvalidInput.for_field("code", f"A group with code {code!r} exists already.")
    try:
        with transaction.atomic():
            group = BalanceGroup.objects.create(
                tenant=tenant, code=code, name=name, kind=kind, valid_from=valid_from, valid_until=valid_until
            )
    except IntegrityError:
        raise InvalidInput.for_field("code", f"A group with code {code!r} exists already.") from None
    audit_record(
        tenant=tenant, actor=actor, action=AuditAction.GROUP_CREATE, obj=group, data={"code": code, "kind": kind}
    )
    return group


@transaction.atomic
def group_update(*, group: BalanceGroup, actor, **changes) -> BalanceGroup:
    """Change code, name or validity. Validity may not cut off existing bookings."""
    unknown = set(changes) - set(GROUP_EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    group = BalanceGroup.objects.select_for_update().get(pk=group.pk)
    before = {field: str(getattr(group, field)) for field in changes}
    if "code" in changes:
        code = _validate_code(changes["code"])
        if BalanceGroup.objects.filter(tenant_id=group.tenant_id, code=code).exclude(pk=group.pk).exists():
            raise InvalidInput.for_field("code", f"A group with code {code!r} exists already.")
        group.code = code
    if "name" in changes:
        group.name = _validate_name(changes["name"])
    if "valid_from" in changes or "valid_until" in changes:
        valid_from, valid_until = _validate_validity(
            changes.get("valid_from", group.valid_from), changes.get("valid_until", group.valid_until)
        )
        if group_has_entries_outside(group=group, valid_from=valid_from, valid_until=valid_until):
            raise Conflict("The new validity would leave existing bookings outside it.")
        group.valid_from, group.valid_until = valid_from, valid_until
    group.save()
    after = {field: str(getattr(group, field)) for field in changes}
    audit_record(
        tenant=group.tenant,
        actor=actor,
        action=AuditAction.GROUP_UPDATE,
        obj=group,
        data={"before": before, "after": after},
    )
    return group


@transaction.atomic
def group_close(*, group: BalanceGroup, actor, until: dt.datetime | None = None) -> BalanceGroup:
    """Close every quarter-hour before ``until``; without it, close the whole group.

    Closing the whole group ends its validity at the next quarter-hour boundary (or its
    existing end) and closes everything before that. Closing never reopens.
    """
    group = BalanceGroup.objects.select_for_update().get(pk=group.pk)
    if until is None:
        until = group.valid_until or max(next_quarter_after(), group.valid_from)
        if group_has_entries_outside(group=group, valid_from=group.valid_from, valid_until=until):
            raise Conflict(f"The group has bookings after {until.isoformat()}; close it up to an instant instead.")
        group.valid_until = until
    else:
        until = require_aligned(until, "until")
    if group.closed_until and until < group.closed_until:
        raise InvalidInput.for_field(
            "until", f"The group is already closed until {group.closed_until.isoformat()}; closing never reopens."
        )
    group.closed_until = until
    group.save()
    audit_record(
        tenant=group.tenant, actor=actor, action=AuditAction.GROUP_CLOSE, obj=group, data={"until": until.isoformat()}
    )
    return group


@transaction.atomic
def group_delete(*, group: BalanceGroup, actor) -> None:
    """Delete a group nothing refers to (with its own rule versions); anything else is CONFLICT.

    The references are the database's: bookings and settlement targets protect the group.
    """
    audit_record(
        tenant=group.tenant, actor=actor, action=AuditAction.GROUP_DELETE, obj=group, data={"code": group.code}
    )
    try:
        with transaction.atomic():
            group.delete()
    except ProtectedError as error:
        used_by = sorted({str(obj._meta.verbose_name_plural) for obj in error.protected_objects})
        raise Conflict(
            f"Group {group.code} is referred to by {', '.join(used_by)} and cannot be deleted; close it instead."
        ) from None
