"""Integer apportioning: exactly 1,000,000 ppm, proportional within one unit, deterministic ties."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from attribution import PPM, apportion, cap_owners

keys = st.binary(min_size=32, max_size=32)
scores = st.dictionaries(keys, st.integers(min_value=1, max_value=10**30), min_size=1, max_size=40)


@given(scores, st.integers(min_value=0, max_value=10**12))
def test_sums_exactly_and_stays_within_one_unit_of_proportional(s, total):
    shares = apportion(s, total)
    assert sum(shares.values()) == total
    whole = sum(s.values())
    for k, v in s.items():
        assert total * v // whole <= shares[k] <= total * v // whole + 1


@given(scores, st.randoms())
def test_independent_of_input_order(s, rnd):
    items = list(s.items())
    rnd.shuffle(items)
    assert apportion(dict(items)) == apportion(s)


@given(st.lists(keys, min_size=2, max_size=30, unique=True))
def test_equal_scores_give_leftover_units_to_smaller_ids(ids):
    shares = apportion({k: 1 for k in ids})
    base = PPM // len(ids)
    extra = PPM - base * len(ids)
    assert [shares[k] for k in sorted(ids)] == [base + 1] * extra + [base] * (len(ids) - extra)


def test_bad_scores_are_refused():
    with pytest.raises(ValueError, match="positive"):
        apportion({b"a" * 32: 0})
    with pytest.raises(ValueError, match="no scores"):
        apportion({})
    with pytest.raises(ValueError, match="total"):
        apportion({b"a" * 32: 1}, -5)


@given(
    st.dictionaries(keys, st.integers(min_value=1, max_value=PPM), min_size=1, max_size=20),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=PPM),
    st.randoms(),
)
def test_owner_cap_keeps_total_and_bounds_each_owner(raw, owners, cap, rnd):
    weights = apportion(raw)
    owner = {k: bytes([rnd.randrange(owners)]) * 20 for k in sorted(weights)}
    capped = cap_owners(weights, owner, cap)
    assert sum(capped.values()) == PPM
    per_owner: dict[bytes, int] = {}
    for k, w in capped.items():
        per_owner[owner[k]] = per_owner.get(owner[k], 0) + w
    present = len({owner[k] for k in weights})
    assert max(per_owner.values()) <= max(cap, -(-PPM // present))
    assert cap_owners(weights, owner, cap) == capped


def test_cap_moves_excess_to_other_owners():
    weights = {b"\x01" * 32: 700_000, b"\x02" * 32: 200_000, b"\x03" * 32: 100_000}
    owner = {b"\x01" * 32: b"A" * 20, b"\x02" * 32: b"B" * 20, b"\x03" * 32: b"C" * 20}
    assert cap_owners(weights, owner, 400_000) == {b"\x01" * 32: 400_000, b"\x02" * 32: 400_000, b"\x03" * 32: 200_000}
    # infeasible cap (3 x 300,000 < 1,000,000) is raised to ceil(1e6 / 3); C takes what is left
    assert cap_owners(weights, owner, 300_000) == {b"\x01" * 32: 333_334, b"\x02" * 32: 333_334, b"\x03" * 32: 333_332}
