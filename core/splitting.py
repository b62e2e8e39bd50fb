"""Exact splitting of integer energy: the parts always sum to the whole.

The one implementation of both rules; every writer (single bookings, bulk ingestion, settlement)
takes its quarter-hour lines from ``quarter_parts``.
"""

from core.quarters import QUARTER_SECONDS


def split_energy(total_wh: int, parts: int) -> list[int]:
    """Split an integer total into ``parts`` integers that sum exactly to it.

    Every part gets the integer base; the remainder goes one Wh each to the first parts, so
    the result is deterministic and the largest and smallest part differ by at most 1 Wh.
    """
    if parts <= 0:
        raise ValueError("parts must be positive")
    base, remainder = divmod(total_wh, parts)
    return [base + 1 if i < remainder else base for i in range(parts)]


def split_by_shares(total_wh: int, shares: list[int]) -> list[int]:
    """Split an integer total by basis-point shares (summing to 10000), exactly.

    Largest-remainder method with ties broken by position, so the parts always sum to the
    total and the result is deterministic. Works for negative totals too (sign is kept).
    """
    if sum(shares) != 10000:
        raise ValueError("shares must sum to 10000")
    sign = -1 if total_wh < 0 else 1
    magnitude = abs(total_wh)
    exact = [magnitude * share for share in shares]
    parts = [value // 10000 for value in exact]
    leftover = magnitude - sum(parts)
    order = sorted(range(len(shares)), key=lambda i: (-(exact[i] % 10000), i))
    for i in order[:leftover]:
        parts[i] += 1
    return [sign * part for part in parts]


def quarter_parts(start_epoch: int, end_epoch: int, total_wh: int) -> list[tuple[int, int]]:
    """``(quarter start epoch, Wh)`` per quarter-hour of ``[start, end)`` by ``split_energy``.

    A quarter-hour whose part is 0 Wh is left out (3 Wh over an hour are 1/1/1), so a stored
    line always carries energy; the parts still sum to ``total_wh``.
    """
    parts = split_energy(total_wh, (end_epoch - start_epoch) // QUARTER_SECONDS)
    return [(start_epoch + i * QUARTER_SECONDS, part) for i, part in enumerate(parts) if part]
