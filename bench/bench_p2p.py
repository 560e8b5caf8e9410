"""p2p: vote gossip latency and bytes on the wire per block message, 4 hosts on 127.0.0.1.

All four `node.p2p` services run in this one process and trio loop (one core for all of them,
so latencies include waiting for the other three hosts' work; NOTES.md's figures used one
process per host). Phase 1: each host publishes votes at --rate per second for --seconds;
latency is publish -> delivery at each of the three other hosts. Phase 2: --blocks proposals
carrying a --block-kb block, one every 0.2 s from rotating hosts; bytes are counted at the TCP
layer (Noise and Yamux framing and gossip control included), less the idle rate (heartbeats)
measured just before. Options: --quick (2 s of votes, 5 blocks).
"""
from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import trio
from libp2p.io.trio import TrioTCPStream

from node.p2p import Kind
from tests.p2p.helpers import network, proposal, vote

HOSTS = 4


class ByteCounter:
    """Counts bytes written to every TCP connection in the process (a bench-only wrapper)."""

    def __init__(self) -> None:
        self.total = 0
        original = TrioTCPStream.write

        async def write(stream: TrioTCPStream, data: bytes) -> None:
            self.total += len(data)
            await original(stream, data)
        TrioTCPStream.write = write


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def vote_latency(nodes, rate: float, seconds: float) -> list[float]:
    sent: dict[bytes, float] = {}
    latencies: list[float] = []
    expected = int(rate * seconds) * len(nodes) * (len(nodes) - 1)

    async def receive(node) -> None:
        async for item in node.inbound:
            if item.kind is Kind.VOTE:
                latencies.append(time.perf_counter() - sent[item.message.encode()])

    async def send(i: int, node) -> None:
        for n in range(int(rate * seconds)):
            v = vote(1 + n, i, hashlib.sha256(b"%d %d" % (i, n)).digest())
            sent[v.encode()] = time.perf_counter()
            await node.publish_vote(v)
            await trio.sleep(1 / rate)

    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(receive, node)
        async with trio.open_nursery() as senders:
            for i, node in enumerate(nodes):
                senders.start_soon(send, i, node)
        with trio.move_on_after(10):
            while len(latencies) < expected:
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    print(f"votes: {len(latencies)} of {expected} deliveries")
    return latencies


async def block_bytes(nodes, counter: ByteCounter, blocks: int, block_kb: int) -> tuple[float, int]:
    idle_start, t0 = counter.total, time.perf_counter()
    await trio.sleep(2)
    idle_rate = (counter.total - idle_start) / (time.perf_counter() - t0)
    received = 0

    async def receive(node) -> None:
        nonlocal received
        async for item in node.inbound:
            if item.kind is Kind.PROPOSAL:
                received += 1

    start, t0 = counter.total, time.perf_counter()
    async with trio.open_nursery() as nursery:
        for node in nodes:
            nursery.start_soon(receive, node)
        for n in range(blocks):
            block = b"block " + bytes(n % 256 for _ in range(block_kb * 1024))
            await nodes[n % len(nodes)].publish_proposal(proposal(1 + n, block), block)
            await trio.sleep(0.2)
        with trio.move_on_after(10):
            while received < blocks * (len(nodes) - 1):
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    elapsed = time.perf_counter() - t0
    print(f"blocks: {received} of {blocks * (len(nodes) - 1)} deliveries")
    return (counter.total - start - idle_rate * elapsed) / blocks, block_kb * 1024


async def run(args) -> None:
    counter = ByteCounter()
    with tempfile.TemporaryDirectory() as tmp:
        async with network(Path(tmp), HOSTS) as nodes:
            latencies = await vote_latency(nodes, args.rate, args.seconds)
            per_block, size = await block_bytes(nodes, counter, args.blocks, args.block_kb)
    ms = [x * 1000 for x in latencies]
    print(f"vote gossip latency, {HOSTS} hosts, {args.rate:g} votes/s per host: "
          f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms")
    print(f"bytes on the wire per block message ({size // 1024} KiB block, {HOSTS} hosts): "
          f"{per_block / 1024:.0f} KiB = {per_block / size:.1f} x the block")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_p2p")
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block-kb", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.blocks = 2.0, 5
    trio.run(run, args)


if __name__ == "__main__":
    import sys
    main(sys.argv[1:])
