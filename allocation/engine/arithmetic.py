"""The allocation of one quarter-hour, exactly (DOMAIN.md, "Allocation schemes").

Pure integer arithmetic, no database: for each source in priority order its generation G is
shared among the consumption not yet covered, so that per quarter-hour

    Σ_i a_si + surplus_s = G_s          for every source s
    Σ_s a_si + residual_i = C_i         for every consumer i
    0 ≤ a_si ≤ what i still needed when s was shared

Proportional parts use the largest-remainder method; a tie in the remainders goes to the consumer
listed first. The methods:

- ``dynamic``: G in proportion to each consumer's uncovered consumption (all of it when G covers
  everyone; the rest is surplus).
- ``static``: G by the fixed shares; a part larger than the consumer's uncovered consumption is
  cut there and the difference is surplus.
- ``static_redistributed``: the first round is ``static``; what the cut parts left is offered
  again to the consumers not yet covered, in proportion to their shares, round after round,
  until nothing is left or everyone is covered (or only consumers with share 0 remain).
"""

from dataclasses import dataclass

DYNAMIC, STATIC, STATIC_REDISTRIBUTED = "dynamic", "static", "static_redistributed"


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` ≥ 0 in proportion to ``weights`` ≥ 0 (not all 0); parts sum to ``total``."""
    weight = sum(weights)
    exact = [total * w for w in weights]
    parts = [value // weight for value in exact]
    leftover = total - sum(parts)
    if leftover:
        order = sorted(range(len(weights)), key=lambda i: (-(exact[i] % weight), i))
        for i in order[:leftover]:
            parts[i] += 1
    return parts


@dataclass
class QuarterAllocation:
    allocated: list[list[int]]  # [source][consumer] Wh
    surplus: list[int]  # [source] Wh
    residual: list[int]  # [consumer] Wh


def _share_dynamic(generation: int, need: list[int]) -> list[int]:
    demand = sum(need)
    if generation >= demand:
        return list(need)
    return largest_remainder(generation, need)  # each part < its need: G·c_i/Σc < c_i


def _share_static(generation: int, need: list[int], shares: list[int]) -> list[int]:
    parts = largest_remainder(generation, shares)
    return [min(part, c) for part, c in zip(parts, need, strict=True)]


def _share_redistributed(generation: int, need: list[int], shares: list[int]) -> list[int]:
    given = _share_static(generation, need, shares)
    left = generation - sum(given)
    while left:
        open_ = [i for i, c in enumerate(need) if given[i] < c and shares[i] > 0]
        if not open_:
            break
        parts = largest_remainder(left, [shares[i] for i in open_])
        handed = 0
        for i, part in zip(open_, parts, strict=True):
            take = min(part, need[i] - given[i])
            given[i] += take
            handed += take
        left -= handed  # every round covers someone or hands out all that is left: it ends
    return given


def allocate_quarter(
    method: str, generation: list[int], consumption: list[int], shares: list[int]
) -> QuarterAllocation:
    """Allocate one quarter-hour: ``generation`` per source in priority order, ``consumption`` and
    ``shares`` (basis points) per consumer in their listed order."""
    need = list(consumption)
    allocated, surplus = [], []
    for g in generation:
        if method == DYNAMIC:
            parts = _share_dynamic(g, need)
        elif method == STATIC:
            parts = _share_static(g, need, shares)
        elif method == STATIC_REDISTRIBUTED:
            parts = _share_redistributed(g, need, shares)
        else:
            raise ValueError(f"unknown allocation method {method!r}")
        allocated.append(parts)
        surplus.append(g - sum(parts))
        need = [c - part for c, part in zip(need, parts, strict=True)]
    return QuarterAllocation(allocated, surplus, need)
