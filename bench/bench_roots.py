"""Output roots signed over the validator network (issue #15, docs/settlement.md): four
`openledger run` validators on loopback settling on anvil (validator 0 the batcher and proposer,
all four signing and gossiping their signatures), beside one devnet validator settling alone on
the same kind of L1, in the same run. Figures: signatures each posted root carried, the time from
an L2 block being decided (first seen by polling a validator's JSON-RPC every 50 ms) to its root
on the L1 (OutputOracle.latestBlockNumber polled the same way), and the L1 gas of proposeOutput.
No torch: nothing to pin.

OP Stack's op-proposer posts an output about once an hour on OP Mainnet (from memory of its
docs: this machine cannot browse), so its block-to-root time is up to an hour by configuration,
not by cost; it is printed for scale, not as a measurement of this run.
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import tempfile
import time

from rich.console import Console
from rich.table import Table

from node.settlement import L1, Contract, Deployment
from tests.rpc.nodes import ANVIL, devnet_process
from tests.settlement.conftest import start_l1
from tests.settlement.validator_net import SettlingNetwork

POLL_S = 0.05


def _measure(l2_url_node, l1_url: str, d: Deployment, k: int, outputs: int, timeout: float = 600) -> dict:
    """Poll the L2 head and the oracle until `outputs` roots after the first have landed."""
    oracle = Contract(L1(l1_url), "OutputOracle", d.oracle)
    decided: dict[int, float] = {}
    landed: dict[int, float] = {}
    start_head = int(l2_url_node.rpc("eth_blockNumber"), 16)  # blocks decided before we looked are not timed
    base = None  # roots counted are those of blocks base + k .. base + outputs * k
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = time.monotonic()
        head = int(l2_url_node.rpc("eth_blockNumber"), 16)
        for n in range(max(decided, default=start_head) + 1, head + 1):
            decided[n] = now
        latest = oracle.call("latestBlockNumber")
        if latest and base is None:  # the first root includes start-up (and catching up): not counted
            base = max(latest, start_head - start_head % k)
        for n in range(k, latest + 1, k):
            landed.setdefault(n, now)
        if base is not None and latest >= base + outputs * k:
            break
        time.sleep(POLL_S)
    counted = [n for n in sorted(landed) if base is not None and base < n <= base + outputs * k and n in decided]
    latencies = [landed[n] - decided[n] for n in counted]
    l1 = oracle.l1
    signatures, gas = [], []
    for e in oracle.events("OutputProposed", d.deploy_block):
        if e["args"]["l2BlockNumber"] in counted:
            tx = l1.rpc("eth_getTransactionByHash", e["transactionHash"])
            signatures.append(len(oracle.decode_input("proposeOutput", bytes.fromhex(tx["input"][2:]))[3]))
            gas.append(int(l1.receipt(e["transactionHash"])["gasUsed"], 16))
    return {"roots": len(counted), "latencies": latencies, "signatures": signatures, "gas": gas}


def _row(table: Table, name: str, m: dict) -> None:
    lat = sorted(m["latencies"])
    sigs = m["signatures"]
    table.add_row(name, str(m["roots"]), f"{min(sigs)}-{max(sigs)} (mean {statistics.mean(sigs):.2f})" if sigs else "-",
                  f"{statistics.median(lat):.2f}" if lat else "-", f"{lat[-1]:.2f}" if lat else "-",
                  f"{statistics.median(m['gas']):,.0f}" if m["gas"] else "-")


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="python -m bench roots")
    p.add_argument("--outputs", type=int, default=8, help="roots measured (after the first)")
    p.add_argument("--interval", type=int, default=4, help="K: a root every K L2 blocks")
    p.add_argument("--block-time", type=float, default=1.0)
    args = p.parse_args(argv)
    if not ANVIL.exists() or shutil.which("node") is None:
        print("skipped: anvil comes from npm (npm install)")
        return
    console = Console(width=150)
    with tempfile.TemporaryDirectory(prefix="bench-roots-") as tmp:
        tmp = pathlib.Path(tmp)
        anvil = start_l1(tmp)
        try:
            net = SettlingNetwork(tmp / "net", anvil.url, output_interval=args.interval, block_time=args.block_time)
            try:
                nodes = net.start([True] * 4)
                four = _measure(nodes[1], anvil.url, net.deployment, args.interval, args.outputs)
            finally:
                net.stop()
        finally:
            anvil.stop()
        anvil = start_l1(tmp)
        try:
            datadir = tmp / "devnet"
            node = devnet_process(datadir, "--l1", anvil.url, "--l1.output-interval", str(args.interval),
                                  "--l1.batch-interval", "0", "--block-time", str(args.block_time)).wait_ready(240)
            try:
                one = _measure(node, anvil.url, Deployment.load(datadir / "l1-deployment.json"), args.interval,
                               args.outputs)
            finally:
                node.stop()
        finally:
            anvil.stop()
    table = Table(title=f"output roots on the L1 (K = {args.interval}, {args.block_time:g} s L2 blocks, anvil "
                        "automine, proposer step every 2 s)")
    for column in ("validators", "roots", "signatures per root", "block -> root median s", "max s",
                   "proposeOutput gas (median)"):
        table.add_column(column)
    _row(table, "4 (gossiped signatures)", four)
    _row(table, "1 (devnet, signs alone)", one)
    table.add_row("OP Stack (op-proposer, from memory)", "-", "1 (one proposer)", "up to ~3600 (hourly)", "-", "-")
    console.print(table)
    if four["latencies"] and one["latencies"]:
        print(f"ratio 4 validators / 1, median block -> root: "
              f"{statistics.median(four['latencies']) / statistics.median(one['latencies']):.2f}x; "
              f"gas: {statistics.median(four['gas']) / statistics.median(one['gas']):.2f}x")
