"""Named consensus errors: one class per way a message, a commit or a piece of evidence is wrong.

All are `ValueError`s under `ConsensusError`, so a caller that only wants "bad input from a peer"
catches one class; the state machine turns them into `Rejected` actions instead of raising.
"""


class ConsensusError(ValueError):
    """Base of every error this package raises about its inputs."""


class MalformedMessage(ConsensusError):
    """Bytes or fields that do not form a message: wrong length, range, RLP shape or type."""


class InvalidSignature(ConsensusError):
    """A signature that is not a canonical secp256k1 signature, or not by the expected signer."""


class UnknownValidator(ConsensusError):
    """A message signed by an address that is not in the validator set of its height."""


class WrongProposer(ConsensusError):
    """A proposal signed by someone other than the proposer of its (height, round)."""


class DoubleSignRefused(ConsensusError):
    """The signer refused: signing would conflict with, or go back before, what it last signed."""


class InvalidEvidence(ConsensusError):
    """Evidence that does not prove an equivocation."""


class InvalidCommit(ConsensusError):
    """A commit certificate that does not prove its block was decided."""


class InsufficientVotingPower(InvalidCommit):
    """A commit whose valid precommits hold 2/3 of the voting power or less."""


class InvalidValidatorSet(ConsensusError):
    """A validator set or change set CometBFT's rules refuse (empty, duplicate, bad power)."""
