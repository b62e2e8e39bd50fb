import datetime as dt
import re

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from balance_groups.audit import audit_record
from balance_groups.models import ApiClient, AuditAction, BalanceGroup, GroupKind, Tenant
from core.errors import Conflict, InvalidInput
from core.ledger import group_has_entries_outside
from core.quarters import next_quarter_after, require_aligned
from core.text import instant_text, require_clean_text

GROUP_EDITABLE_FIELDS = ("code", "name", "valid_from", "valid_until", "metering_point")
# MaLo (11 digits), MeLo (33 characters, e.g. DE0001234567890000000000000000001) and other meter ids.
METERING_POINT = re.compile(r"[A-Za-z0-9]{1,64}")


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
        raise InvalidInput.for_field("code", _("A code is required."))
    if len(code) > 64 or any(ch.isspace() for ch in code):
        raise InvalidInput.for_field("code", _("The code may have at most 64 characters and no spaces."))
    return require_clean_text(code, "code")


def _validate_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput.for_field("name", _("A name is required."))
    if len(name) > 200:
        raise InvalidInput.for_field("name", _("The name may have at most 200 characters."))
    return require_clean_text(name.strip(), "name")


def _validate_metering_point(value) -> str | None:
    """Optional (None or blank: none); letters and digits only, as market messages carry MaLo and MeLo ids."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput.for_field("metering_point", _("The metering point must be text."))
    value = value.strip()
    if not value:
        return None
    if not METERING_POINT.fullmatch(value):
        raise InvalidInput.for_field(
            "metering_point",
            _("The metering point is at most 64 letters or digits (a MaLo or MeLo id), without spaces."),
        )
    return value


def _refuse_ambiguous_reference(tenant_id, *, code: str | None, metering_point: str | None, exclude=None) -> None:
    """A reference names one group: code and metering point are each unique and never another group's other one."""
    others = BalanceGroup.objects.filter(tenant_id=tenant_id)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    if code is not None:
        if others.filter(code=code).exists():
            raise InvalidInput.for_field("code", _("A group with code %(code)s exists already.") % {"code": repr(code)})
        if others.filter(metering_point=code).exists():
            raise InvalidInput.for_field(
                "code", _("%(code)s is the metering point of another group.") % {"code": repr(code)}
            )
    if metering_point is not None:
        if others.filter(metering_point=metering_point).exists():
            raise InvalidInput.for_field(
                "metering_point",
                _("Another group has the metering point %(metering_point)s already.")
                % {"metering_point": repr(metering_point)},
            )
        if others.filter(code=metering_point).exists():
            message = _("%(metering_point)s is the code of another group.")
            raise InvalidInput.for_field("metering_point", message % {"metering_point": repr(metering_point)})


def _validate_validity(valid_from, valid_until):
    valid_from = require_aligned(valid_from, "valid_from")
    if valid_until is not None:
        valid_until = require_aligned(valid_until, "valid_until")
        if valid_until <= valid_from:
            raise InvalidInput.for_field("valid_until", _("The end of validity must be after its start."))
    return valid_from, valid_until


def _taken_meanwhile() -> InvalidInput:
    message = _("Another group took this code or metering point meanwhile.")
    return InvalidInput(message, errors={"code": [message], "metering_point": [message]})


@transaction.atomic
def group_create(
    *,
    tenant: Tenant,
    actor,
    code: str,
    name: str,
    kind: str,
    valid_from: dt.datetime,
    valid_until=None,
    metering_point: str | None = None,
) -> BalanceGroup:
    code = _validate_code(code)
    name = _validate_name(name)
    if kind not in GroupKind.values:
        raise InvalidInput.for_field(
            "kind", _("The kind must be one of %(choices)s.") % {"choices": ", ".join(GroupKind.values)}
        )
    valid_from, valid_until = _validate_validity(valid_from, valid_until)
    metering_point = _validate_metering_point(metering_point)
    _refuse_ambiguous_reference(tenant.pk, code=code, metering_point=metering_point)
    try:
        with transaction.atomic():
            group = BalanceGroup.objects.create(
                tenant=tenant,
                code=code,
                name=name,
                kind=kind,
                valid_from=valid_from,
                valid_until=valid_until,
                metering_point=metering_point,
            )
    except IntegrityError:
        # A concurrent write took the code or metering point between the check and the insert: name it.
        _refuse_ambiguous_reference(tenant.pk, code=code, metering_point=metering_point)
        raise _taken_meanwhile() from None
    data = {"code": code, "kind": kind}
    if metering_point:
        data["metering_point"] = metering_point
    audit_record(tenant=tenant, actor=actor, action=AuditAction.GROUP_CREATE, obj=group, data=data)
    return group


@transaction.atomic
def group_update(*, group: BalanceGroup, actor, **changes) -> BalanceGroup:
    """Change code, name, validity or metering point. Validity may not cut off existing bookings."""
    unknown = set(changes) - set(GROUP_EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(_("These fields cannot be changed: %(fields)s.") % {"fields": ", ".join(sorted(unknown))})
    group = BalanceGroup.objects.select_for_update().get(pk=group.pk)
    before = {field: str(getattr(group, field)) for field in changes}
    if "code" in changes:
        code = _validate_code(changes["code"])
        _refuse_ambiguous_reference(group.tenant_id, code=code, metering_point=None, exclude=group.pk)
        group.code = code
    if "metering_point" in changes:
        metering_point = _validate_metering_point(changes["metering_point"])
        _refuse_ambiguous_reference(group.tenant_id, code=None, metering_point=metering_point, exclude=group.pk)
        group.metering_point = metering_point
    if "name" in changes:
        group.name = _validate_name(changes["name"])
    if "valid_from" in changes or "valid_until" in changes:
        valid_from, valid_until = _validate_validity(
            changes.get("valid_from", group.valid_from), changes.get("valid_until", group.valid_until)
        )
        if group_has_entries_outside(group=group, valid_from=valid_from, valid_until=valid_until):
            raise Conflict(_("The new validity would leave existing bookings or measurements outside it."))
        group.valid_from, group.valid_until = valid_from, valid_until
    try:
        with transaction.atomic():
            group.save()
    except IntegrityError:
        # A concurrent write took the code or metering point between the check and the save: name it.
        _refuse_ambiguous_reference(
            group.tenant_id, code=group.code, metering_point=group.metering_point, exclude=group.pk
        )
        raise _taken_meanwhile() from None
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
            raise Conflict(
                _("The group has bookings or measurements after %(until)s; close it up to a point in time instead.")
                % {"until": instant_text(until)}
            )
        group.valid_until = until
    else:
        until = require_aligned(until, "until")
    if group.closed_until and until < group.closed_until:
        raise InvalidInput.for_field(
            "until",
            _("The group is already closed until %(closed_until)s; closing never reopens.")
            % {"closed_until": instant_text(group.closed_until)},
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
            _("Group %(code)s is referred to by %(used_by)s and cannot be deleted; close it instead.")
            % {"code": group.code, "used_by": ", ".join(used_by)}
        ) from None
