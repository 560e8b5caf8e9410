"""Settlement on an L1 (anvil from npm, Prague rules): L1 gas and calldata bytes per L2
transaction posted (zlib batches beside the same blocks posted as raw RLP), deposit latency (L1
deposit transaction -> L2 balance, with a real devnet process and 1 s L1 blocks), the gas of a
withdrawal's prove and finalise, and derivation speed (L2 blocks/s rebuilt from L1 data, beside
`import` of the same blocks from a local file); forced transactions through the L1 (latency L1
tx -> L2 receipt beside deposits in the same run, gas on both sides). No torch: nothing to pin.

OP Stack's figures printed beside ours are from memory of its specs and docs (this machine cannot
browse): treat them as approximate, not as measurements of this run.
"""
from __future__ import annotations

import argparse
import pathlib
import random
import shutil
import tempfile
import time

import rlp
from eth_account import Account
from eth_utils import to_checksum_address
from rich.console import Console
from rich.table import Table

import genesis
from node.chain import Node
from node.settlement import L1, Contract, Deployment, deploy_all
from node.settlement import batches
from node.settlement.derive import derive
from node.settlement.service import Settlement, SettlementConfig
from node.settlement.withdrawals import deposit, finalize, find, prove
from tests.rpc.nodes import ANVIL, NodeProcess, devnet_process, free_port

L1_CHAIN_ID = 31337
DEPLOYER, BATCHER = genesis.dev_accounts()[0][1], genesis.dev_accounts()[1][1]
OP_STACK = {
    "bytes": "~100 (Fjord's L1 fee model floors a tx's estimated compressed size at 100 bytes)",
    "deposit": "~1-3 min on OP Mainnet (deposits wait for the L1 origin to be a few blocks deep)",
    "withdrawal": "prove + finalise a few 100k gas each on L1; 7-day window",
}


def _anvil(tmp: pathlib.Path, *args: str) -> NodeProcess:
    port = free_port()
    cmd = [str(ANVIL), "--port", str(port), "--chain-id", str(L1_CHAIN_ID), "--silent", *args]
    return NodeProcess(cmd, port, tmp / f"anvil-{port}.log").wait_ready()


def _deploy(anvil: NodeProcess, node: Node, period: int = 1) -> Deployment:
    g = node.genesis
    return deploy_all(L1(anvil.url, DEPLOYER), l2_chain_id=g.chain_id, l2_genesis_hash=node.header_by_number(0).hash,
                      validators=[(v.address, v.power) for v in g.validators], batcher=L1(anvil.url, BATCHER).address,
                      escrow=genesis.DEVNET_BRIDGE_ESCROW, finalization_period=period)


def _fill(node: Node, blocks: int, per_block: int, seed: int = 7) -> int:
    """`blocks` blocks of `per_block` OPEN transfers from the ten dev accounts to fresh addresses."""
    rng = random.Random(seed)
    senders = [Account.from_key(k) for _, k in genesis.dev_accounts()]
    nonces = [0] * len(senders)
    for _ in range(blocks):
        for i in range(per_block):
            s = i % len(senders)
            tx = senders[s].sign_transaction({
                "type": 2, "chainId": node.chain_id, "nonce": nonces[s], "to": to_checksum_address(rng.randbytes(20)),
                "value": rng.randrange(1, 10**18), "gas": 21_000, "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9})
            nonces[s] += 1
            node.mempool.add_raw(bytes(tx.raw_transaction), local=False)
        node.produce_block()
    return blocks * per_block


def bench_batches(tmp: pathlib.Path, blocks: int, per_block: int, batch_blocks: int) -> dict:
    anvil = _anvil(tmp)
    try:
        with Node.init(tmp / "l2", genesis.devnet(bridge_escrow=genesis.DEVNET_BRIDGE_ESCROW)) as node:
            d = _deploy(anvil, node)
            txs = _fill(node, blocks, per_block)
            s = Settlement(node, SettlementConfig(anvil.url, d, BATCHER, (genesis.dev_validator()[1],),
                                                  output_interval=10**9, max_batch_blocks=batch_blocks))
            l1 = L1(anvil.url)
            gas = size = 0
            while (report := s.step()).batches:
                for first, last, tx in report.batches:
                    gas += int(l1.wait(tx)["gasUsed"], 16)
                    size += len(batches.encode([node.block_by_number(n) for n in range(first, last + 1)]))
            # the same blocks as raw RLP (no compression), their gas estimated on the same inbox state
            inbox = Contract(l1, "BatchInbox", d.inbox)
            raw_gas = raw_size = 0
            for first in range(1, blocks + 1, batch_blocks):
                last = min(blocks, first + batch_blocks - 1)
                raw = b"\x01" + rlp.encode([node.block_by_number(n) for n in range(first, last + 1)])
                call = inbox.encode("appendBatch", inbox.call("nextBlock"), inbox.call("nextBlock") + last - first, raw)
                raw_gas += int(l1.rpc("eth_estimateGas", {"from": d.batcher, "to": d.inbox,
                                                          "data": "0x" + call.hex()}), 16)
                raw_size += len(raw)
            # derivation: a fresh data dir from L1 data alone, beside importing the same blocks locally
            with Node.init(tmp / "derived", node.genesis) as fresh:
                t0 = time.perf_counter()
                derive(fresh, l1, d)
                derive_s = time.perf_counter() - t0
                assert fresh.head().hash == node.head().hash
            with Node.init(tmp / "imported", node.genesis) as local:
                loaded = [node.block_by_number(n) for n in range(1, blocks + 1)]
                t0 = time.perf_counter()
                for b in loaded:
                    local.import_block(b)
                import_s = time.perf_counter() - t0
        return {"txs": txs, "gas": gas, "bytes": size, "raw_gas": raw_gas, "raw_bytes": raw_size,
                "derive_bps": blocks / derive_s, "import_bps": blocks / import_s, "blocks": blocks}
    finally:
        anvil.stop()


def bench_withdrawal(tmp: pathlib.Path) -> dict:
    """Gas of one withdrawal's prove and finalise (deterministic: one run is the figure)."""
    import functools
    import threading

    import trio

    from node.rpc import RpcConfig, serve
    from node.sdk import Client

    anvil = _anvil(tmp)
    try:
        with Node.init(tmp / "l2w", genesis.devnet(bridge_escrow=genesis.DEVNET_BRIDGE_ESCROW)) as node:
            d = _deploy(anvil, node)
            holder, ready = {}, threading.Event()

            async def main():
                with trio.CancelScope() as scope:
                    holder["scope"], holder["token"] = scope, trio.lowlevel.current_trio_token()
                    async with trio.open_nursery() as n:
                        holder["url"] = (await n.start(functools.partial(serve, node, RpcConfig(port=free_port()))))[0]
                        ready.set()

            thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
            thread.start()
            ready.wait(60)
            try:
                user = Client(holder["url"], genesis.dev_accounts()[5][1])
                raw, tx_hash = user.build("L2Bridge", "withdraw", Account.create().address, value=10**18)
                user.rpc("eth_sendRawTransaction", "0x" + raw.hex())
                node.produce_block()
                w = find(user, "0x" + tx_hash.hex())
                l2_gas = int(user.rpc("eth_getTransactionReceipt", "0x" + tx_hash.hex())["gasUsed"], 16)
                s = Settlement(node, SettlementConfig(anvil.url, d, BATCHER, (genesis.dev_validator()[1],),
                                                      output_interval=1))
                while (report := s.step()).batches or report.outputs:
                    pass
                l1 = L1(anvil.url, BATCHER)
                proved = prove(l1, d, user, w)
                anvil.rpc("evm_increaseTime", hex(2))
                anvil.rpc("anvil_mine", "0x1")
                finalized = finalize(l1, d, w)
                oracle = Contract(l1, "OutputOracle", d.oracle)
                logs = oracle.events("OutputProposed", d.deploy_block)
                output_gas = int(l1.receipt(logs[0]["transactionHash"])["gasUsed"], 16)
            finally:
                trio.from_thread.run_sync(holder["scope"].cancel, trio_token=holder["token"])
                thread.join(30)
        return {"l2_withdraw": l2_gas, "prove": int(proved["gasUsed"], 16), "finalize": int(finalized["gasUsed"], 16),
                "output": output_gas}
    finally:
        anvil.stop()


def _deposit_latency(l1: L1, d: Deployment, node: NodeProcess, i: int) -> float:
    """Seconds from deposit `i` locked on the L1 to its recipient's balance on the L2."""
    to = Account.create().address
    deposit(l1, d, to, 10**18)
    t0 = time.perf_counter()
    while int(node.rpc("eth_getBalance", to, "latest"), 16) == 0:
        time.sleep(0.05)
        if time.perf_counter() - t0 > 120:
            raise RuntimeError(f"deposit {i} not relayed in 120 s: see {node.log}")
    return time.perf_counter() - t0


def bench_deposit_latency(tmp: pathlib.Path, count: int) -> list[float]:
    """Seconds from an L1 deposit's receipt to the L2 balance showing it: real processes, anvil with
    1 s blocks, devnet with 1 s blocks, F = 2 confirmations, a settlement step every 2 s."""
    anvil = _anvil(tmp, "--block-time", "1")
    datadir = tmp / "l2d"
    node = devnet_process(datadir, "--l1", anvil.url, "--l1.confirmations", "2").wait_ready()
    try:
        d = Deployment.load(datadir / "l1-deployment.json")
        l1 = L1(anvil.url, DEPLOYER)
        out = []
        for i in range(count):
            out.append(_deposit_latency(l1, d, node, i))
        return out
    finally:
        node.stop()
        anvil.stop()


def bench_forced(tmp: pathlib.Path, count: int) -> dict:
    """Forced transactions on a real devnet process (anvil 1 s blocks, 1 s L2 blocks, F = 2, a
    settlement step every 2 s): seconds from the L1 forceTransaction receipt to the L2 receipt,
    beside deposits over the same path in the same run; L1 gas of forceTransaction (a transfer, and
    the largest allowed), L2 gas of the relay, and proposeOutput's gas with the data check."""
    from eth_utils import keccak

    from node.sdk import Client
    from node.settlement.withdrawals import force
    anvil = _anvil(tmp, "--block-time", "1")
    datadir = tmp / "l2f"
    node = devnet_process(datadir, "--l1", anvil.url, "--l1.confirmations", "2").wait_ready()
    try:
        d = Deployment.load(datadir / "l1-deployment.json")
        l1, l2 = L1(anvil.url, DEPLOYER), Client(node.url)
        chain_id = int(node.rpc("eth_chainId"), 16)
        sender = Account.from_key(genesis.dev_accounts()[7][1])
        forced, deposits, l1_gas, relay_gas, size = [], [], [], [], 0
        for i in range(count):
            raw = bytes(sender.sign_transaction({
                "type": 2, "chainId": chain_id, "nonce": i, "to": Account.create().address, "value": 10**15,
                "gas": 21_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}).raw_transaction)
            receipt, size = force(l1, d, raw), len(raw)
            t0 = time.perf_counter()
            l1_gas.append(int(receipt["gasUsed"], 16))
            while (l2_receipt := node.rpc("eth_getTransactionReceipt", "0x" + keccak(raw).hex())) is None:
                time.sleep(0.05)
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError(f"forced transaction {i} not included in 120 s: see {node.log}")
            forced.append(time.perf_counter() - t0)
            index = int(l2_receipt["transactionIndex"], 16)
            block = l2.rpc("eth_getBlockByNumber", l2_receipt["blockNumber"], True)
            relay = node.rpc("eth_getTransactionReceipt", block["transactions"][index - 1]["hash"])
            relay_gas.append(int(relay["gasUsed"], 16))
            deposits.append(_deposit_latency(l1, d, node, i))
        largest = int(force(l1, d, b"\x02" + b"\xab" * 16_383)["gasUsed"], 16)
        oracle = Contract(l1, "OutputOracle", d.oracle)
        logs = oracle.events("OutputProposed", d.deploy_block)
        output_gas = int(l1.receipt(logs[0]["transactionHash"])["gasUsed"], 16)
        return {"forced": sorted(forced), "deposits": sorted(deposits), "l1_gas": l1_gas[0], "size": size,
                "largest": largest,
                "relay_gas": relay_gas[0], "output": output_gas}
    finally:
        node.stop()
        anvil.stop()


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench settlement")
    p.add_argument("--blocks", type=int, default=40)
    p.add_argument("--per-block", type=int, default=50, help="OPEN transfers per L2 block")
    p.add_argument("--batch-blocks", type=int, default=20, help="L2 blocks per batch")
    p.add_argument("--deposits", type=int, default=5)
    p.add_argument("--forced", type=int, default=5, help="forced transactions (and deposits beside them)")
    p.add_argument("--only", choices=("forced",), help="run one part only")
    args = p.parse_args(argv)
    if not ANVIL.exists() or shutil.which("node") is None:
        print("anvil comes from npm: run `npm install` first")
        return
    console = Console()
    with tempfile.TemporaryDirectory() as tmp_name:
        f = bench_forced(pathlib.Path(tmp_name), args.forced)
    t = Table(title=f"Forced transactions through the L1 ({args.forced}, each beside a deposit, same devnet)")
    t.add_column("figure")
    t.add_column("ours", justify="right")
    t.add_column("beside it", justify="right")
    med = lambda xs: xs[len(xs) // 2]  # noqa: E731
    t.add_row("latency, L1 receipt -> L2 receipt, s (median / max)", f"{med(f['forced']):.1f} / {f['forced'][-1]:.1f}",
              f"deposit -> L2 balance {med(f['deposits']):.1f} / {f['deposits'][-1]:.1f} "
              f"({med(f['forced']) / med(f['deposits']):.2f}x)")
    t.add_row(f"L1 forceTransaction gas, a {f['size']}-byte transfer", str(f["l1_gas"]), "")
    t.add_row("L1 forceTransaction gas, 16,384 bytes (the maximum)", str(f["largest"]), "")
    t.add_row("L2 relayForced gas (paid by the proposer)", str(f["relay_gas"]), "+ the transaction's own gas")
    t.add_row("L1 proposeOutput gas, with the posted-data check", str(f["output"]), "")
    console.print(t)
    if args.only == "forced":
        return
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = pathlib.Path(tmp_name)
        b = bench_batches(tmp, args.blocks, args.per_block, args.batch_blocks)
        w = bench_withdrawal(tmp)
        lat = sorted(bench_deposit_latency(tmp, args.deposits))
    t = Table(title=f"Settlement on anvil (Prague): {b['txs']} OPEN transfers in {b['blocks']} L2 blocks, "
                    f"{args.batch_blocks} blocks per batch")
    t.add_column("figure")
    t.add_column("ours", justify="right")
    t.add_column("beside it", justify="right")
    t.add_column("OP Stack (from memory)", justify="left")
    t.add_row("calldata bytes per L2 tx, zlib", f"{b['bytes'] / b['txs']:.1f}",
              f"raw RLP {b['raw_bytes'] / b['txs']:.1f} ({b['raw_bytes'] / b['bytes']:.2f}x)", OP_STACK["bytes"])
    t.add_row("L1 gas per L2 tx, zlib", f"{b['gas'] / b['txs']:.0f}",
              f"raw RLP {b['raw_gas'] / b['txs']:.0f} ({b['raw_gas'] / b['gas']:.2f}x)",
              "(blobs since Ecotone)")
    t.add_row("calldata at 16 gas/byte (pre-Prague price)", f"{16 * b['bytes'] / b['txs']:.0f}",
              "Prague's EIP-7623 floor: 40 gas per non-zero byte", "~1,600")
    t.add_row("deposit latency, s (median / max)", f"{lat[len(lat) // 2]:.1f} / {lat[-1]:.1f}",
              "1 s L1 blocks, F=2", OP_STACK["deposit"])
    t.add_row("withdrawal: L2 withdraw gas", str(w["l2_withdraw"]), "", "")
    t.add_row("withdrawal: L1 prove gas", str(w["prove"]), "", OP_STACK["withdrawal"])
    t.add_row("withdrawal: L1 finalise gas", str(w["finalize"]), "", "")
    t.add_row("output root post gas (1 validator)", str(w["output"]), "", "")
    t.add_row(f"derivation, L2 blocks/s ({args.per_block} tx each)", f"{b['derive_bps']:.1f}",
              f"local import {b['import_bps']:.1f} ({b['derive_bps'] / b['import_bps']:.2f}x)", "")
    console.print(t)
