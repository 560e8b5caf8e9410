"""What goes into the state machine (events) and what comes out (actions).

The machine has no I/O and no clock. The node feeds it events, one at a time from one task, and
carries out the actions it returns, in order:

    events in                                    actions out
    ProposalReceived(signed proposal, block)     PersistSignerState(state)   fsync before going on
    VoteReceived(signed vote)                    BroadcastProposal(signed proposal, block)
    TimeoutElapsed(height, round, step)          BroadcastVote(signed vote)
    BlockProposed(height, round, block)          ScheduleTimeout(height, round, step, ms)
      (the answer to RequestBlock)               RequestBlock(height, round)   app: prepare_proposal
    BlockValidated(height, block hash, valid)    ValidateBlock(height, round, block)  app: process_proposal
      (the answer to ValidateBlock)              Decide(height, round, block, commit, proposal)
                                                 EvidenceFound(evidence)
                                                 Rejected(message, error)   for peer scoring

Timeouts are durations in milliseconds (integers); the node turns them into timers and sends
back `TimeoutElapsed` with the same (height, round, step). A stale one is ignored, so the node
need not cancel timers.
"""
from __future__ import annotations

import dataclasses

from consensus.commit import Commit
from consensus.errors import ConsensusError
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import Block, SignedProposal, SignedVote, Step
from consensus.signer import SignerState


@dataclasses.dataclass(frozen=True)
class TimeoutConfig:
    """Round timeouts in milliseconds, growing by `*_delta` every round (CometBFT's defaults:
    3000/500, 1000/500, 1000/500), so that after the network stabilises a round eventually lasts
    long enough for honest messages to arrive."""

    propose: int = 3000
    propose_delta: int = 500
    prevote: int = 1000
    prevote_delta: int = 500
    precommit: int = 1000
    precommit_delta: int = 500

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or value < 0:
                raise ValueError(f"timeout {f.name} must be a non-negative integer (milliseconds)")

    def duration(self, step: Step, round: int) -> int:
        """timeoutPropose(round), timeoutPrevote(round) or timeoutPrecommit(round)."""
        if step is Step.PROPOSE:
            return self.propose + self.propose_delta * round
        if step is Step.PREVOTE:
            return self.prevote + self.prevote_delta * round
        if step is Step.PRECOMMIT:
            return self.precommit + self.precommit_delta * round
        raise ValueError(f"no timeout for step {step!r}")


# --- events (inputs) ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProposalReceived:
    """A proposal from the network, with the block it names (bytes; the machine hashes them)."""

    proposal: SignedProposal
    block: bytes


@dataclasses.dataclass(frozen=True)
class VoteReceived:
    vote: SignedVote


@dataclasses.dataclass(frozen=True)
class TimeoutElapsed:
    height: int
    round: int
    step: Step


@dataclasses.dataclass(frozen=True)
class BlockProposed:
    """The application's block for a round this validator proposes in (the paper's getValue())."""

    height: int
    round: int
    block: Block


@dataclasses.dataclass(frozen=True)
class BlockValidated:
    """The application's verdict on a proposed block (the paper's valid(v))."""

    height: int
    block_hash: bytes
    valid: bool


Event = ProposalReceived | VoteReceived | TimeoutElapsed | BlockProposed | BlockValidated


# --- actions (outputs) ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PersistSignerState:
    """Write `state` durably (fsync) before carrying out the next action: the messages that
    follow were signed under it, and a restarted validator must know it signed them."""

    state: SignerState


@dataclasses.dataclass(frozen=True)
class BroadcastProposal:
    proposal: SignedProposal
    block: Block


@dataclasses.dataclass(frozen=True)
class BroadcastVote:
    vote: SignedVote


@dataclasses.dataclass(frozen=True)
class ScheduleTimeout:
    height: int
    round: int
    step: Step
    duration_ms: int


@dataclasses.dataclass(frozen=True)
class RequestBlock:
    """Build a block for (height, round) and answer with BlockProposed (Application.prepare_proposal)."""

    height: int
    round: int


@dataclasses.dataclass(frozen=True)
class ValidateBlock:
    """Check this proposed block and answer with BlockValidated (Application.process_proposal)."""

    height: int
    round: int
    block: Block


@dataclasses.dataclass(frozen=True)
class Decide:
    """`block` is decided at `height`: finalise it with `commit` (Application.finalize), then
    call `StateMachine.start_height` for the next height. `proposal` is the signed proposal it
    was decided from (with the commit's precommits, what a lagging peer needs to decide too)."""

    height: int
    round: int
    block: Block
    commit: Commit
    proposal: SignedProposal


@dataclasses.dataclass(frozen=True)
class EvidenceFound:
    evidence: DuplicateVoteEvidence


@dataclasses.dataclass(frozen=True)
class Rejected:
    """A message that is wrong in itself (bad signature, not a validator, wrong proposer, block
    not matching its hash): the peer that sent it can be scored down."""

    message: object
    error: ConsensusError


Action = (PersistSignerState | BroadcastProposal | BroadcastVote | ScheduleTimeout | RequestBlock | ValidateBlock
          | Decide | EvidenceFound | Rejected)
