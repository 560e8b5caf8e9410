"""p2p: vote gossip latency and bytes on the wire per block message, 4 hosts on 127.0.0.1.

One process per host, as validators run. Phase 1: each host publishes --rate votes per second
for --seconds; latency is publish -> delivery at each of the three other hosts (wall clocks of
one machine). Phase 2: --blocks proposals carrying a --block-kb block, one every 0.2 s from
rotating hosts; bytes are counted where they enter TCP (Noise, Yamux and gossip control
included), less each host's idle rate (heartbeats) measured just before. Also each host's CPU
use over the run. Options: --quick (3 s of votes, 5 blocks).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from libp2p.io.trio import TrioTCPStream
from libp2p.peer.id import ID

from node.p2p import Kind, load_or_create_key, open_p2p
from tests.p2p.helpers import Store, config, proposal, vote

HOSTS = 4
ROOT = Path(__file__).resolve().parent.parent


class ByteCounter:
    """Counts bytes written to every TCP connection of this process (a bench-only wrapper)."""

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


async def host(args) -> None:
    """One host: join the others, wait for the common start, publish, record, write results."""
    counter = ByteCounter()
    peers = [ID.from_base58(p) for p in args.peer_ids.split(",")]
    ports = [int(p) for p in args.ports.split(",")]
    others = [f"/ip4/127.0.0.1/tcp/{ports[j]}/p2p/{peers[j]}" for j in range(HOSTS) if j != args.index]
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    blocks_received = 0
    async with open_p2p(config(Path(args.dir) / f"n{args.index}", others, port=ports[args.index]),
                        Store().handlers()) as p2p:
        for j in range(HOSTS):
            if j != args.index:
                for kind in (Kind.VOTE, Kind.PROPOSAL):
                    await p2p.pubsub.wait_for_mesh(peers[j], p2p.topic(kind), timeout=30)

        async def receive() -> None:
            nonlocal blocks_received
            async for item in p2p.inbound:
                if item.kind is Kind.VOTE:
                    received[item.message.encode().hex()] = time.time()
                else:
                    blocks_received += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            if time.time() > args.start_at:
                raise SystemExit(f"host {args.index} was not meshed by the start time: raise the start delay")
            await until_wall_clock(args.start_at)
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            for n in range(int(args.rate * args.seconds)):
                v = vote(1 + n, args.index, hashlib.sha256(b"%d %d" % (args.index, n)).digest())
                sent[v.encode().hex()] = time.time()
                await p2p.publish_vote(v)
                await trio.sleep_until(trio.current_time() + 1 / args.rate)
            await until_wall_clock(args.start_at + args.seconds + 2)
            idle0 = counter.total
            await trio.sleep(1)
            idle_rate, start = counter.total - idle0, counter.total
            t0 = time.time()
            for n in range(args.blocks):
                if n % HOSTS == args.index:
                    block = b"block " + hashlib.sha256(b"%d" % n).digest() * (args.block_kb * 32)
                    await p2p.publish_proposal(proposal(1 + n, block), block)
                await trio.sleep(0.2)
            await trio.sleep(2)
            block_bytes = counter.total - start - idle_rate * (time.time() - t0)
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            nursery.cancel_scope.cancel()
    cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / (time.time() - args.start_at)
    Path(args.out).write_text(json.dumps({"sent": sent, "received": received, "blocks": blocks_received,
                                          "block_bytes": block_bytes, "cpu": cpu}))


async def until_wall_clock(when: float) -> None:
    await trio.sleep(max(0.0, when - time.time()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        peer_ids = [ID.from_pubkey(load_or_create_key(Path(tmp) / f"n{i}").public_key) for i in range(HOSTS)]
        ports = [free_port() for _ in range(HOSTS)]
        start_at = time.time() + 15    # time for four processes to import, listen and mesh
        procs = [subprocess.Popen(
            [sys.executable, "-m", "bench.bench_p2p", "--index", str(i), "--dir", tmp,
             "--peer-ids", ",".join(map(str, peer_ids)), "--ports", ",".join(map(str, ports)),
             "--start-at", str(start_at), "--out", f"{tmp}/out{i}.json", "--rate", str(args.rate),
             "--seconds", str(args.seconds), "--blocks", str(args.blocks), "--block-kb", str(args.block_kb)],
            cwd=ROOT, stderr=subprocess.DEVNULL) for i in range(HOSTS)]
        try:
            for p in procs:
                p.wait(timeout=start_at - time.time() + args.seconds + 30)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        results = [json.loads(Path(f"{tmp}/out{i}.json").read_text()) for i in range(HOSTS)]
    pairs = [(s["sent"][key] - start_at, (r["received"][key] - s["sent"][key]) * 1000)
             for s in results for r in results if r is not s for key in s["sent"] if key in r["received"]]
    latencies = [ms for _, ms in pairs]
    by_second = [statistics.median([ms for t, ms in pairs if int(t) == second] or [0.0])
                 for second in range(int(args.seconds))]
    expected = sum(len(s["sent"]) for s in results) * (HOSTS - 1)
    size = len(b"block ") + 32 * 32 * args.block_kb
    per_block = sum(r["block_bytes"] for r in results) / args.blocks
    print(f"votes: {len(latencies)} of {expected} deliveries; blocks: "
          f"{sum(r['blocks'] for r in results)} of {args.blocks * (HOSTS - 1)}")
    print(f"vote gossip latency, {HOSTS} processes, {args.rate:g} votes/s each: "
          f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms")
    print("p50 by second of the run: " + " ".join(f"{ms:.0f}" for ms in by_second) + " ms")
    print(f"bytes on the wire per block message ({size / 1024:.0f} KiB block, {HOSTS} hosts): "
          f"{per_block / 1024:.0f} KiB = {per_block / size:.1f} x the block")
    print("CPU per host: " + ", ".join(f"{r['cpu'] * 100:.0f}%" for r in results))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_p2p")
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--block-kb", type=int, default=100)
    parser.add_argument("--quick", action="store_true")
    for name in ("--index", "--dir", "--peer-ids", "--ports", "--start-at", "--out"):   # one host's run
        parser.add_argument(name, type=float if name == "--start-at" else int if name == "--index" else str)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.blocks = 3.0, 5
    if args.index is None:
        run(args)
    else:
        trio.run(host, args)


if __name__ == "__main__":
    main(sys.argv[1:])
