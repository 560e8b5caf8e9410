"""The state machine, one rule at a time: one validator's machine is fed events by hand (the
other validators' messages signed with their keys) and its actions are checked.

Line numbers refer to Algorithm 1 of arXiv 1807.04938."""
import pytest

from consensus import (
    BlockProposed, BlockValidated, BroadcastProposal, BroadcastVote, ConsensusError, Decide, EvidenceFound,
    MalformedMessage, PersistSignerState, Proposal, ProposalReceived, Rejected, RequestBlock, ScheduleTimeout,
    SignedVote, Signer, StateMachine, Step, TimeoutConfig, TimeoutElapsed, UnknownValidator, ValidateBlock, Vote,
    VoteReceived, VoteType, WrongProposer, verify_commit, verify_evidence,
)
from consensus.messages import sign_proposal, sign_vote
from tests.consensus.app import CHAIN_ID, address, block_hash, make_block, private_key, validator_set

PV, PC = VoteType.PREVOTE, VoteType.PRECOMMIT
TIMEOUTS = TimeoutConfig(propose=100, propose_delta=10, prevote=50, prevote_delta=5, precommit=60, precommit_delta=6)
A, B = make_block(1, "A"), make_block(1, "B")


class Harness:
    """The machine of validator `me`; the other validators are played by the test."""

    def __init__(self, powers=(1, 1, 1, 1), me=None, not_proposer_of=(), signer_state=None, observer=False):
        self.vs = validator_set(list(powers))
        self.n = len(powers)
        if me is None:  # the first validator that proposes none of the given rounds
            me = next(i for i in range(self.n) if all(self.proposer(r) != i for r in not_proposer_of))
        self.me = me
        signer = None if observer else Signer(private_key(me), CHAIN_ID, signer_state)
        self.m = StateMachine(chain_id=CHAIN_ID, height=1, validators=self.vs, block_hash=block_hash,
                              signer=signer, timeouts=TIMEOUTS)
        self.others = [i for i in range(self.n) if i != me]

    def proposer(self, round_, vs=None):
        address_ = (vs or self.vs).proposer_for_round(round_).address
        return next(i for i in range(10) if address(i) == address_)

    def start(self):
        return self.m.start()

    def vote(self, i, type_, round_, block, height=1):
        hash_ = None if block is None else block.hash
        return self.m.handle(VoteReceived(sign_vote(private_key(i), CHAIN_ID, Vote(type_, height, round_, hash_))))

    def votes(self, who, type_, round_, block, height=1):
        out = []
        for i in who:
            out += self.vote(i, type_, round_, block, height)
        return out

    def propose(self, round_, block, pol=-1, by=None, height=1, data=None):
        by = self.proposer(round_) if by is None else by
        signed = sign_proposal(private_key(by), CHAIN_ID, Proposal(height, round_, pol, block.hash))
        return self.m.handle(ProposalReceived(signed, block.data if data is None else data))

    def validated(self, block, ok=True):
        return self.m.handle(BlockValidated(1, block.hash, ok))

    def timeout(self, step, round_):
        return self.m.handle(TimeoutElapsed(1, round_, step))


def cast(actions):
    """The votes broadcast: (type, round, block hash or None)."""
    return [(a.vote.vote.type, a.vote.vote.round, a.vote.vote.block_hash)
            for a in actions if isinstance(a, BroadcastVote)]


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def lock_on_a_in_round_0(h):
    """Round 0: proposal A, a polka for A: `me` locks on A and precommits it."""
    h.start()
    h.propose(0, A)
    assert cast(h.validated(A)) == [(PV, 0, A.hash)]
    out = h.votes(h.others[:2], PV, 0, A)
    assert cast(out) == [(PC, 0, A.hash)]
    assert (h.m.locked_round, h.m.locked_hash, h.m.valid_round, h.m.valid_block) == (0, A.hash, 0, A)


def precommit_timeout_into(h, round_):
    """Nil precommits from the others, then timeoutPrecommit: on to `round_`."""
    out = h.votes(h.others, PC, round_ - 1, None)
    assert of(out, ScheduleTimeout)[-1].step is Step.PRECOMMIT
    h.timeout(Step.PRECOMMIT, round_ - 1)
    assert h.m.round == round_


# --- a height, start to finish ----------------------------------------------------------------

def test_a_proposer_proposes_prevotes_precommits_and_decides():
    h = Harness()
    h = Harness(me=h.proposer(0))
    assert h.start() == [RequestBlock(1, 0), ScheduleTimeout(1, 0, Step.PROPOSE, 100)]
    out = h.m.handle(BlockProposed(1, 0, A))
    assert [type(a) for a in out] == [PersistSignerState, BroadcastProposal, PersistSignerState, BroadcastVote]
    assert out[0].state.last == out[1].proposal and out[2].state.last == out[3].vote  # persisted before sent
    assert cast(out) == [(PV, 0, A.hash)]
    out = h.votes(h.others[:1], PV, 0, A)
    assert out == []
    out = h.votes(h.others[1:2], PV, 0, A)  # 3 of 4 prevotes: timeoutPrevote (34), then the polka (36)
    assert of(out, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PREVOTE, 50)]
    assert cast(out) == [(PC, 0, A.hash)] and h.m.step is Step.PRECOMMIT
    out = h.votes(h.others[:2], PC, 0, A)
    decide, = of(out, Decide)
    assert (decide.height, decide.round, decide.block) == (1, 0, A) and h.m.step is Step.COMMIT
    assert verify_commit(h.vs, CHAIN_ID, 1, A.hash, decide.commit) and len(decide.commit.signatures) == 3
    assert decide.proposal.proposal.block_hash == A.hash
    assert h.vote(h.others[2], PC, 0, A) == []  # a late vote for the decided height: held for evidence only
    nxt = h.vs.next_height()
    out = h.m.start_height(2, nxt)
    assert (h.m.height, h.m.round, h.m.step, h.m.locked_round) == (2, 0, Step.PROPOSE, -1)
    assert ScheduleTimeout(2, 0, Step.PROPOSE, 100) in out
    assert (RequestBlock(2, 0) in out) == (h.proposer(0, nxt) == h.me)


def test_a_validator_waits_for_valid_v_and_prevotes_nil_for_an_invalid_block():
    h = Harness(not_proposer_of=[0])
    h.start()
    out = h.propose(0, A)
    assert out == [ValidateBlock(1, 0, A)]  # valid(v) is asked for; no prevote before the answer
    assert cast(h.validated(A, ok=False)) == [(PV, 0, None)]
    h = Harness(not_proposer_of=[0])
    h.start()
    h.propose(0, A)
    assert cast(h.validated(A)) == [(PV, 0, A.hash)]


def test_timeout_propose_prevotes_nil_and_stale_timeouts_do_nothing():
    h = Harness(not_proposer_of=[0])
    assert h.start() == [ScheduleTimeout(1, 0, Step.PROPOSE, 100)]
    assert h.timeout(Step.PREVOTE, 0) == [] and h.timeout(Step.PROPOSE, 1) == []
    assert cast(h.timeout(Step.PROPOSE, 0)) == [(PV, 0, None)]
    assert h.timeout(Step.PROPOSE, 0) == []  # no longer in the propose step (line 58)


def test_timeout_prevote_precommits_nil():
    h = Harness(not_proposer_of=[0])
    h.start()
    h.timeout(Step.PROPOSE, 0)
    out = h.votes(h.others[:1], PV, 0, A) + h.votes(h.others[1:2], PV, 0, B)  # 2f+1 prevotes, no polka
    assert of(out, ScheduleTimeout) == [ScheduleTimeout(1, 0, Step.PREVOTE, 50)] and cast(out) == []
    assert cast(h.timeout(Step.PREVOTE, 0)) == [(PC, 0, None)]


def test_a_nil_polka_precommits_nil_at_once():
    h = Harness(not_proposer_of=[0])
    h.start()
    h.timeout(Step.PROPOSE, 0)
    out = h.votes(h.others[:2], PV, 0, None)
    assert cast(out) == [(PC, 0, None)] and h.m.step is Step.PRECOMMIT


def test_round_timeouts_grow_every_round():
    h = Harness(not_proposer_of=[0, 1, 2])
    h.start()
    seen = []
    for r in range(3):
        h.timeout(Step.PROPOSE, r)
        seen += of(h.votes(h.others, PV, r, None), ScheduleTimeout)
        seen += of(h.votes(h.others, PC, r, None), ScheduleTimeout)
        seen += of(h.timeout(Step.PRECOMMIT, r), ScheduleTimeout)
    assert [(t.round, t.step, t.duration_ms) for t in seen] == [
        (0, Step.PREVOTE, 50), (0, Step.PRECOMMIT, 60), (1, Step.PROPOSE, 110),
        (1, Step.PREVOTE, 55), (1, Step.PRECOMMIT, 66), (2, Step.PROPOSE, 120),
        (2, Step.PREVOTE, 60), (2, Step.PRECOMMIT, 72), (3, Step.PROPOSE, 130)]
    assert TimeoutConfig().duration(Step.PROPOSE, 4) == 5000  # CometBFT's defaults: 3 s + 4 * 0.5 s


# --- locks and valid values -------------------------------------------------------------------

def test_a_locked_validator_prevotes_nil_for_another_block():
    h = Harness(not_proposer_of=[0, 1])
    lock_on_a_in_round_0(h)
    precommit_timeout_into(h, 1)
    h.propose(1, B)
    assert cast(h.validated(B)) == [(PV, 1, None)]  # line 26: locked on A
    assert (h.m.locked_round, h.m.locked_hash) == (0, A.hash)


def test_a_locked_validator_prevotes_its_locked_block_again():
    h = Harness(not_proposer_of=[0, 1])
    lock_on_a_in_round_0(h)
    precommit_timeout_into(h, 1)
    assert cast(h.propose(1, A)) == [(PV, 1, A.hash)]  # line 24: lockedValue = v


def test_a_polka_in_a_later_round_releases_the_lock():
    """Line 28-30: a proposal of B with validRound 1 and 2f+1 prevotes for B in round 1: a
    validator locked on A in round 0 (0 <= 1) prevotes B."""
    h = Harness(not_proposer_of=[0, 1, 2])
    lock_on_a_in_round_0(h)
    precommit_timeout_into(h, 1)
    h.timeout(Step.PROPOSE, 1)  # no proposal seen in round 1: prevote nil
    h.votes(h.others, PV, 1, B)  # the others' polka for B in round 1 (its proposal never reached us)
    h.timeout(Step.PREVOTE, 1)
    precommit_timeout_into(h, 2)
    h.propose(2, B, pol=1)
    assert cast(h.validated(B)) == [(PV, 2, B.hash)]


def test_a_proof_of_lock_from_before_the_lock_does_not_release_it():
    """Line 31: locked in round 1, a proposal whose polka is from round 0 gets a nil prevote."""
    h = Harness(not_proposer_of=[0, 1, 2])
    h.start()
    h.timeout(Step.PROPOSE, 0)
    h.votes(h.others, PV, 0, B)  # a polka for B in round 0 we could not act on (no proposal)
    h.timeout(Step.PREVOTE, 0)
    precommit_timeout_into(h, 1)
    h.propose(1, A)
    h.validated(A)
    assert cast(h.votes(h.others[:2], PV, 1, A)) == [(PC, 1, A.hash)]  # locked on A in round 1
    precommit_timeout_into(h, 2)
    h.propose(2, B, pol=0)
    assert cast(h.validated(B)) == [(PV, 2, None)]


def test_a_proposal_with_a_proof_of_lock_waits_for_the_polka():
    h = Harness(not_proposer_of=[0, 1])
    h.start()
    h.timeout(Step.PROPOSE, 0)
    h.votes(h.others, PV, 0, None)
    precommit_timeout_into(h, 1)
    h.propose(1, B, pol=0)
    assert cast(h.validated(B)) == []  # no 2f+1 prevotes for B in round 0 known
    assert cast(h.votes(h.others[:2], PV, 0, B)) == []  # two of them prevoted nil before: no polka
    assert cast(h.timeout(Step.PROPOSE, 1)) == [(PV, 1, None)]


def test_a_polka_seen_in_the_current_round_relocks():
    """Line 36-41: locked on A in round 0, a polka for B in round 1 while prevoting: lock on B."""
    h = Harness(not_proposer_of=[0, 1])
    lock_on_a_in_round_0(h)
    precommit_timeout_into(h, 1)
    h.propose(1, B)
    assert cast(h.validated(B)) == [(PV, 1, None)]
    assert cast(h.votes(h.others, PV, 1, B)) == [(PC, 1, B.hash)]
    assert (h.m.locked_round, h.m.locked_hash, h.m.valid_round) == (1, B.hash, 1)


def test_a_late_polka_sets_the_valid_value_which_the_proposer_reproposes():
    """Line 42-43: a polka seen after precommitting nil does not lock but makes v the valid
    value; as the proposer of a later round, the validator proposes it with that round (line 15)."""
    h = Harness()
    me = h.proposer(1)
    h = Harness(me=me)
    assert h.proposer(0) != me
    h.start()
    h.propose(0, A)
    h.validated(A)
    h.votes(h.others[:1], PV, 0, None)
    h.votes(h.others[1:2], PV, 0, A)
    assert cast(h.timeout(Step.PREVOTE, 0)) == [(PC, 0, None)]
    h.votes(h.others[2:], PV, 0, A)  # we prevoted A, so have 3 prevotes for A now
    assert h.m.locked_round == -1 and (h.m.valid_round, h.m.valid_block) == (0, A)
    precommit_timeout_into(h, 1)
    (signed, block), = h.m.proposals(1)
    assert (signed.proposal.pol_round, block) == (0, A)


def test_a_polka_of_an_earlier_round_heard_late_sets_the_valid_value():
    """A polka of an earlier round, heard late, becomes the valid value (so the block can be
    re-proposed with its proof-of-lock round; a restarted lock holder needs this)."""
    h = Harness(not_proposer_of=[0, 1])
    h.start()
    h.timeout(Step.PROPOSE, 0)
    h.votes(h.others, PC, 0, None)
    h.timeout(Step.PRECOMMIT, 0)
    assert h.m.round == 1 and h.m.valid_round == -1
    h.votes(h.others[:2], PV, 0, A)
    h.propose(0, A)
    h.validated(A)
    assert h.m.valid_round == -1  # two prevotes and our nil: no polka
    h.votes(h.others[2:], PV, 0, A)
    assert (h.m.valid_round, h.m.valid_block, h.m.locked_round) == (0, A, -1)


# --- rounds ----------------------------------------------------------------------------------

def test_round_skip_needs_more_than_a_third_of_the_stake():
    h = Harness(powers=(4, 1, 1, 1))  # total 7: more than a third is 3
    small = [i for i in h.others if h.vs.power_of(address(i)) == 1]
    big = next(i for i in range(4) if h.vs.power_of(address(i)) == 4)
    h = Harness(powers=(4, 1, 1, 1), me=small[0])
    h.start()
    h.votes([i for i in h.others if i != big], PV, 5, None)
    assert h.m.round == 0  # 2 of 7
    out = h.vote(big, PC, 5, None)
    assert h.m.round == 5 and ScheduleTimeout(1, 5, Step.PROPOSE, 150) in out


def test_a_decision_can_come_from_another_round():
    """Line 49: the proposal and 2f+1 precommits of round 3 decide, whatever our round."""
    h = Harness(not_proposer_of=[0])
    h.start()
    out = h.votes(h.others, PC, 3, A)
    assert h.m.round == 3 and not of(out, Decide)  # f+1 in round 3: skipped there (line 55)
    h.propose(3, A)
    decide, = of(h.validated(A), Decide)
    assert (decide.round, decide.block) == (3, A)


def test_no_decision_for_an_invalid_block():
    h = Harness(not_proposer_of=[0])
    h.start()
    h.propose(0, A)
    h.validated(A, ok=False)
    assert not of(h.votes(h.others, PC, 0, A), Decide)


def test_messages_of_the_next_height_wait_for_it():
    h = Harness(not_proposer_of=[0])
    h.start()
    h.votes(h.others, PV, 0, None, height=2)
    assert h.m.votes.prevotes(0).power_any == 0
    h.propose(0, A)
    h.validated(A)
    assert of(h.votes(h.others, PC, 0, A), Decide)
    h.m.start_height(2, h.vs.next_height())
    assert h.m.votes.prevotes(0).power_any == 3
    assert h.vote(h.others[0], PV, 0, None, height=9) == []  # farther ahead: dropped


def test_votes_far_ahead_are_ignored():
    h = Harness()
    h.start()
    h.votes(h.others, PV, 64, None)
    assert h.m.round == 64
    h = Harness()
    h.start()
    assert h.votes(h.others, PV, 65, None) == [] and h.m.votes.rounds() == []


def test_start_height_and_handle_are_guarded():
    h = Harness()
    with pytest.raises(ConsensusError):
        h.m.handle(TimeoutElapsed(1, 0, Step.PROPOSE))
    h.start()
    with pytest.raises(ConsensusError):
        h.start()
    with pytest.raises(ConsensusError, match="not decided"):
        h.m.start_height(2, h.vs)


# --- bad input ---------------------------------------------------------------------------------

def test_bad_messages_are_rejected_and_change_nothing():
    h = Harness(not_proposer_of=[0])
    h.start()
    stranger = sign_vote(private_key(9), CHAIN_ID, Vote(PV, 1, 0, A.hash))
    rejected, = h.m.handle(VoteReceived(stranger))
    assert isinstance(rejected, Rejected) and isinstance(rejected.error, UnknownValidator)
    for_b = sign_vote(private_key(h.others[0]), CHAIN_ID, Vote(PV, 1, 0, B.hash))
    forged = SignedVote(Vote(PV, 1, 0, A.hash), for_b.signature)
    assert of(h.m.handle(VoteReceived(forged)), Rejected)  # recovers a stranger
    other_chain = sign_vote(private_key(h.others[0]), CHAIN_ID + 1, Vote(PV, 1, 0, A.hash))
    assert of(h.m.handle(VoteReceived(other_chain)), Rejected)
    assert isinstance(h.propose(0, A, by=h.proposer(1))[0].error, WrongProposer)
    assert isinstance(h.propose(0, A, data=A.data + b"!")[0].error, MalformedMessage)
    assert isinstance(h.propose(0, A, data=b"")[0].error, MalformedMessage)  # the hasher refuses it
    assert h.m.votes.rounds() == [] and h.m.proposals() == []
    assert cast(h.votes(h.others[:2], PV, 0, None)) == []  # genuine votes still count


def test_an_equivocating_voter_is_reported_once():
    h = Harness()
    h.start()
    bad = h.others[0]
    h.vote(bad, PV, 0, A)
    found, = of(h.vote(bad, PV, 0, B), EvidenceFound)
    assert verify_evidence(found.evidence, CHAIN_ID, h.vs) == address(bad)
    assert not of(h.vote(bad, PV, 0, None), EvidenceFound)
    assert h.m.votes.prevotes(0).power_any == 1


def test_an_equivocating_proposers_second_block_is_kept_only_once_votes_name_it():
    h = Harness(not_proposer_of=[0])
    h.start()
    h.propose(0, A)
    assert h.propose(0, B) == [] and [b for _, b in h.m.proposals(0)] == [A]
    h.votes(h.others[:2], PC, 0, B)
    assert h.propose(0, B) == [ValidateBlock(1, 0, B)]
    assert [b for _, b in h.m.proposals(0)] == [A, B]


def test_an_observer_decides_without_signing():
    h = Harness(observer=True)
    out = h.start() + h.propose(0, A) + h.validated(A)
    out += h.votes(range(4), PV, 0, A) + h.votes(range(3), PC, 0, A)
    assert of(out, Decide) and not of(out, BroadcastVote) and not of(out, PersistSignerState)


# --- restarts ----------------------------------------------------------------------------------

def test_a_restarted_validator_resumes_locked_and_sends_its_votes_again():
    h = Harness(not_proposer_of=[0, 1])
    lock_on_a_in_round_0(h)
    state = h.m.signer.state
    restarted = Harness(me=h.me, signer_state=state)
    out = restarted.start()
    assert (restarted.m.round, restarted.m.step) == (0, Step.PRECOMMIT)
    assert (restarted.m.locked_round, restarted.m.locked_hash) == (0, A.hash)
    assert cast(out) == [(PV, 0, A.hash), (PC, 0, A.hash)] and not of(out, PersistSignerState)
    assert restarted.m.votes.precommits(0).power_for(A.hash) == 1
    precommit_timeout_into(restarted, 1)
    restarted.propose(1, B)
    assert cast(restarted.validated(B)) == [(PV, 1, None)]  # still locked on A


def test_a_restarted_validator_never_signs_against_what_it_signed():
    h = Harness(not_proposer_of=[0])
    h.start()
    h.propose(0, A)
    h.validated(A)  # prevoted A
    restarted = Harness(me=h.me, signer_state=h.m.signer.state)
    restarted.start()
    assert restarted.m.step is Step.PREVOTE
    assert cast(restarted.timeout(Step.PROPOSE, 0)) == []  # would be a nil prevote: refused, and not needed
    out = restarted.votes(restarted.others, PV, 0, None)  # a nil polka: precommit nil is a later step
    assert cast(out) == [(PC, 0, None)]


def test_a_single_validator_decides_alone():
    """The devnet is N = 1 of the same path: the block it proposes is decided in the same call."""
    h = Harness(powers=(5,), me=0)
    assert h.start() == [RequestBlock(1, 0), ScheduleTimeout(1, 0, Step.PROPOSE, 100)]
    out = h.m.handle(BlockProposed(1, 0, A))
    assert [type(a) for a in out] == [PersistSignerState, BroadcastProposal, PersistSignerState, BroadcastVote,
                                      ScheduleTimeout, PersistSignerState, BroadcastVote, Decide]
    decide = out[-1]
    assert decide.block == A and verify_commit(h.vs, CHAIN_ID, 1, A.hash, decide.commit) == (address(0),)
    out = h.m.start_height(2, h.vs.next_height())
    assert out == [RequestBlock(2, 0), ScheduleTimeout(2, 0, Step.PROPOSE, 100)]


# --- late votes: evidence for decided heights ----------------------------------------------------

def decide_height_1(h):
    """Round 0 of height 1 decided on A without validator 3; on to height 2."""
    h.start()
    h.propose(0, A)
    h.validated(A)
    voters = [i for i in range(4) if i != 3]
    h.votes([i for i in voters if i != h.me], PV, 0, A)
    assert of(h.votes([i for i in voters if i != h.me], PC, 0, A), Decide)


def test_a_late_equivocation_at_a_decided_height_is_still_evidence():
    """Validator 3 was not needed for height 1's quorum; its two prevotes arrive after the decision
    (in COMMIT, then again after the next height started): each conflicting pair is evidence once,
    and neither changes the decision nor the new height's votes."""
    h = Harness(me=0)
    decide_height_1(h)
    assert h.vote(3, PV, 0, A) == []  # in COMMIT: held, no conflict yet
    found, = of(h.vote(3, PV, 0, B), EvidenceFound)
    assert verify_evidence(found.evidence, CHAIN_ID, h.vs) == address(3) and found.evidence.height == 1
    h.m.start_height(2, h.vs.next_height())
    assert h.vote(3, PC, 0, None) == []  # height 1, one height late: held
    out = h.vote(3, PC, 0, B)
    found, = of(out, EvidenceFound)
    assert found.evidence.vote_a.vote == Vote(PC, 1, 0, None) and not of(out, Decide)
    assert not of(h.vote(3, PC, 0, A), EvidenceFound)  # reported once per (validator, round, type)
    assert (h.m.height, h.m.round, h.m.step) == (2, 0, Step.PROPOSE) and h.m.votes.rounds() == []
    assert h.m.decision is None


def test_late_votes_outside_the_window_are_dropped_unread():
    """Hostile input: votes for heights older than `keep_decided`, for rounds far past where a
    decided height ended, or by strangers, are dropped (strangers' rejected) and hold no memory."""
    h = Harness(me=0)
    h.m.keep_decided = 2
    decide_height_1(h)
    vs = h.vs
    for height in (2, 3):  # heights 2 and 3 decided at once (their votes signed by 0, 1, 2)
        vs = vs.next_height()
        h.m.start_height(height, vs)
        block = make_block(height, "A")
        h.propose(0, block, height=height, by=h.proposer(0, vs))
        h.m.handle(BlockValidated(height, block.hash, True))
        for type_ in (PV, PC):
            h.votes((1, 2), type_, 0, block, height=height)
        assert h.m.step is Step.COMMIT
    h.m.start_height(4, vs.next_height())
    assert sorted(h.m._decided) == [2, 3]  # height 1 is forgotten
    assert h.vote(3, PV, 0, A, height=1) == [] and h.vote(3, PV, 0, B, height=1) == []  # too old
    assert h.vote(3, PV, 65, A, height=3) == []  # height 3 ended in round 0: round 65 is too far
    assert h.m._decided[3].votes.rounds() == [0]
    stranger = sign_vote(private_key(9), CHAIN_ID, Vote(PV, 3, 0, A.hash))
    rejected, = h.m.handle(VoteReceived(stranger))
    assert isinstance(rejected.error, UnknownValidator)
    forged = SignedVote(Vote(PV, 3, 0, A.hash), sign_vote(private_key(3), CHAIN_ID, Vote(PV, 3, 0, B.hash)).signature)
    assert of(h.m.handle(VoteReceived(forged)), Rejected)
    assert h.m._decided[3].votes.prevotes(0).power_any == 3  # none of them held: only 0, 1 and 2
    for round_ in range(65):  # a validator's flood within the window: one vote per (round, type)
        h.vote(3, PV, round_, A, height=3)
        h.vote(3, PV, round_, A, height=3)
    assert len(h.m._decided[3].votes.prevotes(0).all_votes()) == 4  # height 3's own three and 3's
    assert sum(len(h.m._decided[3].votes.prevotes(r).all_votes()) for r in range(1, 65)) == 64
