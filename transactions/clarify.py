"""Who rebooks a clarification case whose payload is not a booking.

A case about a measurement is rebooked by the app that owns measurements (it registers itself in
its ``AppConfig.ready``), so this app resolves every case without importing the apps above it.
"""

from collections.abc import Callable

Rebook = Callable[..., str | None]

_rebooks: dict[str, Rebook] = {}


def provide_rebook(subject: str, rebook: Rebook) -> Rebook:
    """Register ``rebook(case=, actor=)`` for cases of ``subject``; it raises a ``BkmError`` to refuse
    and may return a short text of what it did, which leads the case's resolution note."""
    _rebooks[subject] = rebook
    return rebook


def rebook_for(subject: str) -> Rebook:
    try:
        return _rebooks[subject]
    except KeyError:
        raise RuntimeError(f"No rebook is registered for clarification cases about {subject!r}.") from None
