"""Marking ledger windows whose imbalances and settlements must be recomputed."""


def ledger_changed(*, tenant_id, start, end) -> None:
    """Called in the writing transaction whenever lines in ``[start, end)`` change."""
