"""Explorer indexing: blocks, receipts and callTracer traces of the same chain, ours vs anvil.

The same signed transactions go into the same blocks on both nodes: ours builds the chain in
its data dir (mempool + produce_block, then `openledger devnet` serves it), anvil gets each
block's transactions over RPC and mines them with `evm_mine` (`--no-mining`). The mix per block:
EIP-1559 and legacy transfers, contract deployments, calls that CREATE a contract with value,
calls that catch a reverting STATICCALL and DELEGATECALLs; every 10th block holds 15 txs.

Then an indexer walks blocks 1..N the way Blockscout does, with WORKERS concurrent keep-alive
connections: eth_getBlockByNumber(n, true), one JSON-RPC batch of the block's receipts, and
debug_traceBlockByNumber(n, callTracer). Reported: requests/s per kind (a batch entry counts as
a request), the ratio to anvil, and Blockscout's published node requirements (eth_getBlockByNumber
of a 15-tx block < 0.5 s, a batch of 15 receipts < 1 s, 200 requests/s sustained).
No torch involved, so no thread pinning applies. Options: --blocks=N (default 1000), --quick (200).
"""
from __future__ import annotations

import concurrent.futures
import json
import pathlib
import statistics
import tempfile
import time

from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from eth._utils.address import generate_contract_address
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

import genesis
from bench.bench_rpc import ANVIL, CHAIN_ID, ROOT, Client, Server, _free_port

WORKERS = 4
TARGETS = {"blocks": 1.0, "receipts": 1.0, "traces": 0.5}
console = Console()


def _selector(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


def build_blocks(count: int) -> list[list[bytes]]:
    """`count` blocks of signed transactions from the ten dev accounts (deterministic)."""
    from tests.rpc.solc import compile_contract  # solc-js from npm, as the tests use it

    _, code = compile_contract("Explorer", ROOT / "tests" / "tracing" / "contracts")
    keys = [key for _, key in genesis.dev_accounts()]
    senders = [Account.from_key(k).address for k in keys]
    nonces = [0] * len(keys)
    explorers = [to_checksum_address(generate_contract_address(bytes.fromhex(s[2:]), 0)) for s in senders]
    blocks: list[list[bytes]] = []
    turn = 0

    def sign(i: int, **fields) -> bytes:
        tx = {"chainId": CHAIN_ID, "nonce": nonces[i], "gas": 400_000, "value": 0, **fields}
        if "gasPrice" not in tx:
            tx.update(type=2, maxFeePerGas=100 * 10**9, maxPriorityFeePerGas=10**9)
        nonces[i] += 1
        return bytes(Account.sign_transaction(tx, keys[i]).raw_transaction)

    for number in range(1, count + 1):
        if number == 1:  # every sender deploys its Explorer first (nonce 0)
            blocks.append([sign(i, data=code, gas=1_000_000) for i in range(len(keys))])
            continue
        size = 15 if number % 10 == 0 else number % 4 + 1
        txs = []
        for _ in range(size):
            i, kind = turn % len(keys), turn % 6
            turn += 1
            if kind == 0:
                txs.append(sign(i, to=senders[(i + 1) % len(keys)], value=10**15, gas=21_000))
            elif kind == 1:
                txs.append(sign(i, to=senders[(i + 2) % len(keys)], value=1, gas=21_000, gasPrice=50 * 10**9))
            elif kind == 2:
                txs.append(sign(i, to=explorers[i], value=1, data=_selector("make()")))
            elif kind == 3:
                txs.append(sign(i, to=explorers[i], data=_selector("catchFail()")))
            elif kind == 4:
                txs.append(sign(i, to=explorers[i], data=_selector("borrow()")))
            else:
                txs.append(sign(i, data=code, gas=1_000_000))
        blocks.append(txs)
    return blocks


def prepare_ours(datadir: pathlib.Path, blocks: list[list[bytes]]) -> None:
    from node.chain import Node

    g = genesis.devnet()
    with Node.init(datadir, g) as node, Progress(console=console) as progress:
        task = progress.add_task("ours: building blocks", total=len(blocks))
        timestamp = node.head().timestamp
        for txs in blocks:
            for raw in txs:
                node.mempool.add_raw(raw)
            timestamp += 1
            block = node.produce_block(timestamp)
            if len(block.transactions) != len(txs):
                raise RuntimeError(f"block {block.number}: {len(block.transactions)} of {len(txs)} txs included")
            progress.advance(task)


def prepare_anvil(server: Server, blocks: list[list[bytes]]) -> None:
    client = Client(server.port)
    with Progress(console=console) as progress:
        task = progress.add_task("anvil: mining blocks", total=len(blocks))
        for txs in blocks:
            batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransaction", "params": ["0x" + raw.hex()]}
                     for i, raw in enumerate(txs)]
            answers = json.loads(client.post(json.dumps(batch).encode()))
            errors = [a for a in answers if "error" in a]
            if errors:
                raise RuntimeError(f"anvil refused: {errors[0]}")
            client.call("evm_mine")
            progress.advance(task)
    head = int(client.call("eth_blockNumber")["result"], 16)
    if head != len(blocks):
        raise RuntimeError(f"anvil head {head}, want {len(blocks)}")


def _rpc(method: str, params: list, id_: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "method": method, "params": params}


def index(port: int, count: int, kind: str) -> tuple[float, list[float], int]:
    """Walk blocks 1..count with WORKERS connections; (requests/s, per-block latencies, requests)."""
    clients = [Client(port) for _ in range(WORKERS)]
    hashes: dict[int, list[str]] = {}
    if kind == "receipts":  # the transaction hashes come from the block walk (not timed)
        for n in range(1, count + 1):
            block = clients[0].call("eth_getBlockByNumber", hex(n), False)["result"]
            hashes[n] = block["transactions"]

    def work(worker: int) -> tuple[list[float], int]:
        client, latencies, requests = clients[worker], [], 0
        for n in range(1 + worker, count + 1, WORKERS):
            if kind == "blocks":
                body = _rpc("eth_getBlockByNumber", [hex(n), True])
                size = 1
            elif kind == "receipts":
                body = [_rpc("eth_getTransactionReceipt", [h], i) for i, h in enumerate(hashes[n])]
                size = len(body)
            else:
                body = _rpc("debug_traceBlockByNumber", [hex(n), {"tracer": "callTracer"}])
                size = 1
            start = time.perf_counter()
            answer = json.loads(client.post(json.dumps(body).encode()))
            latencies.append(time.perf_counter() - start)
            bad = [a for a in (answer if isinstance(answer, list) else [answer]) if "error" in a or a["result"] is None]
            if bad:
                raise RuntimeError(f"{kind} of block {n}: {bad[0]}")
            requests += size
        return latencies, requests

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(work, range(WORKERS)))
    elapsed = time.perf_counter() - start
    latencies = [x for lat, _ in results for x in lat]
    requests = sum(r for _, r in results)
    return requests / elapsed, latencies, requests


def blockscout_checks(port: int, blocks: list[list[bytes]]) -> tuple[list[float], list[float]]:
    """Latencies of eth_getBlockByNumber(full) and of a 15-receipt batch, for each 15-tx block."""
    client = Client(port)
    block_times, batch_times = [], []
    for n, txs in enumerate(blocks, start=1):
        if len(txs) != 15:
            continue
        start = time.perf_counter()
        block = json.loads(client.post(json.dumps(_rpc("eth_getBlockByNumber", [hex(n), True])).encode()))["result"]
        block_times.append(time.perf_counter() - start)
        batch = [_rpc("eth_getTransactionReceipt", [tx["hash"]], i) for i, tx in enumerate(block["transactions"])]
        start = time.perf_counter()
        client.post(json.dumps(batch).encode())
        batch_times.append(time.perf_counter() - start)
    return block_times, batch_times


def _median_and_worst(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} / {max(values):.3f}"


def main(argv: list[str]) -> None:
    count = 200 if "--quick" in argv else 1000
    for arg in argv:
        if arg.startswith("--blocks="):
            count = int(arg.split("=", 1)[1])
    if not ANVIL.exists():
        raise SystemExit("needs anvil and solc-js: run `npm install`")
    console.print(f"building {count} blocks of mixed transactions (signing)...")
    blocks = build_blocks(count)
    console.print(f"{sum(len(b) for b in blocks)} transactions in {count} blocks")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-indexing-"))
    datadir = tmp / "ours"
    start = time.perf_counter()
    prepare_ours(datadir, blocks)
    console.print(f"ours built the chain in {time.perf_counter() - start:.1f}s")
    port = _free_port()
    ours = Server("ours", [str(ROOT / ".venv" / "bin" / "openledger"), "devnet", "--datadir", str(datadir),
                           "--http.port", str(port), "--block-time", "3600", "--http.api", "eth,net,web3,debug"],
                  port, tmp / "ours.log")
    anvil_port = _free_port()
    anvil = Server("anvil", [str(ANVIL), "--port", str(anvil_port), "--chain-id", str(CHAIN_ID), "--silent",
                             "--no-mining"], anvil_port, tmp / "anvil.log")
    try:
        start = time.perf_counter()
        prepare_anvil(anvil, blocks)
        console.print(f"anvil mined the chain in {time.perf_counter() - start:.1f}s")
        # Blockscout's latency checks first, on cold caches (the walks below warm them).
        checks = {s.name: blockscout_checks(s.port, blocks) for s in (ours, anvil)}
        rows, sustained = [], {}  # server -> (requests, seconds) of the block and receipt walks
        for kind in ("blocks", "receipts", "traces"):
            rates = {}
            for server in (ours, anvil):
                rate, latencies, requests = index(server.port, count, kind)
                rates[server.name] = rate
                console.print(f"  {kind:8} {server.name:5}: {rate:8,.0f} requests/s ({requests} requests, "
                              f"worst {max(latencies) * 1000:.0f} ms)")
                if kind != "traces":
                    done, seconds = sustained.get(server.name, (0, 0.0))
                    sustained[server.name] = (done + requests, seconds + requests / rate)
            rows.append((f"{kind} (requests/s, {WORKERS} connections)", rates["ours"], rates["anvil"],
                         rates["ours"] / rates["anvil"], f">= {TARGETS[kind]}x"))
        table = Table(title=f"Explorer indexing of {count} blocks: ours vs anvil (same blocks, same client)")
        for column in ("workload", "ours", "anvil", "ratio", "target"):
            table.add_column(column)
        for name, mine, theirs, ratio, target in rows:
            table.add_row(name, f"{mine:,.0f}", f"{theirs:,.0f}", f"{ratio:.2f}x", target)
        table.add_row("eth_getBlockByNumber, 15 txs: median / worst (s)", _median_and_worst(checks["ours"][0]),
                      _median_and_worst(checks["anvil"][0]), "-", "< 0.5 s (Blockscout)")
        table.add_row("batch of 15 receipts: median / worst (s)", _median_and_worst(checks["ours"][1]),
                      _median_and_worst(checks["anvil"][1]), "-", "< 1 s (Blockscout)")
        rate = {name: done / seconds for name, (done, seconds) in sustained.items()}
        table.add_row("sustained blocks + receipts (requests/s)", f"{rate['ours']:,.0f}", f"{rate['anvil']:,.0f}",
                      "-", ">= 200 (Blockscout)")
        table.add_row("peak RSS (MiB)", f"{ours.peak_rss_mib():.0f}", f"{anvil.peak_rss_mib():.0f}", "-", "-")
        console.print(table)
    finally:
        ours.stop()
        anvil.stop()
