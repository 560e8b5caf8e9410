"""Vote sets: stake-weighted tallies, duplicates, equivocation, and the round-skip power."""
import pytest

from consensus import HeightVotes, Vote, VoteSet, VoteType
from consensus.messages import keccak, sign_vote
from consensus.votes import Added
from tests.consensus.app import CHAIN_ID, address, private_key, validator_set

A, B = keccak(b"a"), keccak(b"b")


def vote(i, block, round_=0, type_=VoteType.PREVOTE, height=1):
    return sign_vote(private_key(i), CHAIN_ID, Vote(type_, height, round_, block)), address(i)


def test_tally_by_stake_not_by_count():
    vs = VoteSet(validator_set([10, 1, 1, 1]), 1, 0, VoteType.PREVOTE)  # total 13: quorum 9, third 5
    vs.add(*vote(1, A))
    vs.add(*vote(2, A))
    vs.add(*vote(3, A))
    assert vs.power_for(A) == 3 and not vs.has_two_thirds_for(A) and not vs.has_one_third_for(A)
    vs.add(*vote(0, None))
    assert vs.power_for(None) == 10 and vs.has_two_thirds_for(None) and vs.two_thirds_block() is None
    assert vs.power_any == 13 and vs.has_two_thirds_any()


def test_any_quorum_without_a_value_quorum():
    vs = VoteSet(validator_set([1, 1, 1, 1]), 1, 0, VoteType.PRECOMMIT)
    for i, block in enumerate([A, B, None]):
        vs.add(*vote(i, block, type_=VoteType.PRECOMMIT))
    assert vs.has_two_thirds_any() and vs.two_thirds_block() is None and not vs.has_two_thirds_for(None)


def test_duplicates_count_once():
    vs = VoteSet(validator_set([1, 1, 1, 1]), 1, 0, VoteType.PREVOTE)
    assert vs.add(*vote(0, A)) == (Added.NEW, None)
    assert vs.add(*vote(0, A)) == (Added.DUPLICATE, None)
    assert vs.power_for(A) == 1 and vs.power_any == 1 and len(vs) == 1


def test_an_equivocation_is_reported_and_counts_once_toward_any():
    vs = VoteSet(validator_set([1, 1, 1, 1]), 1, 0, VoteType.PREVOTE)
    first, signer = vote(0, A)
    vs.add(first, signer)
    second, _ = vote(0, B)
    assert vs.add(second, signer) == (Added.CONFLICT, first)
    assert vs.power_any == 1 and vs.power_for(B) == 0  # B has no third yet: the second vote is not held
    assert vs.add(second, signer) == (Added.CONFLICT, first)  # reported again; the machine reports evidence once


def test_an_equivocators_other_vote_counts_toward_a_block_with_a_third():
    """Honest validators that heard an equivocator's other vote first can still count the
    commit the rest decided with: the second vote counts toward a block that has > 1/3."""
    vs = VoteSet(validator_set([1, 1, 1, 1]), 1, 0, VoteType.PRECOMMIT)
    bad_a, byz = vote(0, A, type_=VoteType.PRECOMMIT)
    vs.add(bad_a, byz)
    vs.add(*vote(1, B, type_=VoteType.PRECOMMIT))
    vs.add(*vote(2, B, type_=VoteType.PRECOMMIT))
    assert not vs.has_two_thirds_for(B)
    bad_b, _ = vote(0, B, type_=VoteType.PRECOMMIT)
    assert vs.add(bad_b, byz)[0] is Added.CONFLICT
    assert vs.has_two_thirds_for(B) and vs.two_thirds_block() == B
    assert vs.power_any == 3  # the equivocator still counts once toward "any"
    assert [a for a, _ in vs.votes_for(B)] == sorted([byz, address(1), address(2)],
                                                     key=vs.validators.index_of)
    assert vs.add(bad_b, byz) == (Added.DUPLICATE, None)


def test_votes_for_another_round_or_type_or_from_strangers_are_refused():
    vs = VoteSet(validator_set([1, 1, 1, 1]), 1, 0, VoteType.PREVOTE)
    with pytest.raises(ValueError):
        vs.add(*vote(0, A, round_=1))
    with pytest.raises(ValueError):
        vs.add(*vote(0, A, type_=VoteType.PRECOMMIT))
    with pytest.raises(ValueError):
        vs.add(*vote(9, A))


def test_round_power_counts_distinct_validators_over_both_types():
    hv = HeightVotes(validator_set([3, 1, 1, 1, 1]), 1)  # total 7: more than a third is 3
    hv.add(*vote(1, A, round_=2))
    hv.add(*vote(1, A, round_=2, type_=VoteType.PRECOMMIT))
    assert hv.round_power(2) == 1
    hv.add(*vote(2, None, round_=2, type_=VoteType.PRECOMMIT))
    assert hv.round_power(2) == 2 and not hv.validators.has_one_third(2)
    hv.add(*vote(0, B, round_=2))
    assert hv.round_power(2) == 5 and hv.validators.has_one_third(5)
    assert hv.rounds() == [2] and hv.round_power(3) == 0
