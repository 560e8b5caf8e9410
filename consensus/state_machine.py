"""Tendermint as a pure state machine: Algorithm 1 of Buchman, Kwon and Milosevic, "The latest
gossip on BFT consensus" (arXiv 1807.04938), with its line numbers in the comments.

    upon start do StartRound(0)                                                         (10)
    StartRound(round): round_p ← round; step_p ← propose                                (11-12)
        if proposer(h_p, round_p) = p: propose validValue_p if set, else getValue()     (13-19)
        schedule OnTimeoutPropose(h_p, round_p)                                         (21)
    upon ⟨PROPOSAL, h_p, round_p, v, -1⟩ while step_p = propose:                        (22-27)
        prevote id(v) if valid(v) ∧ (lockedRound_p = -1 ∨ lockedValue_p = v), else nil
    upon ⟨PROPOSAL, h_p, round_p, v, vr⟩ ∧ 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩
         while step_p = propose ∧ 0 <= vr < round_p:                                    (28-33)
        prevote id(v) if valid(v) ∧ (lockedRound_p <= vr ∨ lockedValue_p = v), else nil
    upon 2f+1 ⟨PREVOTE, h_p, round_p, *⟩ while step_p = prevote, first time:            (34-35)
        schedule OnTimeoutPrevote
    upon ⟨PROPOSAL, h_p, round_p, v, *⟩ ∧ 2f+1 ⟨PREVOTE, h_p, round_p, id(v)⟩
         while valid(v) ∧ step_p >= prevote, first time:                                (36-43)
        if step_p = prevote: lock v at round_p, precommit id(v), step_p ← precommit
        validValue_p ← v; validRound_p ← round_p
    upon 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote:                      (44-46)
        precommit nil
    upon 2f+1 ⟨PRECOMMIT, h_p, round_p, *⟩ first time: schedule OnTimeoutPrecommit      (47-48)
    upon ⟨PROPOSAL, h_p, r, v, *⟩ ∧ 2f+1 ⟨PRECOMMIT, h_p, r, id(v)⟩
         while decision_p[h_p] = nil:                                                   (49-54)
        if valid(v): decide v
    upon f+1 ⟨*, h_p, round, *, *⟩ with round > round_p: StartRound(round)              (55-56)
    OnTimeoutPropose / OnTimeoutPrevote: prevote / precommit nil if still in that step  (57-64)
    OnTimeoutPrecommit: StartRound(round_p + 1)                                         (65-67)

"2f+1" is more than 2/3 of the voting power and "f+1" more than 1/3 (`ValidatorSet`). The
"upon" rules are conditions on the message log: after every event the machine re-checks them
until none fires, so the order in which messages arrive does not matter.

Where this differs from the paper, and why:
- getValue() and valid(v) are asynchronous: the machine emits RequestBlock / ValidateBlock and
  the node answers with BlockProposed / BlockValidated. A rule that needs valid(v) waits for the
  answer. The proposer schedules timeoutPropose too (the paper only does for the others), so a
  slow getValue() ends in a nil prevote rather than a stall (malachite and CometBFT do the same).
- After a decision (line 49) the machine stops in step COMMIT; the node finalises the block
  and calls `start_height` with the next height's validator set (lines 52-54).
- Only a signer's first proposal per round is used for lines 22 and 28; another proposal by
  the same proposer for the round is kept only once votes of more than 1/3 of the power name
  its block (so the block honest validators vote for can still be decided, and an
  equivocating proposer cannot fill memory).
- Round skip (line 55) counts prevotes and precommits of distinct validators.
- Messages more than `max_round_ahead` rounds ahead are ignored (they bound memory and the
  proposer computation); messages of the next height are buffered (bounded) until it starts.
- Votes of the last `keep_decided` decided heights are kept, and a late vote for one of them
  (a lagging validator's, after the others decided without it) is still checked against them
  for equivocation, as CometBFT checks late votes against its last commit; such votes are
  only evidence and never take part in a decision. Older heights' votes are dropped unread.
- validValue is also learnt from a polka of an earlier round (`_upon_earlier_polka`), so a
  validator that heard it late, or lost it in a restart, still re-proposes the locked block.
- A validator restarted at a height it signed in resumes at the round and step it last signed,
  with the lock its signer recorded, and re-sends the votes it signed at the height.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from consensus.commit import make_commit
from consensus.errors import ConsensusError, DoubleSignRefused, MalformedMessage, UnknownValidator, WrongProposer
from consensus.events import (
    Action, BlockProposed, BlockValidated, BroadcastProposal, BroadcastVote, Decide, Event, EvidenceFound,
    PersistSignerState, ProposalReceived, Rejected, RequestBlock, ScheduleTimeout, TimeoutConfig, TimeoutElapsed,
    ValidateBlock, VoteReceived,
)
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import Block, Proposal, SignedProposal, SignedVote, Step, Vote, VoteType
from consensus.signer import Signer, SignerState
from consensus.validators import ValidatorSet
from consensus.votes import Added, HeightVotes

MAX_ROUND_AHEAD = 64
MAX_BUFFERED = 4096
KEEP_DECIDED = 16
"""Decided heights whose votes are kept for evidence (a lagging validator's votes arrive a few
heights late; `evidence_max_age_blocks` is far longer)."""


class StateMachine:
    """One validator's (or observer's, with no signer) view of consensus, one height at a time.

    `block_hash` computes a block's hash from its bytes (the application's; any exception it
    raises marks the bytes as no block). Feed events with `handle`; carry out the
    returned actions in order."""

    def __init__(self, *, chain_id: int, height: int, validators: ValidatorSet,
                 block_hash: Callable[[bytes], bytes], signer: Signer | None = None,
                 timeouts: TimeoutConfig = TimeoutConfig(), max_round_ahead: int = MAX_ROUND_AHEAD,
                 max_buffered: int = MAX_BUFFERED, keep_decided: int = KEEP_DECIDED) -> None:
        if signer is not None and signer.chain_id != chain_id:
            raise ValueError("signer is for another chain id")
        self.chain_id = chain_id
        self.signer = signer
        self.timeouts = timeouts
        self.max_round_ahead = max_round_ahead
        self.max_buffered = max_buffered
        self.keep_decided = keep_decided
        self._decided: dict[int, _Decided] = {}  # height -> its votes, the oldest first
        self._hash_block = block_hash
        self._started = False
        self._next_height: list[Event] = []
        self._out: list[Action] = []
        self._begin_height(height, validators)

    def _begin_height(self, height: int, validators: ValidatorSet) -> None:
        self.height = height  # h_p
        self.validators = validators
        self.round = 0  # round_p
        self.step = Step.PROPOSE  # step_p
        self.decision: Block | None = None  # decision_p[h_p]
        self.locked_round, self.locked_hash = -1, None  # lockedRound_p, id(lockedValue_p)
        self.valid_round, self.valid_block = -1, None  # validRound_p, validValue_p
        self._votes = HeightVotes(validators, height)
        self._proposals: dict[int, dict[bytes, tuple[SignedProposal, Block]]] = {}  # round -> first proposal first
        self._validity: dict[bytes, bool] = {}  # valid(v) answers, by block hash
        self._validating: set[bytes] = set()
        self._fired: set[tuple[int, int]] = set()  # (paper line, round) of "for the first time" rules
        self._evidence_for: set[tuple[bytes, int, VoteType]] = set()

    # --- public surface --------------------------------------------------------------------

    @property
    def address(self) -> bytes | None:
        return None if self.signer is None else self.signer.address

    def start(self) -> list[Action]:
        """Start the first height: StartRound(0), or resume where the signer last signed."""
        if self._started:
            raise ConsensusError("state machine already started")
        self._started = True
        state = None if self.signer is None else self.signer.state
        if state is not None and state.last is not None and state.hrs[0] == self.height:
            self._resume(state)
        else:
            self._start_round(0)
        self._upon_rules()
        return self._take()

    def handle(self, event: Event) -> list[Action]:
        """Apply one event; the actions to carry out, in order."""
        if not self._started:
            raise ConsensusError("state machine not started")
        self._dispatch(event)
        self._upon_rules()
        return self._take()

    def start_height(self, height: int, validators: ValidatorSet) -> list[Action]:
        """After Decide: begin `height` (the decided one + 1) with its validator set (lines 52-54)."""
        if self.step is not Step.COMMIT:
            raise ConsensusError(f"height {self.height} is not decided yet")
        if height != self.height + 1:
            raise ConsensusError(f"next height is {self.height + 1}, not {height}")
        buffered, self._next_height = self._next_height, []
        self._decided[self.height] = _Decided(self._votes, self.round, self._evidence_for)
        while len(self._decided) > self.keep_decided:
            del self._decided[next(iter(self._decided))]
        self._begin_height(height, validators)
        self._start_round(0)
        for event in buffered:
            self._dispatch(event)
        self._upon_rules()
        return self._take()

    def proposals(self, round: int | None = None) -> list[tuple[SignedProposal, Block]]:
        """The proposals kept for `round` of this height (the first is the one lines 22/28 use),
        or for every round."""
        rounds = sorted(self._proposals) if round is None else [round]
        return [kept for r in rounds for kept in self._proposals.get(r, {}).values()]

    @property
    def votes(self) -> HeightVotes:
        return self._votes

    def __repr__(self) -> str:
        return (f"StateMachine(h={self.height} r={self.round} {self.step.name} locked={self.locked_round} "
                f"valid={self.valid_round} decided={self.decision is not None})")

    # --- events ----------------------------------------------------------------------------

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, VoteReceived):
            self._on_vote(event)
        elif isinstance(event, ProposalReceived):
            self._on_proposal(event)
        elif isinstance(event, TimeoutElapsed):
            self._on_timeout(event)
        elif isinstance(event, BlockProposed):
            self._on_block_proposed(event)
        elif isinstance(event, BlockValidated):
            self._on_block_validated(event)
        else:
            raise TypeError(f"not a consensus event: {event!r}")

    def _accepts(self, event: Event, height: int, round: int) -> bool:
        """Whether a message of (height, round) is for now; buffers one of the next height."""
        if height == self.height + 1:
            if len(self._next_height) < self.max_buffered:
                self._next_height.append(event)
            return False
        return (height == self.height and self.step is not Step.COMMIT
                and round <= self.round + self.max_round_ahead)

    def _on_vote(self, event: VoteReceived) -> None:
        signed = event.vote
        vote = signed.vote
        decided = self._decided_votes(vote.height)
        if decided is not None:  # evidence only: the rules below never see it
            if vote.round <= decided.last_round + self.max_round_ahead:
                signer = self._signer_of(signed, decided.votes.validators)
                if signer is not None:
                    self._count(signed, signer, decided)
            return
        if not self._accepts(event, vote.height, vote.round):
            return
        signer = self._signer_of(signed, self.validators)
        if signer is not None:
            self._count(signed, signer)

    def _decided_votes(self, height: int) -> _Decided | None:
        """The votes held for `height` if it is decided: this height after Decide, or one of
        the last `keep_decided` (None for any other height)."""
        if height == self.height:
            return _Decided(self._votes, self.round, self._evidence_for) if self.step is Step.COMMIT else None
        return self._decided.get(height)

    def _signer_of(self, signed: SignedVote, validators: ValidatorSet) -> bytes | None:
        """The vote's signer if it is one of `validators` (the set of the vote's height), else
        None with the vote rejected (its sender is scored down)."""
        try:
            signer = signed.signer(self.chain_id)
        except ConsensusError as exc:
            self._out.append(Rejected(signed, exc))
            return None
        if signer not in validators:
            self._out.append(Rejected(signed, UnknownValidator(
                f"vote signed by {signer.hex()}, not a validator at height {signed.vote.height}")))
            return None
        return signer

    def _count(self, signed: SignedVote, signer: bytes, held: _Decided | None = None) -> None:
        """Count a vote of this height, or hold one of a decided height (`held`) for evidence."""
        votes, evidence_for = (self._votes, self._evidence_for) if held is None else (held.votes, held.evidence_for)
        added, existing = votes.add(signed, signer)
        if added is Added.CONFLICT:
            key = (signer, signed.vote.round, signed.vote.type)
            if key not in evidence_for:
                evidence_for.add(key)
                self._out.append(EvidenceFound(DuplicateVoteEvidence.of(existing, signed)))

    def _on_proposal(self, event: ProposalReceived) -> None:
        signed = event.proposal
        p = signed.proposal
        if not self._accepts(event, p.height, p.round):
            return
        try:
            signer = signed.signer(self.chain_id)
            proposer = self.validators.proposer_for_round(p.round).address
            if signer != proposer:
                raise WrongProposer(f"proposal for round {p.round} signed by {signer.hex()}, "
                                    f"the proposer is {proposer.hex()}")
            try:
                block_hash = self._hash_block(event.block)
            except Exception as exc:  # a peer's bytes: whatever the hasher raises, they are no block
                raise MalformedMessage(f"proposed block does not decode: {exc!r}") from None
            if block_hash != p.block_hash:
                raise MalformedMessage("proposed block does not hash to the proposal's block hash")
        except ConsensusError as exc:
            self._out.append(Rejected(signed, exc))
            return
        self._keep_proposal(signed, Block(p.block_hash, event.block))

    def _keep_proposal(self, signed: SignedProposal, block: Block) -> None:
        round_ = signed.proposal.round
        kept = self._proposals.setdefault(round_, {})
        if block.hash in kept:
            return
        if kept and not (self._votes.prevotes(round_).has_one_third_for(block.hash)
                         or self._votes.precommits(round_).has_one_third_for(block.hash)):
            return  # the proposer equivocated; this block is kept only once votes name it
        kept[block.hash] = (signed, block)
        if block.hash not in self._validity and block.hash not in self._validating:
            self._validating.add(block.hash)
            self._out.append(ValidateBlock(self.height, round_, block))

    def _on_block_validated(self, event: BlockValidated) -> None:
        if event.height == self.height:
            self._validity[event.block_hash] = bool(event.valid)

    def _on_block_proposed(self, event: BlockProposed) -> None:
        """getValue() returned (line 18): propose it, if still in this round's propose step."""
        if (event.height, event.round) != (self.height, self.round) or self.step is not Step.PROPOSE:
            return
        if not self._is_proposer(self.round) or self._own_proposal(self.round):
            return
        self._propose(event.block, -1)

    def _on_timeout(self, event: TimeoutElapsed) -> None:
        if (event.height, event.round) != (self.height, self.round) or self.step is Step.COMMIT:
            return
        if event.step is Step.PROPOSE and self.step is Step.PROPOSE:  # OnTimeoutPropose (57-60)
            self._vote(VoteType.PREVOTE, None)
            self.step = Step.PREVOTE
        elif event.step is Step.PREVOTE and self.step is Step.PREVOTE:  # OnTimeoutPrevote (61-64)
            self._vote(VoteType.PRECOMMIT, None)
            self.step = Step.PRECOMMIT
        elif event.step is Step.PRECOMMIT:  # OnTimeoutPrecommit (65-67)
            self._start_round(self.round + 1)

    # --- the upon rules --------------------------------------------------------------------

    def _upon_rules(self) -> None:
        """Fire rules until none applies (each firing changes step, round, or a first-time flag)."""
        while self.step is not Step.COMMIT and (
            self._upon_decision()  # 49
            or self._upon_higher_round()  # 55
            or self._upon_proposal()  # 22
            or self._upon_proposal_with_pol()  # 28
            or self._upon_prevotes_any()  # 34
            or self._upon_polka()  # 36
            or self._upon_polka_nil()  # 44
            or self._upon_precommits_any()  # 47
            or self._upon_earlier_polka()  # 36, second half, for an earlier round
        ):
            pass

    def _upon_decision(self) -> bool:
        """Line 49: a proposal and 2f+1 precommits for its block, in any round: decide."""
        for round_ in self._votes.rounds():
            block_hash = self._votes.precommits(round_).two_thirds_block()
            found = self._proposals.get(round_, {}).get(block_hash) if block_hash else None
            if found is not None and self._validity.get(block_hash) is True:
                self._decide(round_, *found)
                return True
        return False

    def _upon_higher_round(self) -> bool:
        """Line 55: f+1 validators are in a higher round: go to the highest such round."""
        higher = [r for r in self._votes.rounds()
                  if r > self.round and self.validators.has_one_third(self._votes.round_power(r))]
        if not higher:
            return False
        self._start_round(max(higher))
        return True

    def _upon_proposal(self) -> bool:
        """Line 22: the proposal of this round, with no proof-of-lock round."""
        if self.step is not Step.PROPOSE:
            return False
        first = self._first_proposal(self.round)
        if first is None or first[0].proposal.pol_round != -1:
            return False
        block_hash = first[1].hash
        valid = self._validity.get(block_hash)
        if valid is None:
            return False  # valid(v) not answered yet
        ok = valid and (self.locked_round == -1 or self.locked_hash == block_hash)
        self._vote(VoteType.PREVOTE, block_hash if ok else None)
        self.step = Step.PREVOTE
        return True

    def _upon_proposal_with_pol(self) -> bool:
        """Line 28: the proposal of this round re-proposes a value with a polka in round vr."""
        if self.step is not Step.PROPOSE:
            return False
        first = self._first_proposal(self.round)
        if first is None:
            return False
        vr, block_hash = first[0].proposal.pol_round, first[1].hash
        if not 0 <= vr < self.round or not self._votes.prevotes(vr).has_two_thirds_for(block_hash):
            return False
        valid = self._validity.get(block_hash)
        if valid is None:
            return False
        ok = valid and (self.locked_round <= vr or self.locked_hash == block_hash)
        self._vote(VoteType.PREVOTE, block_hash if ok else None)
        self.step = Step.PREVOTE
        return True

    def _upon_prevotes_any(self) -> bool:
        """Line 34: 2f+1 prevotes of any kind in this round: start timeoutPrevote."""
        if (self.step is not Step.PREVOTE or (34, self.round) in self._fired
                or not self._votes.prevotes(self.round).has_two_thirds_any()):
            return False
        self._fired.add((34, self.round))
        self._schedule(Step.PREVOTE)
        return True

    def _upon_polka(self) -> bool:
        """Line 36: the proposal and 2f+1 prevotes for its block in this round: lock and
        precommit it (if still prevoting), and remember it as the valid value."""
        if self.step not in (Step.PREVOTE, Step.PRECOMMIT) or (36, self.round) in self._fired:
            return False
        block_hash = self._votes.prevotes(self.round).two_thirds_block()
        found = self._proposals.get(self.round, {}).get(block_hash) if block_hash else None
        if found is None or self._validity.get(block_hash) is not True:
            return False
        self._fired.add((36, self.round))
        if self.step is Step.PREVOTE:
            self.locked_round, self.locked_hash = self.round, block_hash
            self._vote(VoteType.PRECOMMIT, block_hash)
            self.step = Step.PRECOMMIT
        self.valid_round, self.valid_block = self.round, found[1]
        return True

    def _upon_polka_nil(self) -> bool:
        """Line 44: 2f+1 prevotes for nil in this round: precommit nil."""
        if self.step is not Step.PREVOTE or not self._votes.prevotes(self.round).has_two_thirds_for(None):
            return False
        self._vote(VoteType.PRECOMMIT, None)
        self.step = Step.PRECOMMIT
        return True

    def _upon_precommits_any(self) -> bool:
        """Line 47: 2f+1 precommits of any kind in this round: start timeoutPrecommit."""
        if (47, self.round) in self._fired or not self._votes.precommits(self.round).has_two_thirds_any():
            return False
        self._fired.add((47, self.round))
        self._schedule(Step.PRECOMMIT)
        return True

    def _upon_earlier_polka(self) -> bool:
        """Line 36's second half for an earlier round r, validRound_p < r < round_p: a proposal
        and 2f+1 prevotes for its block make it the valid value. The paper updates validValue
        only in the current round; here a validator that heard a polka late, or lost its valid
        value in a restart, learns it, and re-proposes that block with r as its proof-of-lock
        round. What a validator proposes cannot break safety (a byzantine proposer proposes
        anything); without this a restarted lock holder could never re-propose its locked block."""
        for round_ in reversed(self._votes.rounds()):
            if round_ <= self.valid_round:
                return False
            if round_ >= self.round:
                continue
            block_hash = self._votes.prevotes(round_).two_thirds_block()
            found = self._proposals.get(round_, {}).get(block_hash) if block_hash else None
            if found is not None and self._validity.get(block_hash) is True:
                self.valid_round, self.valid_block = round_, found[1]
                return True
        return False

    # --- steps -----------------------------------------------------------------------------

    def _start_round(self, round_: int, propose: bool = True) -> None:
        """StartRound (lines 11-21)."""
        self.round, self.step = round_, Step.PROPOSE
        if propose and self._is_proposer(round_):
            if self.valid_block is not None:
                self._propose(self.valid_block, self.valid_round)
            else:
                self._out.append(RequestBlock(self.height, round_))
        self._schedule(Step.PROPOSE)

    def _resume(self, state: SignerState) -> None:
        """Restarted at the height the signer last signed in: continue from that round and step,
        locked as the signer recorded, and send this height's votes again (a peer that missed
        one may need it for a quorum, and it cannot be signed anew)."""
        _, round_, step = state.hrs
        lock = state.lock
        if lock is not None:
            self.locked_round, self.locked_hash = lock
        self._start_round(round_, propose=False)
        if step > Step.PROPOSE:
            self.step = Step(step)
        for vote in state.votes if self._is_validator() else ():
            self._count(vote, self.signer.address)
            self._out.append(BroadcastVote(vote))

    def _decide(self, round_: int, proposal: SignedProposal, block: Block) -> None:
        """Lines 49-51: decide; the node moves to the next height (start_height)."""
        commit = make_commit(self.validators, self._votes.precommits(round_).votes_for(block.hash))
        self.decision, self.step = block, Step.COMMIT
        self._out.append(Decide(self.height, round_, block, commit, proposal))

    def _propose(self, block: Block, pol_round: int) -> None:
        signed = self._sign(self.signer.sign_proposal, Proposal(self.height, self.round, pol_round, block.hash))
        if signed is None:
            return
        self._validity[block.hash] = True  # our own block: prepare_proposal built it, or it had a polka
        self._proposals.setdefault(self.round, {})[block.hash] = (signed, block)
        self._out.append(BroadcastProposal(signed, block))

    def _vote(self, type_: VoteType, block_hash: bytes | None) -> None:
        if not self._is_validator():
            return
        signed = self._sign(self.signer.sign_vote, Vote(type_, self.height, self.round, block_hash))
        if signed is None:
            return
        self._count(signed, self.signer.address)
        self._out.append(BroadcastVote(signed))

    def _sign(self, sign: Callable, message: Vote | Proposal) -> SignedVote | SignedProposal | None:
        """Sign through the double-sign guard; persist the signer state before it is sent. A
        refusal (restarted behind what was already signed) sends nothing."""
        before = self.signer.state
        try:
            signed = sign(message)
        except DoubleSignRefused:
            return None
        if self.signer.state != before:
            self._out.append(PersistSignerState(self.signer.state))
        return signed

    def _schedule(self, step: Step) -> None:
        self._out.append(ScheduleTimeout(self.height, self.round, step, self.timeouts.duration(step, self.round)))

    # --- helpers ---------------------------------------------------------------------------

    def _is_validator(self) -> bool:
        return self.signer is not None and self.signer.address in self.validators

    def _is_proposer(self, round_: int) -> bool:
        return self._is_validator() and self.validators.proposer_for_round(round_).address == self.signer.address

    def _first_proposal(self, round_: int) -> tuple[SignedProposal, Block] | None:
        kept = self._proposals.get(round_)
        return next(iter(kept.values())) if kept else None

    def _own_proposal(self, round_: int) -> bool:
        first = self._first_proposal(round_)
        return first is not None and self._is_proposer(round_)

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out


class _Decided(NamedTuple):
    """What is kept of a decided height: its votes (for evidence), the round it ended in (late
    votes more than `max_round_ahead` past it are dropped) and the equivocations reported."""
    votes: HeightVotes
    last_round: int
    evidence_for: set[tuple[bytes, int, VoteType]]
