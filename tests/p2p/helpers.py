"""Real p2p services on 127.0.0.1 for the tests and the bench, and signed messages to send."""
from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import trio

from consensus.messages import Proposal, SignedVote, Vote, VoteType, sign_proposal, sign_vote
from node.p2p import Handlers, Inbound, Kind, P2P, P2PConfig, open_p2p

CHAIN_ID = 7167
VALIDATOR_KEY = hashlib.sha256(b"validator 0").digest()


def vote(height: int, round_: int = 0, block: bytes = b"\x11" * 32) -> SignedVote:
    return sign_vote(VALIDATOR_KEY, CHAIN_ID, Vote(VoteType.PREVOTE, height, round_, block))


def proposal(height: int, block: bytes):
    return sign_proposal(VALIDATOR_KEY, CHAIN_ID, Proposal(height, 0, -1, hashlib.sha256(block).digest()))


def block_bytes(height: int) -> bytes:
    return b"block %d" % height


def check_block(data: bytes) -> None:
    """The tests' node accepts blocks that say so (the real node decodes RLP)."""
    if not data.startswith(b"block "):
        raise ValueError("not a block")


def check_tx(data: bytes) -> None:
    if not data:
        raise ValueError("empty transaction")


class Store:
    """What one test node holds: blocks by height, proposals and votes by (height, round)."""

    def __init__(self) -> None:
        self.blocks: dict[int, bytes] = {}
        self.proposals: dict[tuple[int, int], tuple] = {}
        self.votes: dict[tuple[int, int], list[SignedVote]] = {}

    def handlers(self) -> Handlers:
        async def block(h: int):
            return self.blocks.get(h)

        async def prop(h: int, r: int):
            return self.proposals.get((h, r))

        async def votes(h: int, r: int):
            return self.votes.get((h, r), [])

        return Handlers(block=block, proposal=prop, votes=votes, check_block=check_block, check_tx=check_tx)


def config(data_dir: Path, bootstrap=(), port: int = 0, **kw) -> P2PConfig:
    return P2PConfig(data_dir=data_dir, chain_id=CHAIN_ID, listen=f"/ip4/127.0.0.1/tcp/{port}",
                     bootstrap=tuple(str(b) for b in bootstrap), **kw)


@contextlib.asynccontextmanager
async def network(tmp_path: Path, n: int, **kw) -> AsyncIterator[list[P2P]]:
    """`n` services, each bootstrapping from all before it, with full gossip meshes."""
    async with contextlib.AsyncExitStack() as stack:
        nodes: list[P2P] = []
        for i in range(n):
            store = Store()
            node = await stack.enter_async_context(
                open_p2p(config(tmp_path / f"n{i}", [p.address for p in nodes], **kw), store.handlers()))
            node.store = store
            nodes.append(node)
        await meshed(nodes)
        yield nodes


async def meshed(nodes: list[P2P], timeout: float = 10.0) -> None:
    """Wait until every node has every other in its mesh of every topic."""
    with trio.fail_after(timeout):
        for a in nodes:
            for b in nodes:
                if a is not b:
                    for kind in Kind:
                        await a.pubsub.wait_for_mesh(b.peer_id, a.topic(kind), timeout=timeout)


async def next_inbound(node: P2P, kind: Kind, timeout: float = 10.0) -> Inbound:
    """The next message of `kind` the node delivers (others are skipped)."""
    with trio.fail_after(timeout):
        async for item in node.inbound:
            if item.kind is kind:
                return item
    raise AssertionError("inbound channel closed")


def trio_test(fn):
    """Run an async test in trio (no pytest-trio here); fixtures pass through."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        return trio.run(functools.partial(fn, *args, **kwargs))
    return run


async def until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Wait for `condition()` to hold, polling, failing after `timeout` seconds."""
    with trio.move_on_after(timeout):
        while not condition():
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")
