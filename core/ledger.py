"""The ledger as the apps below it see it, without importing it.

- ``ledger_changed``: every ledger write announces the lines it changed, inside its own
  transaction (and so does a first rule version that starts in the past, for the days it now
  settles); the settlement app registers the listener that marks the touched days for
  recomputation (``SettlementConfig.ready``). A write with no listener is a wiring error and fails
  loudly, so no change goes unseen.
- ``group_has_entries_outside``: whether a group has entries (ledger lines, measurements) outside
  a validity, so that group services can refuse a validity that would cut entries off; the apps
  that hold entries answer it (``TransactionsConfig.ready``, ``AllocationConfig.ready``).
"""

import datetime as dt
from collections.abc import Callable, Iterable

Listener = Callable[..., None]

_listeners: list[Listener] = []


def on_ledger_changed(listener: Listener) -> Listener:
    """Register ``listener(tenant_id=, windows=)``; registering twice has no effect."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


def ledger_changed(*, tenant_id, windows: Iterable[tuple[dt.datetime, dt.datetime]]) -> None:
    """Lines of ``tenant_id`` in these ``[start, end)`` windows changed (called once per write, inside
    its transaction: the days between two windows are not touched and not marked)."""
    if not _listeners:
        raise RuntimeError("No listener for ledger changes is registered; is the settlement app installed?")
    windows = list(windows)
    for listener in _listeners:
        listener(tenant_id=tenant_id, windows=windows)


OutsideCheck = Callable[..., bool]

_outside_checks: list[OutsideCheck] = []


def provide_entries_outside(check: OutsideCheck) -> OutsideCheck:
    """Register ``check(group=, valid_from=, valid_until=) -> bool``; registering twice has no effect."""
    if check not in _outside_checks:
        _outside_checks.append(check)
    return check


def group_has_entries_outside(*, group, valid_from: dt.datetime, valid_until: dt.datetime | None) -> bool:
    """Whether the group has entries before ``valid_from`` or at/after ``valid_until``."""
    if not _outside_checks:
        raise RuntimeError("No ledger answers for group entries; is the transactions app installed?")
    return any(check(group=group, valid_from=valid_from, valid_until=valid_until) for check in _outside_checks)
