"""BFT proof of stake (Tendermint) as a pure state machine with no I/O and no clock.

    state_machine  the algorithm (the paper's Algorithm 1): events in, actions out
    events         those events and actions, and the round timeouts
    votes          vote sets and stake-weighted quorums
    validators     the validator set and CometBFT's proposer rotation
    messages       votes and proposals, their signed bytes (EIP-712) and wire form
    signer         the double-sign guard and the state a validator persists
    commit         commit certificates and `verify_commit` for light clients
    evidence       equivocation evidence and `verify_evidence`
    application    the protocol the node implements (prepare, process, finalise)

docs/consensus.md describes the whole and the seam with the node.
"""
from consensus.application import Application
from consensus.commit import Commit, CommitSignature, make_commit, verify_commit
from consensus.errors import (
    ConsensusError, DoubleSignRefused, InsufficientVotingPower, InvalidCommit, InvalidEvidence, InvalidSignature,
    InvalidValidatorSet, MalformedMessage, UnknownValidator, WrongProposer,
)
from consensus.events import (
    Action, BlockProposed, BlockValidated, BroadcastProposal, BroadcastVote, Decide, Event, EvidenceFound,
    PersistSignerState, ProposalReceived, Rejected, RequestBlock, ScheduleTimeout, TimeoutConfig, TimeoutElapsed,
    ValidateBlock, VoteReceived,
)
from consensus.evidence import DuplicateVoteEvidence, verify_evidence
from consensus.messages import Block, Proposal, SignedProposal, SignedVote, Step, Vote, VoteType
from consensus.signer import Signer, SignerState
from consensus.state_machine import StateMachine
from consensus.validators import Validator, ValidatorSet
from consensus.votes import HeightVotes, VoteSet

__all__ = [
    "Action", "Application", "Block", "BlockProposed", "BlockValidated", "BroadcastProposal", "BroadcastVote",
    "Commit", "CommitSignature", "ConsensusError", "Decide", "DoubleSignRefused", "DuplicateVoteEvidence", "Event",
    "EvidenceFound", "HeightVotes", "InsufficientVotingPower", "InvalidCommit", "InvalidEvidence",
    "InvalidSignature", "InvalidValidatorSet", "MalformedMessage", "PersistSignerState", "Proposal",
    "ProposalReceived", "Rejected", "RequestBlock", "ScheduleTimeout", "SignedProposal", "SignedVote", "Signer",
    "SignerState", "StateMachine", "Step", "TimeoutConfig", "TimeoutElapsed", "UnknownValidator", "ValidateBlock",
    "Validator", "ValidatorSet", "Vote", "VoteReceived", "VoteSet", "VoteType", "WrongProposer", "make_commit",
    "verify_commit", "verify_evidence",
]
