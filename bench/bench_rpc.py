"""JSON-RPC speed: our devnet vs anvil on the same workloads in the same run.

1. eth_getBalance / eth_blockNumber over one keep-alive http.client connection (a wallet).
2. The same under `wrk` (2 threads, 16 connections, 5 s, a Lua script POSTing the body).
3. 2,000 pre-signed EIP-1559 transfers (10 senders x 200): submit rate over one keep-alive
   connection, and submit-to-all-mined rate with 1 s blocks.
Peak memory (VmHWM) of both processes. No torch involved, so no thread pinning applies.
Options: --quick (fewer requests, 2 s wrk, 400 transfers).
"""
from __future__ import annotations

import http.client
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from eth_account import Account
from rich.console import Console
from rich.table import Table

import genesis

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The platform binary itself, not npm's node.js launcher in .bin/ (whose memory we would measure).
ANVIL = next(iter(sorted((ROOT / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil"))),
             ROOT / "node_modules" / ".bin" / "anvil")
CHAIN_ID = genesis.devnet().chain_id
RUN_NODE = """
import sys, genesis
from node.app import NodeConfig, run_node
from node.rpc import RpcConfig
run_node(NodeConfig(sys.argv[1], genesis.devnet(), float(sys.argv[3]), RpcConfig(port=int(sys.argv[2]))))
"""
console = Console()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, cmd: list[str], port: int, log: pathlib.Path) -> None:
        self.name, self.port = name, port
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited: see {log}")
            try:
                if "result" in Client(port).call("eth_chainId"):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not start: see {log}")

    def peak_rss_mib(self) -> float:
        for line in pathlib.Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def start_ours(tmp: pathlib.Path, block_time: float) -> Server:
    port = _free_port()
    return Server("ours", [sys.executable, "-c", RUN_NODE, str(tmp / f"ours-{port}"), str(port), str(block_time)],
                  port, tmp / f"ours-{port}.log")


def start_anvil(tmp: pathlib.Path, block_time: float) -> Server:
    port = _free_port()
    args = ["--block-time", str(int(block_time))] if block_time else []
    return Server("anvil", [str(ANVIL), "--port", str(port), "--chain-id", str(CHAIN_ID), "--silent", *args],
                  port, tmp / f"anvil-{port}.log")


class Client:
    """One keep-alive HTTP connection, as a wallet holds it."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, body: bytes) -> bytes:
        self.conn.request("POST", "/", body, {"Content-Type": "application/json"})
        return self.conn.getresponse().read()

    def call(self, method: str, *params):
        return json.loads(self.post(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()))


def body(method: str, params: list) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()


WORKLOADS = {
    "eth_getBalance": body("eth_getBalance", [genesis.dev_accounts()[0][0], "latest"]),
    "eth_blockNumber": body("eth_blockNumber", []),
}


def keepalive_rate(port: int, payload: bytes, n: int) -> float:
    client = Client(port)
    for _ in range(200):  # warm-up
        client.post(payload)
    start = time.perf_counter()
    for _ in range(n):
        answer = client.post(payload)
    elapsed = time.perf_counter() - start
    assert b'"result"' in answer, answer
    return n / elapsed


def wrk_rate(port: int, payload: bytes, seconds: int, tmp: pathlib.Path) -> float:
    script = tmp / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = [[{payload.decode()}]]\n")
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        console.print(f"[yellow]wrk reported errors:[/]\n{out}")
    return float(out.split("Requests/sec:")[1].split()[0])


ROUNDS = 5
WRK_ROUNDS = 3


def _alternating(servers: list[Server], measure, rounds: int) -> list[float]:
    """Median per server of `rounds` measurements taken in turn (ours, anvil, ours, ...)."""
    samples: list[list[float]] = [[] for _ in servers]
    for _ in range(rounds):
        for i, server in enumerate(servers):
            samples[i].append(measure(server))
    return [statistics.median(x) for x in samples]


def presigned_transfers(count: int) -> list[bytes]:
    keys = [k for _, k in genesis.dev_accounts()]
    per_sender = count // len(keys)
    raws = []
    for nonce in range(per_sender):
        for key in keys:
            tx = {"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "to": "0x" + "33" * 20, "value": 1, "gas": 21_000,
                  "maxFeePerGas": 50 * 10**9, "maxPriorityFeePerGas": 10**9}
            raws.append(bytes(Account.sign_transaction(tx, key).raw_transaction))
    return raws


def transfers(server: Server, raws: list[bytes]) -> tuple[float, float]:
    """(submit tx/s, submit-to-all-mined tx/s) over one keep-alive connection."""
    client = Client(server.port)
    senders = [a for a, _ in genesis.dev_accounts()]
    expected = len(raws) // len(senders)
    start = time.perf_counter()
    for raw in raws:
        answer = client.call("eth_sendRawTransaction", "0x" + raw.hex())
        if "result" not in answer:
            raise RuntimeError(f"{server.name} refused a transfer: {answer}")
    submitted = time.perf_counter() - start
    while True:
        if all(int(client.call("eth_getTransactionCount", a, "latest")["result"], 16) >= expected for a in senders):
            break
        time.sleep(0.02)
    mined = time.perf_counter() - start
    return len(raws) / submitted, len(raws) / mined


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    n = 1000 if quick else 5000
    seconds = 2 if quick else 5
    count = 400 if quick else 2000
    if not ANVIL.exists() or shutil.which("wrk") is None:
        raise SystemExit("needs anvil (npm install) and wrk (apt-get install wrk)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_rpc-"))
    rows: list[tuple[str, float, float, str]] = []
    peaks: dict[str, float] = {}
    console.print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at start")

    servers = [start_ours(tmp, 0), start_anvil(tmp, 0)]
    try:
        # Rounds alternate between the two servers, and the median is reported: the machine is
        # shared, and its load shifts over seconds.
        for method, payload in WORKLOADS.items():
            rates = _alternating(servers, lambda s: keepalive_rate(s.port, payload, n // ROUNDS), ROUNDS)
            rows.append((f"{method}, 1 keep-alive conn (req/s)", *rates, ">= 1.0x"))
            console.print(f"  {rows[-1][0]}: ours {rates[0]:,.0f}, anvil {rates[1]:,.0f}")
        for method, payload in WORKLOADS.items():
            rates = _alternating(servers, lambda s: wrk_rate(s.port, payload, seconds, tmp), WRK_ROUNDS)
            rows.append((f"{method}, wrk 2 threads 16 conns (req/s)", *rates, ">= 0.3x"))
            console.print(f"  {rows[-1][0]}: ours {rates[0]:,.0f}, anvil {rates[1]:,.0f}")
        for s in servers:
            peaks[f"{s.name} (reads)"] = s.peak_rss_mib()
    finally:
        for s in servers:
            s.stop()

    raws = presigned_transfers(count)
    results = {}
    for start in (start_ours, start_anvil):
        server = start(tmp, 1)
        try:
            results[server.name] = transfers(server, raws)
            peaks[f"{server.name} (transfers)"] = server.peak_rss_mib()
            console.print(f"  {server.name}: submit {results[server.name][0]:,.0f} tx/s, "
                          f"all mined {results[server.name][1]:,.0f} tx/s")
        finally:
            server.stop()
    rows.append((f"{count} transfers: submit (tx/s)", results["ours"][0], results["anvil"][0], "-"))
    rows.append((f"{count} transfers: submit to all mined, 1 s blocks (tx/s)", results["ours"][1], results["anvil"][1],
                 ">= 0.5x"))

    table = Table(title="JSON-RPC: ours vs anvil (same run, same client)")
    for column in ("workload", "ours", "anvil", "ratio", "target"):
        table.add_column(column)
    for name, ours, theirs, target in rows:
        table.add_row(name, f"{ours:,.0f}", f"{theirs:,.0f}", f"{ours / theirs:.2f}x", target)
    for name, mib in peaks.items():
        table.add_row(f"peak RSS {name} (MiB)", f"{mib:,.0f}", "", "", "")
    console.print(table)
    console.print(f"load average {os.getloadavg()[0]:.1f} at the end")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
