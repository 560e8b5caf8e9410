"""A trivial application for consensus tests, and fixed validator keys.

A block is `b"ok|<height>|<tag>"` (valid at that height) or anything else (invalid); its hash is
keccak256 of its bytes. Finalising appends to a list: the "chain" a crash does not lose.
"""
from __future__ import annotations

import dataclasses

from eth_keys import keys

from consensus import Block, Commit, ConsensusError, Validator, ValidatorSet
from consensus.messages import keccak

CHAIN_ID = 7167  # the devnet's chain id


def private_key(i: int) -> bytes:
    """The staking key of test validator `i` (fixed, so addresses and orders repeat)."""
    return keccak(b"openledger consensus test validator %d" % i)


def address(i: int) -> bytes:
    return keys.PrivateKey(private_key(i)).public_key.to_canonical_address()


def validator_set(powers: list[int]) -> ValidatorSet:
    return ValidatorSet(Validator(address(i), p) for i, p in enumerate(powers))


def make_block(height: int, tag: str = "", valid: bool = True) -> Block:
    data = b"%s|%d|%s" % (b"ok" if valid else b"bad", height, tag.encode())
    return Block(keccak(data), data)


def block_hash(data: bytes) -> bytes:
    if not data:
        raise ConsensusError("empty block")
    return keccak(data)


@dataclasses.dataclass
class TrivialApp:
    """prepare / process / finalise over `make_block` blocks (satisfies consensus.Application)."""

    name: str = ""
    chain: list[tuple[Block, Commit]] = dataclasses.field(default_factory=list)

    def block_hash(self, data: bytes) -> bytes:
        return block_hash(data)

    def prepare_proposal(self, height: int, round: int) -> Block:
        return make_block(height, f"{self.name} r{round}")

    def process_proposal(self, height: int, round: int, block: Block) -> bool:
        return block.data.startswith(b"ok|%d|" % height) and keccak(block.data) == block.hash

    def finalize(self, height: int, block: Block, commit: Commit) -> tuple[Validator, ...]:
        if height == len(self.chain):  # already finalised (a restart decided it again)
            return ()
        assert height == len(self.chain) + 1, f"{self.name}: finalise {height} after {len(self.chain)}"
        self.chain.append((block, commit))
        return ()

    @property
    def height(self) -> int:
        return len(self.chain)
