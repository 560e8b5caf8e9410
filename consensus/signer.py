"""The validator's signer: never signs two different messages for one (height, round, step).

CometBFT's FilePV rule: each signature moves the last-signed (height, round, step) forward
(step 1 = proposal, 2 = prevote, 3 = precommit). Asked again for exactly the same message, the
signer returns the same signature (signing is deterministic, RFC 6979), so a restarted validator
can re-send what it already sent; asked for anything else at or before the last-signed step, it
refuses with `DoubleSignRefused`.

`SignerState` is what a node persists (fsync) before a signed message leaves it: the last
signed message and every vote the validator signed at that height. With it a validator restarted
without a write-ahead log can neither double-sign nor prevote against its lock (the paper's
lockedRound / lockedValue is its last non-nil precommit at the height), and it can send its votes
again: a peer that missed them may need them for a quorum, and the validator cannot sign them anew.
The state machine emits `PersistSignerState` before every broadcast that changed it.
"""
from __future__ import annotations

import dataclasses

import rlp

from consensus.errors import DoubleSignRefused, MalformedMessage
from consensus.messages import (
    Proposal, SignedProposal, SignedVote, SigningKey, Step, Vote, VoteType,
)


@dataclasses.dataclass(frozen=True, slots=True)
class SignerState:
    """The last message signed (None: nothing yet) and the votes signed at its height."""

    last: SignedVote | SignedProposal | None = None
    votes: tuple[SignedVote, ...] = ()

    @property
    def hrs(self) -> tuple[int, int, int]:
        """(height, round, step) of the last signed message; (0, 0, 0) before the first."""
        if self.last is None:
            return (0, 0, 0)
        return _hrs(self.last)

    @property
    def lock(self) -> tuple[int, bytes] | None:
        """(round, block hash) of the last non-nil precommit at the height: the validator's lock."""
        for signed in reversed(self.votes):
            v = signed.vote
            if v.type is VoteType.PRECOMMIT and v.block_hash is not None:
                return (v.round, v.block_hash)
        return None

    def encode(self) -> bytes:
        """RLP [kind (0 none, 1 vote, 2 proposal), last message, [vote, ...]] (wire forms)."""
        kind = 0 if self.last is None else 1 if isinstance(self.last, SignedVote) else 2
        body = b"" if self.last is None else self.last.encode()
        return rlp.encode([kind, body, [v.encode() for v in self.votes]])

    @classmethod
    def decode(cls, data: bytes) -> SignerState:
        try:
            kind_raw, body, votes = rlp.decode(data, strict=True)
            kind = int.from_bytes(kind_raw, "big")
        except (rlp.exceptions.DecodingError, ValueError, TypeError):
            raise MalformedMessage("signer state: expected RLP [kind, message, [vote, ...]]") from None
        if kind not in (0, 1, 2) or not isinstance(body, bytes) or not isinstance(votes, list):
            raise MalformedMessage("signer state: bad kind or shape")
        last = None if kind == 0 else SignedVote.decode(body) if kind == 1 else SignedProposal.decode(body)
        if not all(isinstance(v, bytes) for v in votes):
            raise MalformedMessage("signer state: each vote is a byte string")
        decoded = tuple(SignedVote.decode(v) for v in votes)
        height = 0 if last is None else _hrs(last)[0]
        if any(v.vote.height != height for v in decoded):
            raise MalformedMessage("signer state: votes of another height than the last message")
        return cls(last, decoded)


def _hrs(message: SignedVote | SignedProposal) -> tuple[int, int, int]:
    if isinstance(message, SignedVote):
        v = message.vote
        return (v.height, v.round, int(v.step))
    p = message.proposal
    return (p.height, p.round, int(Step.PROPOSE))


class Signer:
    """Signs votes and proposals with one staking key, refusing to double-sign."""

    def __init__(self, private_key: bytes, chain_id: int, state: SignerState | None = None) -> None:
        self._key = SigningKey(private_key)
        self.chain_id = chain_id
        self.address: bytes = self._key.address
        self.state = state or SignerState()
        held = ([] if self.state.last is None else [self.state.last]) + list(self.state.votes)
        if any(message.signer(chain_id) != self.address for message in held):
            raise MalformedMessage("signer state holds a message signed by another key (or for another chain)")

    def sign_vote(self, vote: Vote) -> SignedVote:
        signed = SignedVote(vote, self._sign(_hrs_of_vote(vote), vote.digest(self.chain_id)))
        votes = self.state.votes if vote.height == self.state.hrs[0] else ()
        if signed not in votes:
            votes += (signed,)
        self.state = SignerState(signed, votes)
        return signed

    def sign_proposal(self, proposal: Proposal) -> SignedProposal:
        signature = self._sign((proposal.height, proposal.round, int(Step.PROPOSE)), proposal.digest(self.chain_id))
        signed = SignedProposal(proposal, signature)
        self.state = SignerState(signed, self.state.votes if proposal.height == self.state.hrs[0] else ())
        return signed

    def _sign(self, hrs: tuple[int, int, int], digest: bytes) -> bytes:
        last = self.state.last
        if last is not None:
            last_hrs = _hrs(last)
            if hrs < last_hrs:
                raise DoubleSignRefused(f"would sign {hrs} after {last_hrs} (height, round, step)")
            if hrs == last_hrs:
                last_digest = (last.vote.digest(self.chain_id) if isinstance(last, SignedVote)
                               else last.proposal.digest(self.chain_id))
                if digest != last_digest:
                    raise DoubleSignRefused(f"already signed something else at {hrs} (height, round, step)")
                return last.signature
        return self._key.sign(digest)


def _hrs_of_vote(vote: Vote) -> tuple[int, int, int]:
    return (vote.height, vote.round, int(vote.step))
