"""The allocation of one quarter-hour: worked examples computed by hand, and its identities."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocation.engine.arithmetic import DYNAMIC, STATIC, STATIC_REDISTRIBUTED, allocate_quarter, largest_remainder

# (method, generation per source, consumption per consumer, shares, allocated, surplus, residual)
WORKED = {
    "dynamic covers everyone exactly": (
        DYNAMIC,
        [1000],
        [500, 300, 200],
        [3334, 3333, 3333],
        [[500, 300, 200]],
        [0],
        [0, 0, 0],
    ),
    "dynamic in proportion to consumption": (
        DYNAMIC,
        [1000],
        [600, 400, 1000],
        [3334, 3333, 3333],
        [[300, 200, 500]],
        [0],
        [300, 200, 500],
    ),
    # 2 Wh over three equal needs of 1: quotas 2/3 each, the two leftover Wh to the first listed.
    "dynamic tie goes to the consumer listed first": (
        DYNAMIC,
        [2],
        [1, 1, 1],
        [3334, 3333, 3333],
        [[1, 1, 0]],
        [0],
        [0, 0, 1],
    ),
    # 10 over 3,3,3,3: quotas 2.5 each, floors 2, two leftover Wh to the first two.
    "dynamic tie with several leftovers": (DYNAMIC, [10], [3, 3, 3, 3], [2500] * 4, [[3, 3, 2, 2]], [0], [0, 0, 1, 1]),
    "dynamic surplus when generation exceeds demand": (
        DYNAMIC,
        [100],
        [1, 1, 1],
        [3334, 3333, 3333],
        [[1, 1, 1]],
        [97],
        [0, 0, 0],
    ),
    # Shares 50/30/20 % of 1000 = 500/300/200, capped at 200 and 100: 400 surplus.
    "static caps at consumption, the rest is surplus": (
        STATIC,
        [1000],
        [200, 500, 100],
        [5000, 3000, 2000],
        [[200, 300, 100]],
        [400],
        [0, 200, 0],
    ),
    # 7 Wh by 3334/3333/3333: 2.3338, 2.3331, 2.3331 -> 2/2/2, the leftover to the largest remainder.
    "static largest remainder": (STATIC, [7], [10, 10, 10], [3334, 3333, 3333], [[3, 2, 2]], [0], [7, 8, 8]),
    # Round 1 as static (200/300/100, 400 left); round 2 offers 400 to the only uncovered consumer,
    # who takes the 200 it lacks; 200 stay surplus.
    "redistributed until everyone is covered": (
        STATIC_REDISTRIBUTED,
        [1000],
        [200, 500, 100],
        [5000, 3000, 2000],
        [[200, 500, 100]],
        [200],
        [0, 0, 0],
    ),
    # Round 1: 500/300/200 capped to 100/300/200, 400 left. Round 2: 400 by 3000:2000 = 240/160,
    # capped to 50/160, 190 left. Round 3: 190 to the last uncovered consumer. Nothing left.
    "redistributed over three rounds": (
        STATIC_REDISTRIBUTED,
        [1000],
        [100, 350, 1000],
        [5000, 3000, 2000],
        [[100, 350, 550]],
        [0],
        [0, 0, 450],
    ),
    # PV first (300 of 600 demand: 200/100), the battery covers the rest and has 200 surplus.
    "two sources in priority order": (
        DYNAMIC,
        [300, 500],
        [400, 200],
        [5000, 5000],
        [[200, 100], [200, 100]],
        [0, 200],
        [0, 0],
    ),
    "a measured zero consumption gets nothing": (
        STATIC_REDISTRIBUTED,
        [90],
        [0, 100],
        [5000, 5000],
        [[0, 90]],
        [0],
        [0, 10],
    ),
    "no generation: everything is residual": (DYNAMIC, [0], [40, 0], [5000, 5000], [[0, 0]], [0], [40, 0]),
    "a consumer with share 0 is not offered the rest": (
        STATIC_REDISTRIBUTED,
        [100],
        [10, 100],
        [10000, 0],
        [[10, 0]],
        [90],
        [0, 100],
    ),
}


@pytest.mark.parametrize("case", WORKED.values(), ids=WORKED.keys())
def test_worked_example(case):
    method, generation, consumption, shares, allocated, surplus, residual = case
    result = allocate_quarter(method, generation, consumption, shares)
    assert (result.allocated, result.surplus, result.residual) == (allocated, surplus, residual)


def test_largest_remainder_sums_to_the_total_and_breaks_ties_by_position():
    assert largest_remainder(5, [1, 1, 1]) == [2, 2, 1]
    assert largest_remainder(0, [3, 0]) == [0, 0]
    assert sum(largest_remainder(10**15 + 7, [3, 7, 11])) == 10**15 + 7


def test_an_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown allocation method"):
        allocate_quarter("equal", [1], [1], [10000])


@st.composite
def quarters(draw):
    consumers = draw(st.integers(min_value=1, max_value=8))
    cuts = sorted(draw(st.lists(st.integers(0, 10000), min_size=consumers - 1, max_size=consumers - 1)))
    shares = [b - a for a, b in zip([0, *cuts], [*cuts, 10000], strict=True)]
    energy = st.integers(min_value=0, max_value=draw(st.sampled_from([3, 100, 10**6, 10**12])))
    return (
        draw(st.sampled_from([DYNAMIC, STATIC, STATIC_REDISTRIBUTED])),
        draw(st.lists(energy, min_size=1, max_size=3)),
        draw(st.lists(energy, min_size=consumers, max_size=consumers)),
        shares,
    )


@settings(max_examples=2000, deadline=None)
@given(quarters())
def test_the_identities_hold_exactly(case):
    method, generation, consumption, shares = case
    result = allocate_quarter(method, generation, consumption, shares)
    need = list(consumption)
    for g, parts, surplus in zip(generation, result.allocated, result.surplus, strict=True):
        assert sum(parts) + surplus == g
        assert surplus >= 0
        assert all(0 <= part <= c for part, c in zip(parts, need, strict=True))
        need = [c - part for c, part in zip(need, parts, strict=True)]
    for i, c in enumerate(consumption):
        assert sum(parts[i] for parts in result.allocated) + result.residual[i] == c
        assert result.residual[i] >= 0
    if method != STATIC:
        # Sharing methods leave no surplus while a consumer (with a share, for redistribution) is uncovered.
        uncovered = [i for i, r in enumerate(result.residual) if r and (method == DYNAMIC or shares[i])]
        assert not (uncovered and any(result.surplus))
