"""The validator network: block time, commit latency, throughput, p2p bytes.

1. For N validators (default 1 and 4; `--validators 1,4,7`), real `openledger run` processes on
   loopback as `openledger testnet` starts them (block time 1 s): the interval between new
   heads seen by a client polling validator 0 (block time), and the commit latency of transfers
   sent one at a time to validator 0 from 10 senders (submitted -> its receipt in a decided
   block, p50/p99; a receipt only exists in a decided block).
2. Throughput: `--transfers` (default 1,000) pre-signed transfers sent to validator 0 as fast as
   one keep-alive connection allows; submit-to-all-mined rate, 4 validators against 1.
3. Catch-up is `python -m bench sync` (bench/bench_sync.py): a 10,000-block chain synced over
   p2p, import-only and raw py-evm beside it.
4. p2p bytes per block: the bytes validator 0 published (proposals, votes, transactions) over
   the run divided by the blocks decided (gossip relays by other peers not counted).

CometBFT's published figures are printed beside ours (see BENCHMARKS.md for the sources).
No torch involved: no thread pinning applies.
"""
from __future__ import annotations

import argparse
import http.client
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

COMETBFT = {
    "setup": "QA reports (docs.cometbft.com): 200 nodes (175 validators), kvstore app, DigitalOcean",
    "load": "just under saturation: 2 connections x 200 tx/s to the target node",
    "block time": "timeout_commit 1 s (default) plus the rounds",
    "note": "latencies are plotted there, not tabulated; not rerun here",
}


class Client:
    def __init__(self, url: str) -> None:
        host, port = url.split("//")[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.next_id = 0

    def call(self, method: str, *params):
        self.next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": list(params)})
        self.conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
        answer = json.loads(self.conn.getresponse().read())
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]


def _transfers(count: int, first_nonce: int = 0) -> list[bytes]:
    from eth_account import Account

    import genesis

    keys = [k for _, k in genesis.dev_accounts()]
    chain_id = genesis.devnet().chain_id
    out = []
    for i in range(count):
        tx = {"type": 2, "chainId": chain_id, "nonce": first_nonce + i // len(keys), "to": bytes([0x10 + i % 200]) * 20,
              "value": 1 + i, "gas": 21_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
        out.append(bytes(Account.sign_transaction(tx, keys[i % len(keys)]).raw_transaction))
    return out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(n: int, root: pathlib.Path) -> tuple[list, list[subprocess.Popen]]:
    from node.cli import testnet

    members = testnet._setup(root, n, [_free_port() for _ in range(n)], [_free_port() for _ in range(n)])
    procs = []
    for m in members:
        log = open(m.datadir / "node.log", "ab")
        procs.append(subprocess.Popen(testnet._command(m, members, root, 1.0), stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 300
    for m in members:
        while True:
            try:
                if int(Client(m.rpc).call("eth_blockNumber"), 16) >= 2:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"validators did not start: see {m.datadir / 'node.log'}")
            time.sleep(0.5)
    return members, procs


def _stop(procs) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure_network(n: int, transfers: int, latency_samples: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        members, procs = _start(n, pathlib.Path(tmp))
        try:
            client = Client(members[0].rpc)
            # block time: new heads over 15 s
            seen, last, intervals = int(client.call("eth_blockNumber"), 16), time.monotonic(), []
            end = time.monotonic() + 15
            while time.monotonic() < end:
                head = int(client.call("eth_blockNumber"), 16)
                if head != seen:
                    now = time.monotonic()
                    intervals.append((now - last) / (head - seen))
                    seen, last = head, now
                time.sleep(0.01)
            start_height = int(client.call("eth_blockNumber"), 16)
            published0 = (client.call("ol_consensusState") or {}).get("p2pBytesPublished", 0)
            # commit latency: one transfer at a time
            latencies = []
            for raw in _transfers(latency_samples):
                t0 = time.monotonic()
                tx_hash = client.call("eth_sendRawTransaction", "0x" + raw.hex())
                while client.call("eth_getTransactionReceipt", tx_hash) is None:
                    time.sleep(0.01)
                latencies.append(time.monotonic() - t0)
            # throughput: a burst
            burst = _transfers(transfers, first_nonce=(latency_samples + 9) // 10)
            t0 = time.monotonic()
            hashes = [client.call("eth_sendRawTransaction", "0x" + raw.hex()) for raw in burst]
            while client.call("eth_getTransactionReceipt", hashes[-1]) is None or any(
                    client.call("eth_getTransactionReceipt", h) is None for h in hashes[-10:]):
                time.sleep(0.05)
            while int(client.call("txpool_status")["pending"], 16):
                time.sleep(0.05)
            tps = transfers / (time.monotonic() - t0)
            end_height = int(client.call("eth_blockNumber"), 16)
            published = (client.call("ol_consensusState") or {}).get("p2pBytesPublished", 0) - published0
            return {"validators": n, "block_time_p50": statistics.median(intervals) if intervals else None,
                    "latency_p50": _pct(latencies, 0.5), "latency_p99": _pct(latencies, 0.99), "tps": tps,
                    "bytes_per_block": published / max(1, end_height - start_height) if n > 1 else 0}
        finally:
            _stop(procs)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench network", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--validators", default="1,4", help="comma-separated network sizes (default 1,4)")
    parser.add_argument("--transfers", type=int, default=1000)
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="200 transfers, 20 latency samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.transfers, args.latency_samples = 200, 20
    rows = []
    for n in (int(x) for x in args.validators.split(",")):
        print(f"{n} validator(s)...", flush=True)
        rows.append(measure_network(n, args.transfers, args.latency_samples))
        print("  ", rows[-1], flush=True)
    print("\n| validators | block time p50 (s) | commit latency p50 / p99 (s) | transfers/s | p2p bytes published per block (validator 0) |")
    print("|---|---|---|---|---|")
    for r in rows:
        bt = "-" if r["block_time_p50"] is None else f"{r['block_time_p50']:.2f}"
        print(f"| {r['validators']} | {bt} | {r['latency_p50']:.2f} / {r['latency_p99']:.2f} | {r['tps']:.0f} | "
              f"{r['bytes_per_block']:.0f} |")
    by_n = {r["validators"]: r for r in rows}
    if 1 in by_n and 4 in by_n:
        print(f"\nthroughput 4 validators / 1: {by_n[4]['tps'] / by_n[1]['tps']:.2f}x (target >= 0.8x)")
    print("catch-up (blocks/s of a node syncing 10,000 blocks): python -m bench sync")
    print("\nCometBFT's published figures for comparison:")
    for k, v in COMETBFT.items():
        print(f"  {k}: {v}")


if __name__ == "__main__":
    main(sys.argv[1:])
