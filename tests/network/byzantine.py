"""A validator process that equivocates once, for the fault tests (issue 13): test-only, so that
production code carries no switch for it.

    python -m tests.network.byzantine HEIGHT [openledger run flags...]

runs `openledger run` with one change: after each prevote it publishes at HEIGHT or later, it
publishes a second prevote for the same height and round and another value, signed with the
same staking key behind its signer's back (whose double-sign guard would refuse). Everything
else, the signer state file included, is the honest node's. It equivocates at every height, not
once: three honest validators of four are a quorum without it, so on a loaded machine its votes
can arrive after the others decided that height (the others still hold the votes of the last
decided heights and find the equivocation then); the first pair found gets it jailed, and a
jailed validator leaves the set and signs no more.
"""
from __future__ import annotations

import dataclasses
import sys

from eth_utils import keccak

from consensus import SignedVote
from consensus.messages import VoteType
from node.network import P2PNetwork

MARK = "byzantine: sent a conflicting prevote"


def equivocate_from(height: int) -> None:
    honest = P2PNetwork.broadcast_vote

    def broadcast_vote(self: P2PNetwork, vote: SignedVote) -> None:
        honest(self, vote)
        v = vote.vote
        if v.type is not VoteType.PREVOTE or v.height < height:
            return
        other = dataclasses.replace(v, block_hash=keccak(v.block_hash or b"nil"))
        signer = self.driver.signer
        honest(self, SignedVote(other, signer._key.sign(other.digest(signer.chain_id))))
        print(f"{MARK} at height {v.height} round {v.round}", flush=True)

    P2PNetwork.broadcast_vote = broadcast_vote


if __name__ == "__main__":
    equivocate_from(int(sys.argv[1]))
    from node.cli import main

    sys.exit(main(["run", *sys.argv[2:]]))
