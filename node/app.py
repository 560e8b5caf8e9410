"""`run_node(config)`: the node process's one trio event loop.

Opens the Node, then runs the block producer and the RPC server side by side; SIGINT/SIGTERM
cancel them, and everything closes in reverse order of opening (server, producer, then the
database, after any block being committed has landed).
"""
from __future__ import annotations

import functools
import logging
import math
import os
import signal
import threading
from dataclasses import dataclass, field

import trio

import genesis as genesis_mod
from node.chain import Node
from node.rpc import RpcConfig, serve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeConfig:
    """What `openledger devnet` / `openledger run` ask for."""

    datadir: str | os.PathLike
    genesis: genesis_mod.Genesis | None = None  # given: create or check the data dir; None: open it
    block_time: float | None = None  # seconds; None: the genesis's; 0: mine as soon as a tx arrives
    rpc: RpcConfig = field(default_factory=RpcConfig)

    def __post_init__(self) -> None:
        if self.block_time is not None and (not math.isfinite(self.block_time) or self.block_time < 0):
            raise ValueError(f"invalid --block-time {self.block_time}: want a number of seconds >= 0")


def open_node(config: NodeConfig) -> Node:
    return Node.init(config.datadir, config.genesis) if config.genesis is not None else Node.open(config.datadir)


async def produce_blocks(node: Node, block_time: float, wake: trio.MemoryReceiveChannel) -> None:
    """A block every `block_time` s; with 0, a block whenever the pool has transactions.

    Execution runs in a worker thread so RPC keeps answering while a block is built; a
    cancellation waits for that thread, so a commit is never cut off half way."""
    if block_time > 0:
        deadline = trio.current_time()
        while True:
            deadline = max(deadline + block_time, trio.current_time())
            await trio.sleep_until(deadline)
            await _produce(node)
    else:
        async for _ in wake:
            while len(node.mempool):
                block = await _produce(node)
                if block is None or not block.transactions:  # nothing minable now: wait for news
                    break


async def _produce(node: Node):
    """One block, or None if building it failed: logged, and the chain stays at its head (the
    commit is one atomic batch), as geth's miner carries on after a failed block."""
    try:
        return await trio.to_thread.run_sync(node.produce_block)
    except Exception:
        log.exception("block production failed; retrying at the next slot")
        return None


async def _until_signal(cancel_scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            print(f"received {signal.Signals(signum).name}, shutting down", flush=True)
            cancel_scope.cancel()
            return


async def run_node_async(config: NodeConfig, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    node = open_node(config)
    try:
        block_time = node.genesis.block_time if config.block_time is None else config.block_time
        wake_send, wake_recv = trio.open_memory_channel(1)

        def on_transaction(_tx_hash: bytes) -> None:
            try:
                wake_send.send_nowait(None)
            except trio.WouldBlock:  # a wake-up is already pending
                pass

        async with trio.open_nursery() as nursery:
            if threading.current_thread() is threading.main_thread():  # signals reach only that thread
                nursery.start_soon(_until_signal, nursery.cancel_scope)
            if node.genesis.validators:
                nursery.start_soon(produce_blocks, node, block_time, wake_recv)
            else:  # an imported Ethereum chain: a follower, as geth without a consensus client
                print("no validators in genesis: following only, not producing blocks", flush=True)
            urls = await nursery.start(functools.partial(
                serve, node, config.rpc, on_transaction=on_transaction if block_time == 0 else None))
            for url in urls:
                print(f"JSON-RPC listening on {url} (WebSocket: {url.replace('http', 'ws', 1)})", flush=True)
            task_status.started(urls)
    finally:
        node.close()


def run_node(config: NodeConfig) -> None:
    """Run the node until SIGINT/SIGTERM."""
    trio.run(run_node_async, config)
