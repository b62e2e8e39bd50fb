"""Settlement rule versions: changing a rule and reading the rule in force."""

import datetime as dt

from django.db import transaction
from django.db.models import Q

from balance_groups.models import BalanceGroup, GroupKind
from bkm.audit import audit_record
from bkm.errors import InvalidInput
from bkm.quarters import next_quarter_after, require_aligned
from settlement.models import SettlementInterval, SettlementRule, SettlementTarget

FULL_SHARE = 10000


def rule_in_force(*, group: BalanceGroup, at: dt.datetime) -> SettlementRule | None:
    return (
        SettlementRule.objects.filter(group=group, effective_from__lte=at)
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=at))
        .prefetch_related("targets__parent")
        .first()
    )


def rules_in_force(*, tenant, at: dt.datetime):
    return (
        SettlementRule.objects.filter(tenant=tenant, effective_from__lte=at)
        .filter(Q(effective_until__isnull=True) | Q(effective_until__gt=at))
        .select_related("group")
        .prefetch_related("targets__parent")
    )


def _validate_targets(group: BalanceGroup, targets) -> list[tuple[BalanceGroup, int]]:
    if not targets:
        raise InvalidInput.for_field("targets", "At least one target is required.")
    cleaned = []
    seen = set()
    for parent, share in targets:
        if parent.tenant_id != group.tenant_id:
            raise InvalidInput.for_field("targets", "Target not found.")
        if parent.pk == group.pk:
            raise InvalidInput.for_field("targets", "A group cannot be settled onto itself.")
        if parent.kind != GroupKind.BALANCE:
            raise InvalidInput.for_field(
                "targets", f"Target {parent.code} is a {parent.kind}; targets must be balances."
            )
        if parent.pk in seen:
            raise InvalidInput.for_field("targets", f"Target {parent.code} is named twice.")
        if isinstance(share, bool) or not isinstance(share, int) or not 0 < share <= FULL_SHARE:
            raise InvalidInput.for_field("targets", "Each share is a whole number of basis points from 1 to 10000.")
        seen.add(parent.pk)
        cleaned.append((parent, share))
    if sum(share for _, share in cleaned) != FULL_SHARE:
        raise InvalidInput.for_field("targets", "Shares must sum to 10000 basis points.")
    return cleaned


def _creates_cycle(group: BalanceGroup, parents: list[BalanceGroup], effective_from: dt.datetime) -> bool:
    """Would settling ``group`` onto ``parents`` from ``effective_from`` close a loop?

    Conservative: every edge of a version still in force at or after ``effective_from`` counts.
    """
    edges: dict = {}
    live_targets = SettlementTarget.objects.filter(rule__tenant_id=group.tenant_id).filter(
        Q(rule__effective_until__isnull=True) | Q(rule__effective_until__gt=effective_from)
    )
    for child_id, parent_id in live_targets.exclude(rule__group=group).values_list("rule__group_id", "parent_id"):
        edges.setdefault(child_id, set()).add(parent_id)
    stack = [parent.pk for parent in parents]
    seen = set()
    while stack:
        node = stack.pop()
        if node == group.pk:
            return True
        if node in seen:
            continue
        seen.add(node)
        stack.extend(edges.get(node, ()))
    return False


@transaction.atomic
def rule_change(
    *,
    group: BalanceGroup,
    actor,
    targets: list[tuple[BalanceGroup, int]],
    interval: str = SettlementInterval.QUARTER_HOUR,
    effective_from: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> SettlementRule:
    """Add a rule version. A group's first version may start at its ``valid_from``; every
    later one starts no earlier than the next quarter-hour boundary after now."""
    group = BalanceGroup.objects.select_for_update().get(pk=group.pk)
    if interval not in SettlementInterval.values:
        raise InvalidInput.for_field("interval", f"interval must be one of {', '.join(SettlementInterval.values)}.")
    earliest_change = next_quarter_after(now)
    effective_from = earliest_change if effective_from is None else require_aligned(effective_from, "effective_from")
    cleaned = _validate_targets(group, targets)

    latest = SettlementRule.objects.filter(group=group).order_by("-effective_from").first()
    if latest is None:
        if effective_from < group.valid_from:
            raise InvalidInput.for_field(
                "effective_from",
                f"The first rule may start at the group's valid_from ({group.valid_from.isoformat()}) at the earliest.",
            )
    else:
        if effective_from < earliest_change:
            raise InvalidInput.for_field(
                "effective_from",
                f"A rule change takes effect at the next quarter-hour at the earliest ({earliest_change.isoformat()}); "
                "rules never change retroactively.",
            )
        if effective_from <= latest.effective_from:
            raise InvalidInput.for_field(
                "effective_from",
                f"A version starting {latest.effective_from.isoformat()} exists; a new version must start after it.",
            )
    if group.valid_until and effective_from >= group.valid_until:
        raise InvalidInput.for_field("effective_from", "The group is no longer valid at effective_from.")
    for parent, _ in cleaned:
        if parent.valid_from > effective_from or (parent.valid_until and parent.valid_until <= effective_from):
            raise InvalidInput.for_field(
                "targets", f"Target {parent.code} is not valid at {effective_from.isoformat()}."
            )
    if _creates_cycle(group, [parent for parent, _ in cleaned], effective_from):
        raise InvalidInput.for_field("targets", "This rule would create a cycle in the settlement hierarchy.")

    if latest is not None:
        latest.effective_until = effective_from
        latest.save(update_fields=["effective_until"])
    rule = SettlementRule.objects.create(
        tenant_id=group.tenant_id, group=group, interval=interval, effective_from=effective_from
    )
    SettlementTarget.objects.bulk_create(
        [SettlementTarget(rule=rule, parent=parent, share=share) for parent, share in cleaned]
    )
    audit_record(
        tenant=group.tenant,
        actor=actor,
        action="rule.change",
        obj=rule,
        data={
            "group": group.code,
            "interval": interval,
            "effective_from": effective_from.isoformat(),
            "targets": [{"parent": parent.code, "share": share} for parent, share in cleaned],
        },
    )
    return rule
