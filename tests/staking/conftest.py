"""Chains whose genesis stakes its validators (`genesis.testnet`), with the validators' keys, so
tests can sign consensus votes and header signer bitmaps as a validator network would."""
import dataclasses

from eth_account import Account
from eth_utils import keccak, to_canonical_address

import genesis
from consensus.evidence import DuplicateVoteEvidence
from consensus.messages import Vote, VoteType, sign_vote
from tests.native.native_chain import NativeChain
from vm.modules import consensus_set
from vm.modules.staking import signer_bitmap

OPEN = 10**18
KEYS = [keccak(b"openledger/tests/staking/%d" % i) for i in range(8)]
"""Validator staking keys (private keys as bytes)."""
ADDRS = [to_canonical_address(Account.from_key(k).address) for k in KEYS]


def staked_chain(stakes_open=(1000, 1000, 1000, 1000), **economics) -> NativeChain:
    """A chain of `genesis.testnet` with validators ADDRS[i] staking stakes_open[i] OPEN; the real
    economics unless overridden by name."""
    econ = dataclasses.replace(genesis.Economics(), **economics)
    g = genesis.testnet(ADDRS[:len(stakes_open)], stake=[s * OPEN for s in stakes_open], economics=econ)
    return NativeChain(g)


def members(nc: NativeChain, height: int) -> list[bytes]:
    return [a for a, _ in consensus_set(nc.state, height)]


def mine_signed(nc: NativeChain, signers, txs=()):
    """Mine the next block with the signer bitmap of `signers` over the parent height's set."""
    parent = nc.chain.get_canonical_head().block_number
    return nc.mine(list(txs), extra_data=signer_bitmap(members(nc, parent), signers))


def vote(key: bytes, height: int, block: int | None, round_: int = 0, type_=VoteType.PRECOMMIT,
         chain_id: int = genesis.devnet().chain_id):
    """A signed vote for block hash H(block) (None: nil)."""
    block_hash = None if block is None else block.to_bytes(32, "big")
    return sign_vote(key, chain_id, Vote(type_, height, round_, block_hash))


def evidence(key: bytes = KEYS[0], height: int = 2, a: int | None = 1, b: int | None = 2, **kw) -> bytes:
    """RLP of `key`'s two votes at `height` for blocks H(a) and H(b) (vote's keywords apply to both)."""
    return DuplicateVoteEvidence.of(vote(key, height, a, **kw), vote(key, height, b, **kw)).encode()
