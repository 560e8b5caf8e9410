"""Evidence of equivocation: one validator's two signed votes for different blocks at the same
(height, round, type).

The evidence carries only the two signed votes; the offender is recovered from the signatures,
so anyone can check it alone (`verify_evidence`), given the chain id and, to confirm the
offender was a validator then, the validator set of that height. The two votes are kept in a
canonical order (nil first, then by block hash) so one equivocation has one encoding and hash.

Wire form: RLP [voteA, voteB], each the vote's own wire RLP (see `SignedVote.encode`).
"""
from __future__ import annotations

import dataclasses

import rlp

from consensus.errors import ConsensusError, InvalidEvidence, UnknownValidator
from consensus.messages import SignedVote, rlp_bytes, rlp_list, keccak
from consensus.validators import ValidatorSet


def _order_key(vote: SignedVote) -> bytes:
    return vote.vote.block_hash or b""


@dataclasses.dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    vote_a: SignedVote
    vote_b: SignedVote

    @classmethod
    def of(cls, one: SignedVote, other: SignedVote) -> DuplicateVoteEvidence:
        """The evidence of two conflicting votes, in canonical order."""
        a, b = sorted((one, other), key=_order_key)
        return cls(a, b)

    @property
    def height(self) -> int:
        return self.vote_a.vote.height

    @property
    def round(self) -> int:
        return self.vote_a.vote.round

    def encode(self) -> bytes:
        return rlp.encode([self.vote_a.encode(), self.vote_b.encode()])

    @classmethod
    def decode(cls, data: bytes) -> DuplicateVoteEvidence:
        a, b = rlp_list(data, 2, "evidence")
        return cls(SignedVote.decode(rlp_bytes(a, "vote A")), SignedVote.decode(rlp_bytes(b, "vote B")))

    def hash(self) -> bytes:
        return keccak(self.encode())


def verify_evidence(evidence: DuplicateVoteEvidence, chain_id: int,
                    validators: ValidatorSet | None = None) -> bytes:
    """The offender's address if `evidence` proves it signed two different votes for one
    (height, round, type) on chain `chain_id`; raises InvalidEvidence (UnknownValidator if
    `validators`, the set at that height, is given and the signer is not in it)."""
    a, b = evidence.vote_a.vote, evidence.vote_b.vote
    if (a.height, a.round, a.type) != (b.height, b.round, b.type):
        raise InvalidEvidence("the two votes are for different (height, round, type)")
    if a.block_hash == b.block_hash:
        raise InvalidEvidence("the two votes are for the same block: no conflict")
    if _order_key(evidence.vote_a) > _order_key(evidence.vote_b):
        raise InvalidEvidence("evidence votes out of canonical order (nil first, then by block hash)")
    try:
        signer_a = evidence.vote_a.signer(chain_id)
        signer_b = evidence.vote_b.signer(chain_id)
    except ConsensusError as exc:
        raise InvalidEvidence(f"bad signature: {exc}") from None
    if signer_a != signer_b:
        raise InvalidEvidence("the two votes are signed by different keys (or for another chain)")
    if validators is not None and signer_a not in validators:
        raise UnknownValidator(f"{signer_a.hex()} was not a validator at height {a.height}")
    return signer_a
