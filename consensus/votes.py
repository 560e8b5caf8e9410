"""Vote sets and quorum counting: what "2f + 1 ⟨PREVOTE, h, r, id(v)⟩" means with stake.

`VoteSet` holds one vote type of one (height, round), tallied by block hash in voting power: each
validator counts once toward "any" and at most once toward each block (see `VoteSet` for how an
equivocator's second vote is handled). `HeightVotes` holds every round of one height and the
power of the distinct validators heard from in each round (the round-skip rule's f + 1).

Thresholds are the validator set's, in integer arithmetic: more than 2/3 of the total power is
a quorum, more than 1/3 is "at least one honest validator". Signatures are checked before a vote
gets here: these classes take the signer's address as given.
"""
from __future__ import annotations

import bisect
import enum

from consensus.messages import SignedVote, VoteType
from consensus.validators import ValidatorSet


class Added(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"  # a vote already held: nothing changes
    CONFLICT = "conflict"  # a different vote for the same (height, round, type): equivocation


class VoteSet:
    """The votes of one type at one (height, round).

    Each validator's first vote counts toward "any" and toward its block. A later, different
    vote by the same validator is an equivocation (returned as a conflict, for evidence); it
    also counts toward its own block once more than 1/3 of the power already voted for that
    block. The paper counts 2f+1 senders of one message, so an equivocator may count once for
    each of two blocks; safety needs only that no validator counts twice for one block. Without
    this, a validator that heard an equivocator's other vote first could never count the
    commit the others decided with. More than 1/3 for a block can hold for at most two blocks
    at a time, so an equivocator is kept at most three times per (round, type)."""

    __slots__ = ("validators", "height", "round", "type", "_first", "_by_block", "_power_for", "_power_any")

    def __init__(self, validators: ValidatorSet, height: int, round: int, type: VoteType) -> None:
        self.validators, self.height, self.round, self.type = validators, height, round, type
        self._first: dict[bytes, SignedVote] = {}
        self._by_block: dict[bytes | None, dict[bytes, SignedVote]] = {}
        self._power_for: dict[bytes | None, int] = {}
        self._power_any = 0

    def add(self, vote: SignedVote, signer: bytes) -> tuple[Added, SignedVote | None]:
        """Count `vote` by `signer` (a validator; its signature already checked). Returns how it
        was taken and, on a conflict, the signer's first vote."""
        v = vote.vote
        if (v.height, v.round, v.type) != (self.height, self.round, self.type):
            raise ValueError("vote for another height, round or type")
        power = self.validators.power_of(signer)
        if power == 0:
            raise ValueError("signer is not a validator")
        same_block = self._by_block.setdefault(v.block_hash, {})
        if signer in same_block:
            return Added.DUPLICATE, None
        first = self._first.get(signer)
        if first is None:
            self._first[signer] = vote
            self._power_any += power
        elif not self.validators.has_one_third(self._power_for.get(v.block_hash, 0)):
            return Added.CONFLICT, first
        same_block[signer] = vote
        self._power_for[v.block_hash] = self._power_for.get(v.block_hash, 0) + power
        return (Added.NEW, None) if first is None else (Added.CONFLICT, first)

    def __len__(self) -> int:
        return len(self._first)

    def get(self, signer: bytes) -> SignedVote | None:
        """The first vote `signer` cast here."""
        return self._first.get(signer)

    def power_for(self, block_hash: bytes | None) -> int:
        """Power of the votes for `block_hash` (None: for nil)."""
        return self._power_for.get(block_hash, 0)

    @property
    def power_any(self) -> int:
        """Power of the distinct validators that voted here, whatever for."""
        return self._power_any

    def has_two_thirds_for(self, block_hash: bytes | None) -> bool:
        return self.validators.has_two_thirds(self.power_for(block_hash))

    def has_two_thirds_any(self) -> bool:
        return self.validators.has_two_thirds(self._power_any)

    def has_one_third_for(self, block_hash: bytes | None) -> bool:
        return self.validators.has_one_third(self.power_for(block_hash))

    def two_thirds_block(self) -> bytes | None:
        """The block (not nil) that more than 2/3 voted for, if one did (two cannot, unless more
        than 1/3 of the power equivocates)."""
        for block_hash, power in self._power_for.items():
            if block_hash is not None and self.validators.has_two_thirds(power):
                return block_hash
        return None

    def votes_for(self, block_hash: bytes | None) -> list[tuple[bytes, SignedVote]]:
        """(signer, vote) for `block_hash`, in validator-set order."""
        found = list(self._by_block.get(block_hash, {}).items())
        found.sort(key=lambda e: self.validators.index_of(e[0]))
        return found

    def all_votes(self) -> list[SignedVote]:
        """Every vote held (an equivocator's counted votes included)."""
        return [sv for votes in self._by_block.values() for sv in votes.values()]


class HeightVotes:
    """Every prevote and precommit of one height, by round."""

    __slots__ = ("validators", "height", "_sets", "_round_voters", "_round_power", "_rounds")

    def __init__(self, validators: ValidatorSet, height: int) -> None:
        self.validators, self.height = validators, height
        self._sets: dict[tuple[int, VoteType], VoteSet] = {}
        self._round_voters: dict[int, set[bytes]] = {}
        self._round_power: dict[int, int] = {}
        self._rounds: list[int] = []  # ascending

    def _set(self, round: int, type: VoteType) -> VoteSet:
        vs = self._sets.get((round, type))
        if vs is None:
            vs = self._sets[(round, type)] = VoteSet(self.validators, self.height, round, type)
        return vs

    def add(self, vote: SignedVote, signer: bytes) -> tuple[Added, SignedVote | None]:
        v = vote.vote
        result = self._set(v.round, v.type).add(vote, signer)
        if result[0] is Added.NEW:
            if v.round not in self._round_voters:
                bisect.insort(self._rounds, v.round)
            voters = self._round_voters.setdefault(v.round, set())
            if signer not in voters:
                voters.add(signer)
                self._round_power[v.round] = self._round_power.get(v.round, 0) + self.validators.power_of(signer)
        return result

    def prevotes(self, round: int) -> VoteSet:
        return self._set(round, VoteType.PREVOTE)

    def precommits(self, round: int) -> VoteSet:
        return self._set(round, VoteType.PRECOMMIT)

    def rounds(self) -> list[int]:
        """Rounds in which any vote was counted, ascending."""
        return list(self._rounds)

    def round_power(self, round: int) -> int:
        """Power of the distinct validators with a prevote or precommit in `round`."""
        return self._round_power.get(round, 0)

    def all_votes(self) -> list[SignedVote]:
        return [sv for vs in self._sets.values() for sv in vs.all_votes()]
