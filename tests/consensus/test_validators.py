"""Proposer rotation and set changes reproduce CometBFT's published test cases
(cometbft types/validator_set_test.go and state/state_test.go at 5bba72c), and quorums are
exact with uneven stakes."""
import random

import pytest

from consensus import InvalidValidatorSet, Validator, ValidatorSet
from consensus.validators import INT64_MAX, INT64_MIN, MAX_TOTAL_VOTING_POWER, _go_div


def v(name, power):
    return Validator(name if isinstance(name, bytes) else name.encode(), power)


def names(vs):
    return [(x.address.decode(), x.power) for x in vs]


def sequence(vs, count):
    out = []
    for _ in range(count):
        out.append(vs.proposer.address)
        vs = vs.increment(1)
    return out


def test_proposer_selection_1():
    """TestProposerSelection1: the 99-proposer sequence of foo/bar/baz with powers 1000/300/330."""
    vs = ValidatorSet([v("foo", 1000), v("bar", 300), v("baz", 330)])
    expected = ("foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar"
                " foo foo baz foo bar foo foo baz foo bar foo foo baz foo foo bar foo baz foo foo bar"
                " foo baz foo foo bar foo baz foo foo bar foo baz foo foo foo baz bar foo foo foo baz"
                " foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo bar foo foo baz foo"
                " foo bar foo baz foo foo bar foo baz foo foo bar foo baz foo foo")
    assert b" ".join(sequence(vs, 99)).decode() == expected


def test_proposer_selection_2():
    """TestProposerSelection2: equal powers go in address order; 400 of 600 is not enough to
    propose twice in a row, 401 is; 4/5/3 propose 40/50/30 of 120 times."""
    a0, a1, a2 = bytes(19) + b"\x00", bytes(19) + b"\x01", bytes(19) + b"\x02"
    vs = ValidatorSet([v(a0, 100), v(a1, 100), v(a2, 100)])
    assert sequence(vs, 15) == [a0, a1, a2] * 5
    vs = ValidatorSet([v(a0, 100), v(a1, 100), v(a2, 400)])
    assert sequence(vs, 2) == [a2, a0]
    vs = ValidatorSet([v(a0, 100), v(a1, 100), v(a2, 401)])
    assert sequence(vs, 3) == [a2, a2, a0]
    vs = ValidatorSet([v(a0, 4), v(a1, 5), v(a2, 3)])
    seq = sequence(vs, 120)
    assert (seq.count(a0), seq.count(a1), seq.count(a2)) == (40, 50, 30)


def test_proposer_selection_3_order_is_stable_whatever_the_steps():
    """TestProposerSelection3: with equal powers the order repeats, however many steps each call
    makes (here: a seeded mix of 1 to 4), and a set rebuilt from its stored priorities agrees."""
    vs = ValidatorSet([v(f"{c}validator_address12", 1) for c in "abcd"])
    order = sequence(vs, 4)
    rng = random.Random(5)
    j = 0
    for _ in range(2000):
        assert vs.proposer.address == order[j % 4]
        stored = ValidatorSet.with_priorities(zip(vs.validators, vs.priorities), vs.proposer.address)
        assert stored == vs and stored.increment(3) == vs.increment(3)
        assert stored.proposer.address == vs.proposer.address
        times = rng.randint(1, 4)
        vs = vs.increment(times)
        j += times


@pytest.mark.parametrize("priorities, times, avg", [
    ((1, 2, 3), 1, 2),
    ((10, -10, 1), 11, 0),
    ((100, -10, 1), 1, 91 // 3),
])
def test_averaging_in_increment(priorities, times, avg):
    """TestAveragingInIncrementProposerPriority: zero powers only shift by the average."""
    vals = [v(n, 0) for n in "abc"]
    vs = ValidatorSet._of(tuple(vals), priorities)
    after = vs.increment(times)
    for val, before in zip(vals, priorities):
        assert after.priority_of(val.address) == before - avg


def test_averaging_with_voting_power():
    """TestAveragingInIncrementProposerPriorityWithVotingPower: powers 10/1/1, 1 to 11 steps."""
    vp0, vp1, vp2 = 10, 1, 1
    total = 12
    vals = (Validator(b"\x00", vp0), Validator(b"\x01", vp1), Validator(b"\x02", vp2))
    base = ValidatorSet._of(vals, (0, 0, 0))
    cases = [
        (1, (vp0 - total, vp1, vp2), 0), (2, (2 * (vp0 - total), 2 * vp1, 2 * vp2), 0),
        (3, (3 * (vp0 - total), 3 * vp1, 3 * vp2), 0), (4, (4 * (vp0 - total), 4 * vp1, 4 * vp2), 0),
        (5, (4 * (vp0 - total) + vp0, 5 * vp1 - total, 5 * vp2), 1),
        (6, (6 * vp0 - 5 * total, 6 * vp1 - total, 6 * vp2), 0),
        (7, (7 * vp0 - 6 * total, 7 * vp1 - total, 7 * vp2), 0),
        (8, (8 * vp0 - 7 * total, 8 * vp1 - total, 8 * vp2), 0),
        (9, (9 * vp0 - 7 * total, 9 * vp1 - total, 9 * vp2 - total), 2),
        (10, (10 * vp0 - 8 * total, 10 * vp1 - total, 10 * vp2 - total), 0),
        (11, (11 * vp0 - 9 * total, 11 * vp1 - total, 11 * vp2 - total), 0),
    ]
    for times, priorities, proposer in cases:
        after = base.increment(times)
        assert after.priorities == priorities, times
        assert after.proposer == vals[proposer], times


def test_priority_is_not_reset_when_the_set_changes():
    """TestProposerPriorityDoesNotGetResetToZero: a joining validator starts at -1.125 * total,
    priorities are centred (floor) and rescaled (truncating toward zero, as Go divides)."""
    val1 = Validator(b"\x01" * 20, 10)
    state = ValidatorSet([val1])
    state = state.next_height()  # one validator: 0 + 10 - 10
    assert state.priorities == (0,)
    val2 = Validator(b"\x02" * 20, 100)
    state = state.next_height([val2])
    total = 110
    want2 = -(total + (total >> 3))  # -123
    avg = (0 + want2) // 2  # -62 (big.Int division floors)
    want1, want2 = 0 - avg, want2 - avg  # 62, -61
    want1, want2 = want1 + 10 - total, want2 + 100  # val1 proposes: -38, 39
    assert (state.priority_of(val1.address), state.priority_of(val2.address)) == (want1, want2) == (-38, 39)
    state = state.next_height([Validator(val2.address, 1)])
    # diff 77 > 2 * 11: ratio ceil(77 / 22) = 4; -38 / 4 = -9 in Go (truncation), not -10
    assert _go_div(-38, 4) == -9 and _go_div(39, 4) == 9
    want1, want2 = -9 + 10, 9 + 1 - 11
    assert (state.priority_of(val1.address), state.priority_of(val2.address)) == (want1, want2) == (1, -1)


def test_new_validator_sets_refuse_bad_members():
    """TestUpdatesForNewValidatorSet and the overflow tests."""
    ValidatorSet([v("v1", 100), v("v2", 100)])
    for bad in ([v("v1", 100), v("v1", 123)], [v("v1", 0), v("v2", 22)], [v("v1", 10), v("v2", -20)], [],
                [v("a", MAX_TOTAL_VOTING_POWER), v("b", 1)], [v("a", INT64_MAX)], [v("a", 1.5)], [Validator(b"", 1)]):
        with pytest.raises(InvalidValidatorSet):
            ValidatorSet(bad)


@pytest.mark.parametrize("start, update, expected", [
    ([("v4", 44), ("v5", 55)], [("v1", 11)], [("v1", 11), ("v4", 44), ("v5", 55)]),
    ([("v4", 44), ("v6", 66)], [("v5", 55)], [("v4", 44), ("v5", 55), ("v6", 66)]),
    ([("v1", 111), ("v2", 22)], [("v1", 11)], [("v1", 11), ("v2", 22)]),
    ([("v1", 11), ("v2", 222), ("v3", 33)], [("v2", 22)], [("v1", 11), ("v2", 22), ("v3", 33)]),
    ([("v1", 111), ("v2", 22)], [("v1", 11), ("v3", 33), ("v4", 44)], [("v1", 11), ("v2", 22), ("v3", 33), ("v4", 44)]),
    ([("v1", 11), ("v2", 22)], [("v1", 0)], [("v2", 22)]),
])
def test_updates_add_change_and_remove(start, update, expected):
    """TestValSetApplyUpdatesTestsExecute (kept in CometBFT's power-descending order)."""
    vs = ValidatorSet([v(n, p) for n, p in start]).update([v(n, p) for n, p in update])
    assert names(vs) == sorted(expected, key=lambda e: (-e[1], e[0]))
    assert -len(vs) < sum(vs.priorities) < len(vs)  # centred
    assert max(vs.priorities) - min(vs.priorities) <= 2 * vs.total_power  # scaled


@pytest.mark.parametrize("start, changes", [
    ([("v1", 10), ("v2", 10)], [("v1", 10), ("v1", 20)]),  # duplicate
    ([("v1", 10)], [("v1", 0)]),  # would be empty
    ([("v1", 10)], [("v2", 0)]),  # removes a stranger
    ([("v1", 10)], [("v2", -5)]),
    ([("v1", 10)], [("v2", MAX_TOTAL_VOTING_POWER)]),  # total over the cap
])
def test_bad_updates_are_refused(start, changes):
    vs = ValidatorSet([v(n, p) for n, p in start])
    with pytest.raises(InvalidValidatorSet):
        vs.update([v(n, p) for n, p in changes])


@pytest.mark.parametrize("start, removed, updated, added", [
    ([("v3", 1000), ("v1", 1), ("v2", 1)], ["v3"], [], []),
    ([("v3", 1000), ("v2", 10), ("v1", 1)], ["v3"], [], []),
    ([("v3", 1000), ("v2", 2), ("v1", 1)], ["v3"], [("v2", 1)], [("v5", 50), ("v4", 40)]),
])
def test_added_validators_start_last(start, removed, updated, added):
    """TestValSetUpdatePriorityOrderTests: after any number of elections, new validators get the
    lowest (and equal) priorities."""
    vs = ValidatorSet([v(n, p) for n, p in start]).increment(random.Random(len(start)).randint(1, 5000))
    changes = [v(n, 0) for n in removed] + [v(n, p) for n, p in updated + added]
    vs = vs.update(changes)
    if added:
        lowest = sorted(vs.validators, key=lambda x: vs.priority_of(x.address))[:len(added)]
        assert {x.address.decode() for x in lowest} == {n for n, _ in added}
        assert len({vs.priority_of(x.address) for x in lowest}) == 1


def test_proposer_of_a_round_is_the_set_advanced_that_many_times():
    vs = ValidatorSet([v("a", 5), v("b", 3), v("c", 1), v("d", 1)])
    for r in range(12):
        assert vs.proposer_for_round(r) == (vs.increment(r).proposer if r else vs.proposer)
    # the next height starts from the height's set advanced once, whatever round decided
    assert vs.next_height().proposer == vs.increment(1).proposer


def test_clipping_keeps_priorities_in_int64():
    vs = ValidatorSet._of((v("a", MAX_TOTAL_VOTING_POWER // 2), v("b", 1)), (INT64_MAX - 5, INT64_MIN + 5))
    after = vs.increment(3)
    assert all(INT64_MIN <= p <= INT64_MAX for p in after.priorities)


@pytest.mark.parametrize("powers, two_thirds, one_third", [
    ([1, 1, 1, 1], 3, 2),  # 4 equal: 3 is a quorum, 2 is more than a third
    ([10, 1, 1, 1], 9, 5),  # total 13: 9 * 3 = 27 > 26; 5 * 3 = 15 > 13, 4 * 3 = 12 is not
    ([3, 3, 3], 7, 4),  # total 9: exactly 2/3 (6) is not enough, nor exactly 1/3 (3)
    ([5, 2, 2, 1, 1, 1, 1], 9, 5),  # total 13
    ([2, 1], 3, 2),  # total 3: 2 is exactly 2/3, not more
    ([10**15, 10**15, 10**15 + 1], 2 * 10**15 + 1, 10**15 + 1),  # total 3 * 10**15 + 1
])
def test_quorum_thresholds_with_uneven_stakes(powers, two_thirds, one_third):
    vs = ValidatorSet([v(f"v{i}", p) for i, p in enumerate(powers)])
    assert vs.has_two_thirds(two_thirds) and not vs.has_two_thirds(two_thirds - 1)
    assert vs.has_one_third(one_third) and not vs.has_one_third(one_third - 1)


def test_set_hash_names_members_and_powers():
    a = ValidatorSet([v("a", 1), v("b", 2)])
    assert a.hash() == ValidatorSet([v("b", 2), v("a", 1)]).hash() == a.increment(3).hash()
    assert a.hash() != ValidatorSet([v("a", 2), v("b", 2)]).hash()
