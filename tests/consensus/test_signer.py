"""The signer never signs two different messages for one (height, round, step), and its
persisted state round-trips."""
import pytest

from consensus import DoubleSignRefused, MalformedMessage, Proposal, Signer, SignerState, Vote, VoteType
from consensus.messages import keccak
from tests.consensus.app import CHAIN_ID, address, private_key

A, B = keccak(b"a"), keccak(b"b")


def prevote(h, r, block):
    return Vote(VoteType.PREVOTE, h, r, block)


def precommit(h, r, block):
    return Vote(VoteType.PRECOMMIT, h, r, block)


def test_same_message_again_gives_the_same_signature():
    s = Signer(private_key(0), CHAIN_ID)
    first = s.sign_vote(prevote(1, 0, A))
    assert s.sign_vote(prevote(1, 0, A)) == first
    assert first.signer(CHAIN_ID) == address(0) == s.address


@pytest.mark.parametrize("second", [prevote(1, 0, B), prevote(1, 0, None)])
def test_a_different_vote_at_the_same_step_is_refused(second):
    s = Signer(private_key(0), CHAIN_ID)
    s.sign_vote(prevote(1, 0, A))
    with pytest.raises(DoubleSignRefused, match="something else"):
        s.sign_vote(second)


def test_going_back_is_refused():
    s = Signer(private_key(0), CHAIN_ID)
    s.sign_vote(precommit(2, 3, A))
    for earlier in (prevote(2, 3, A), precommit(2, 2, A), precommit(1, 9, A)):
        with pytest.raises(DoubleSignRefused, match="after"):
            s.sign_vote(earlier)
    with pytest.raises(DoubleSignRefused):
        s.sign_proposal(Proposal(2, 3, -1, A))
    s.sign_proposal(Proposal(2, 4, -1, B))  # a later round is fine
    s.sign_vote(prevote(2, 4, B))
    with pytest.raises(DoubleSignRefused):
        s.sign_proposal(Proposal(2, 4, -1, A))


def test_state_keeps_the_heights_votes_and_the_lock():
    s = Signer(private_key(0), CHAIN_ID)
    s.sign_vote(prevote(1, 0, A))
    s.sign_vote(precommit(1, 0, A))
    s.sign_vote(prevote(1, 1, None))
    s.sign_vote(precommit(1, 1, None))
    assert s.state.hrs == (1, 1, 3) and s.state.lock == (0, A) and len(s.state.votes) == 4
    s.sign_proposal(Proposal(1, 2, 0, A))
    assert s.state.hrs == (1, 2, 1) and s.state.lock == (0, A) and len(s.state.votes) == 4
    s.sign_vote(prevote(2, 0, B))
    assert s.state.lock is None and len(s.state.votes) == 1  # a new height starts unlocked


def test_state_round_trips_and_a_restart_is_bound_by_it():
    s = Signer(private_key(0), CHAIN_ID)
    s.sign_vote(prevote(5, 2, A))
    s.sign_vote(precommit(5, 2, A))
    stored = s.state.encode()
    assert SignerState.decode(stored) == s.state
    restarted = Signer(private_key(0), CHAIN_ID, SignerState.decode(stored))
    with pytest.raises(DoubleSignRefused):
        restarted.sign_vote(precommit(5, 2, B))
    assert restarted.sign_vote(precommit(5, 2, A)) == s.state.last
    proposal = Signer(private_key(0), CHAIN_ID)
    proposal.sign_proposal(Proposal(3, 0, -1, A))
    assert SignerState.decode(proposal.state.encode()) == proposal.state
    assert SignerState.decode(SignerState().encode()) == SignerState()


def test_a_state_from_another_key_or_chain_is_refused():
    other = Signer(private_key(1), CHAIN_ID)
    other.sign_vote(prevote(1, 0, A))
    with pytest.raises(MalformedMessage):
        Signer(private_key(0), CHAIN_ID, other.state)
    with pytest.raises(MalformedMessage):
        Signer(private_key(1), CHAIN_ID + 1, other.state)


@pytest.mark.parametrize("data", [b"", b"\xc0", b"\xc3\x05\x80\xc0", b"\xc3\x01\x80\xc0"])
def test_malformed_state_is_refused(data):
    with pytest.raises(MalformedMessage):
        SignerState.decode(data)
