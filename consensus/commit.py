"""Commit certificates: the precommits (> 2/3 of the voting power) that decided a block.

A commit names the height, the round that decided, the block hash, and the (address, signature)
of each validator whose precommit for that block it carries, in validator-set order. Anyone who
holds the validator set of that height can check it alone (`verify_commit`): that is the light
client's finality check, and what block sync checks before importing a block.

Wire and storage form: RLP [height, round, blockHash, [[address, signature], ...]]; the commit's
hash is keccak256 of that. Many commits can prove one block (any > 2/3 of the precommits): the one
a chain keeps for block N is the one block N + 1's header commits to (see docs/consensus.md).
"""
from __future__ import annotations

import dataclasses

import rlp

from consensus.errors import (
    InsufficientVotingPower, InvalidCommit, InvalidSignature, MalformedMessage, UnknownValidator,
)
from consensus.messages import (
    ADDRESS_LENGTH, HASH_LENGTH, SignedVote, Vote, VoteType, keccak, recover_signer, rlp_bytes, rlp_int, rlp_list,
    rlp_signature,
)
from consensus.validators import ValidatorSet


@dataclasses.dataclass(frozen=True, slots=True)
class CommitSignature:
    address: bytes
    signature: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Commit:
    height: int
    round: int
    block_hash: bytes
    signatures: tuple[CommitSignature, ...]

    @property
    def precommit(self) -> Vote:
        """The vote every signature in this commit signs."""
        return Vote(VoteType.PRECOMMIT, self.height, self.round, self.block_hash)

    @property
    def signers(self) -> tuple[bytes, ...]:
        return tuple(s.address for s in self.signatures)

    def votes(self) -> list[SignedVote]:
        """The precommits themselves (to re-gossip, or to feed a state machine that lags)."""
        vote = self.precommit
        return [SignedVote(vote, s.signature) for s in self.signatures]

    def encode(self) -> bytes:
        return rlp.encode([self.height, self.round, self.block_hash,
                           [[s.address, s.signature] for s in self.signatures]])

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        height_raw, round_raw, block_hash, sigs = rlp_list(data, 4, "commit")
        if not isinstance(sigs, list):
            raise MalformedMessage("commit: signatures must be a list")
        entries = []
        for entry in sigs:
            if not isinstance(entry, list) or len(entry) != 2:
                raise MalformedMessage("commit: each signature is [address, signature]")
            address, signature = rlp_bytes(entry[0], "address"), rlp_signature(entry[1])
            if len(address) != ADDRESS_LENGTH:
                raise MalformedMessage(f"commit: an address is {ADDRESS_LENGTH} bytes")
            entries.append(CommitSignature(address, signature))
        block_hash = rlp_bytes(block_hash, "block hash")
        if len(block_hash) != HASH_LENGTH:
            raise MalformedMessage(f"commit: block hash must be {HASH_LENGTH} bytes")
        commit = cls(rlp_int(height_raw, "height"), rlp_int(round_raw, "round"), block_hash, tuple(entries))
        commit.precommit  # range checks on height, round and hash
        return commit

    def hash(self) -> bytes:
        return keccak(self.encode())


def make_commit(validators: ValidatorSet, precommits: list[tuple[bytes, SignedVote]]) -> Commit:
    """A commit from (signer, precommit) pairs for one block, put in validator-set order."""
    if not precommits:
        raise InvalidCommit("a commit needs precommits")
    vote = precommits[0][1].vote
    ordered = sorted(precommits, key=lambda e: validators.index_of(e[0]))
    if any(sv.vote != vote for _, sv in ordered) or vote.type is not VoteType.PRECOMMIT or vote.block_hash is None:
        raise InvalidCommit("a commit is made of precommits for one block")
    signatures = tuple(CommitSignature(a, sv.signature) for a, sv in ordered)
    return Commit(vote.height, vote.round, vote.block_hash, signatures)


def verify_commit(validators: ValidatorSet, chain_id: int, height: int, block_hash: bytes,
                  commit: Commit) -> tuple[bytes, ...]:
    """Check that `commit` proves `block_hash` was decided at `height` by `validators` (the set of
    that height) on chain `chain_id`: every signature a valid precommit by a distinct member, in
    set order, together more than 2/3 of the set's power. Returns the signers (who earn the
    block's reward). Raises InvalidCommit, InsufficientVotingPower, UnknownValidator or
    InvalidSignature."""
    if commit.height != height:
        raise InvalidCommit(f"commit is for height {commit.height}, not {height}")
    if commit.block_hash != block_hash:
        raise InvalidCommit("commit is for another block")
    try:
        digest = commit.precommit.digest(chain_id)
    except MalformedMessage as exc:
        raise InvalidCommit(f"commit fields out of range: {exc}") from None
    power, last_index = 0, -1
    for entry in commit.signatures:
        index = validators.index_of(entry.address)
        if index is None:
            raise UnknownValidator(f"commit signed by {entry.address.hex()}, not a validator at height {height}")
        if index <= last_index:
            raise InvalidCommit("commit signatures must be distinct validators in validator-set order")
        last_index = index
        if recover_signer(digest, entry.signature) != entry.address:
            raise InvalidSignature(f"commit signature of {entry.address.hex()} is not its precommit for this "
                                   f"block on chain {chain_id}")
        power += validators.power_of(entry.address)
    if not validators.has_two_thirds(power):
        raise InsufficientVotingPower(f"commit carries {power} of {validators.total_power} voting power; "
                                      f"more than 2/3 is needed")
    return commit.signers
