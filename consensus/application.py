"""The seam between consensus and the chain: what the node implements over `vm/` (like ABCI's
PrepareProposal / ProcessProposal / FinalizeBlock), and how its answers reach the state machine.

The state machine never calls the application: it asks through actions, and the node driving
it calls these methods (off the event loop if they are slow) and feeds the answers back:

    RequestBlock(h, r)          -> block = app.prepare_proposal(h, r)
                                   machine.handle(BlockProposed(h, r, block))
    ValidateBlock(h, r, block)  -> ok = app.process_proposal(h, r, block)
                                   machine.handle(BlockValidated(h, block.hash, ok))
    Decide(h, r, block, commit) -> changes = app.finalize(h, block, commit)
                                   machine.start_height(h + 1, next validator set)

`block_hash` is handed to the state machine as a plain function (it must be pure and cheap:
for an Ethereum block, keccak256 of the RLP header inside the block's RLP).

Rules the application keeps, or consensus breaks:
- process_proposal is deterministic: every honest validator gives the same answer for the same
  block at the same height (it executes the block against the parent state and compares the
  header's roots, committing nothing).
- prepare_proposal returns a block that its own process_proposal accepts.
- finalize is atomic and durable (the block, its commit, the state: one write batch) and
  idempotent for a height already finalised (a restart may decide it again).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from consensus.commit import Commit
from consensus.messages import Block
from consensus.validators import Validator


class Application(Protocol):
    def block_hash(self, data: bytes) -> bytes:
        """The hash votes sign for a block given as bytes; raises (ValueError) if they are no block."""

    def prepare_proposal(self, height: int, round: int) -> Block:
        """Build the block this validator proposes at (height, round): transactions from the
        pool on top of the last finalised block, header roots filled in. Must not change state."""

    def process_proposal(self, height: int, round: int, block: Block) -> bool:
        """Is `block` a valid next block at `height`? Execute it against the parent state and check
        its header (parent hash, number, roots, gas, timestamp, the previous block's commit hash)
        without committing anything."""

    def finalize(self, height: int, block: Block, commit: Commit) -> Sequence[Validator]:
        """`block` is decided with `commit`: execute and store both atomically, make it the head.
        Returns validator changes (power 0 removes; see docs/consensus.md for when they apply)."""
