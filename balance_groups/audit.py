"""The audit trail: every write records who did what, in the same transaction."""

from balance_groups.models import ApiClient, AuditAction, AuditEntry, User

SYSTEM = "system"
ACTIONS = frozenset(AuditAction.values)


def actor_label(actor) -> str:
    """A short, stable description of the acting principal."""
    if isinstance(actor, User):
        return f"user:{actor.get_username()}"
    if isinstance(actor, ApiClient):
        return f"client:{actor.name}"
    if isinstance(actor, str):
        return actor if ":" in actor else f"{SYSTEM}:{actor}"
    return f"{SYSTEM}:unknown"


def audit_record(*, tenant, actor, action: AuditAction, obj, data: dict | None = None) -> AuditEntry:
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}: add it to AuditAction.")
    return AuditEntry.objects.create(
        tenant=tenant,
        actor=actor_label(actor),
        user=actor if isinstance(actor, User) else None,
        api_client=actor if isinstance(actor, ApiClient) else None,
        action=action,
        object_type=type(obj).__name__,
        object_id=str(obj.pk),
        data=data or {},
    )
