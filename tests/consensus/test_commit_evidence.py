"""Commit certificates (what a light client checks) and equivocation evidence, verified alone."""
import dataclasses

import pytest
import rlp

from consensus import (
    Commit, CommitSignature, DuplicateVoteEvidence, InsufficientVotingPower, InvalidCommit, InvalidEvidence,
    InvalidSignature, MalformedMessage, UnknownValidator, Vote, VoteType, make_commit, verify_commit, verify_evidence,
)
from consensus.messages import keccak, sign_vote
from tests.consensus.app import CHAIN_ID, address, private_key, validator_set

BLOCK = keccak(b"block 7")
POWERS = [4, 3, 2, 1]  # total 10: more than 2/3 is 7
VS = validator_set(POWERS)


def precommit(i, height=7, round_=1, block=BLOCK, chain_id=CHAIN_ID):
    return address(i), sign_vote(private_key(i), chain_id, Vote(VoteType.PRECOMMIT, height, round_, block))


def commit_of(*signers, **kw):
    return make_commit(VS, [precommit(i, **kw) for i in signers])


def test_a_commit_verifies_and_names_its_signers():
    commit = commit_of(3, 0, 1)  # 4 + 3 + 1 = 8 > 2/3 of 10
    assert verify_commit(VS, CHAIN_ID, 7, BLOCK, commit) == (address(0), address(1), address(3))
    assert Commit.decode(commit.encode()) == commit
    assert commit.hash() == keccak(commit.encode())
    assert [v.signer(CHAIN_ID) for v in commit.votes()] == list(commit.signers)


def test_two_thirds_exactly_is_not_enough():
    with pytest.raises(InsufficientVotingPower):
        verify_commit(VS, CHAIN_ID, 7, BLOCK, commit_of(0, 2))  # 6 of 10
    with pytest.raises(InsufficientVotingPower):
        verify_commit(validator_set([1, 1, 1]), CHAIN_ID, 7, BLOCK,
                      make_commit(validator_set([1, 1, 1]), [precommit(0), precommit(1)]))  # 2 of 3
    verify_commit(VS, CHAIN_ID, 7, BLOCK, commit_of(0, 1))  # 7 of 10


def test_wrong_height_block_or_chain():
    commit = commit_of(0, 1, 2)
    with pytest.raises(InvalidCommit, match="height"):
        verify_commit(VS, CHAIN_ID, 8, BLOCK, commit)
    with pytest.raises(InvalidCommit, match="another block"):
        verify_commit(VS, CHAIN_ID, 7, keccak(b"other"), commit)
    with pytest.raises(InvalidSignature):
        verify_commit(VS, CHAIN_ID + 1, 7, BLOCK, commit)  # signed for this chain, checked for another
    foreign = commit_of(0, 1, 2, chain_id=CHAIN_ID + 1)
    with pytest.raises(InvalidSignature):
        verify_commit(VS, CHAIN_ID, 7, BLOCK, foreign)


def test_a_bad_signature_fails_the_whole_commit():
    commit = commit_of(0, 1, 2)
    sigs = list(commit.signatures)
    other = precommit(1, round_=2)[1].signature  # a real signature by validator 1, for another round
    sigs[1] = CommitSignature(sigs[1].address, other)
    with pytest.raises(InvalidSignature):
        verify_commit(VS, CHAIN_ID, 7, BLOCK, dataclasses.replace(commit, signatures=tuple(sigs)))
    sigs[1] = CommitSignature(sigs[1].address, precommit(2)[1].signature)  # validator 2's signature under 1's name
    with pytest.raises(InvalidSignature):
        verify_commit(VS, CHAIN_ID, 7, BLOCK, dataclasses.replace(commit, signatures=tuple(sigs)))
    sigs[1] = CommitSignature(sigs[1].address, bytes(65))
    with pytest.raises(InvalidSignature):
        verify_commit(VS, CHAIN_ID, 7, BLOCK, dataclasses.replace(commit, signatures=tuple(sigs)))


def test_duplicate_signers_do_not_add_power():
    commit = commit_of(1, 2, 3)  # 6 of 10
    doubled = dataclasses.replace(commit, signatures=commit.signatures + commit.signatures[:1])
    with pytest.raises(InvalidCommit, match="distinct"):
        verify_commit(VS, CHAIN_ID, 7, BLOCK, doubled)
    reordered = dataclasses.replace(commit, signatures=commit.signatures[::-1])
    with pytest.raises(InvalidCommit, match="order"):
        verify_commit(VS, CHAIN_ID, 7, BLOCK, reordered)


def test_a_signature_from_a_non_validator_is_refused():
    stranger = precommit(9)
    commit = commit_of(0, 1, 2)
    extra = CommitSignature(stranger[0], stranger[1].signature)
    forged = dataclasses.replace(commit, signatures=commit.signatures + (extra,))
    with pytest.raises(UnknownValidator):
        verify_commit(VS, CHAIN_ID, 7, BLOCK, forged)


def test_make_commit_refuses_mixed_votes():
    with pytest.raises(InvalidCommit):
        make_commit(VS, [precommit(0), precommit(1, round_=2)])
    with pytest.raises(InvalidCommit):
        make_commit(VS, [(address(0), sign_vote(private_key(0), CHAIN_ID, Vote(VoteType.PREVOTE, 7, 1, BLOCK)))])
    with pytest.raises(InvalidCommit):
        make_commit(VS, [])


@pytest.mark.parametrize("data", [b"", b"\xc0", b"\xc4\x01\x01\x01\x01"])
def test_malformed_commits_are_refused(data):
    with pytest.raises(MalformedMessage):
        Commit.decode(data)


def test_commit_decode_checks_each_entry():
    commit = commit_of(0, 1)
    height, round_, block, sigs = rlp.decode(commit.encode())
    for bad in ([[b"\x01" * 19, sigs[0][1]]], [[sigs[0][0], sigs[0][1][:64]]], [sigs[0][0]], b"x"):
        with pytest.raises(MalformedMessage):
            Commit.decode(rlp.encode([height, round_, block, bad]))
    with pytest.raises(MalformedMessage):
        Commit.decode(rlp.encode([height, round_, block[:31], sigs]))


# --- evidence -------------------------------------------------------------------------------

def vote(i, block, round_=2, type_=VoteType.PREVOTE, chain_id=CHAIN_ID):
    return sign_vote(private_key(i), chain_id, Vote(type_, 5, round_, block))


def test_evidence_of_two_votes_names_the_offender():
    ev = DuplicateVoteEvidence.of(vote(2, BLOCK), vote(2, None))
    assert ev.vote_a.vote.block_hash is None  # canonical order: nil first
    assert verify_evidence(ev, CHAIN_ID) == address(2)
    assert verify_evidence(ev, CHAIN_ID, VS) == address(2)
    assert DuplicateVoteEvidence.decode(ev.encode()) == ev and ev.height == 5 and ev.round == 2
    assert DuplicateVoteEvidence.of(vote(2, None), vote(2, BLOCK)).hash() == ev.hash()


@pytest.mark.parametrize("one, other, error", [
    (vote(1, BLOCK), vote(1, BLOCK), "same block"),
    (vote(1, BLOCK), vote(2, None), "different keys"),
    (vote(1, BLOCK), vote(1, None, round_=3), "different"),
    (vote(1, BLOCK), vote(1, None, type_=VoteType.PRECOMMIT), "different"),
    (vote(1, BLOCK), vote(1, None, chain_id=CHAIN_ID + 1), "different keys"),
])
def test_evidence_that_proves_nothing_is_refused(one, other, error):
    with pytest.raises(InvalidEvidence, match=error):
        verify_evidence(DuplicateVoteEvidence.of(one, other), CHAIN_ID)


def test_evidence_with_a_bad_signature_or_order_is_refused():
    good = vote(1, BLOCK)
    forged = dataclasses.replace(vote(1, None), signature=good.signature)
    with pytest.raises(InvalidEvidence):
        verify_evidence(DuplicateVoteEvidence.of(good, forged), CHAIN_ID)
    with pytest.raises(InvalidEvidence, match="order"):
        verify_evidence(DuplicateVoteEvidence(vote(1, BLOCK), vote(1, None)), CHAIN_ID)
    other_chain = DuplicateVoteEvidence.of(vote(1, BLOCK, chain_id=7), vote(1, None, chain_id=7))
    assert verify_evidence(other_chain, 7) == address(1)
    with pytest.raises(InvalidEvidence, match="different keys"):  # checked for this chain, it names nobody
        verify_evidence(other_chain, CHAIN_ID)


def test_evidence_against_a_non_validator():
    ev = DuplicateVoteEvidence.of(vote(9, BLOCK), vote(9, None))
    assert verify_evidence(ev, CHAIN_ID) == address(9)
    with pytest.raises(UnknownValidator):
        verify_evidence(ev, CHAIN_ID, VS)
