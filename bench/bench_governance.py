"""OPEN governance: gas of each lifecycle step on our predeploys beside the same OpenZeppelin
contracts deployed on anvil, and the time from proposal to effect with the devnet's short periods.

Both chains run the same bytecode (vm/governance.json) with the same settings (voting delay 1
block, period 20 blocks, 5% quorum, 10 s timelock), and the same client (web3.py, standard ABIs)
drives them. The proposal is a treasury grant, the one action anvil can execute too (it has no
Params module). Gas is deterministic, so one run is the figure; the time is wall clock with 1 s
blocks on both.
"""
from __future__ import annotations

import pathlib
import sys
import tempfile
import time

import rlp
from eth_abi import encode
from eth_utils import keccak, to_canonical_address
from rich.console import Console
from rich.table import Table

import genesis
from genesis.governance import DEVNET_GOVERNANCE as SETTINGS
from tests.governance.client import Gov
from tests.rpc.nodes import ANVIL, CHAIN_ID, devnet_process, start_anvil
from vm import governance

OPEN = 10**18
STEPS = ("wrap", "delegate", "propose", "vote", "queue", "execute")


def _deploy_on_anvil(url: str, keys: list[str]) -> tuple[bytes, bytes, bytes]:
    """GOPEN, Timelock, Governor deployed by account 8 from the committed creation code."""
    g = Gov(url, keys)
    deployer = g.accounts[8]
    nonce = g.w3.eth.get_transaction_count(deployer.address)
    gopen, timelock, governor = (keccak(rlp.encode([to_canonical_address(deployer.address), nonce + i]))[12:]
                                 for i in range(3))
    code = lambda name: bytes.fromhex(governance.artifact()["contracts"][name]["bytecode"][2:])  # noqa: E731
    zero = b"\0" * 20
    for data in (code("GOPEN"),
                 code("OpenTimelock") + encode(["uint256", "address[]", "address[]", "address"],
                                               [SETTINGS.timelock_delay_s, [governor], [zero], zero]),
                 code("OpenGovernor") + encode(["address", "address", "uint48", "uint32", "uint256", "uint256"],
                                               [gopen, timelock, SETTINGS.voting_delay_blocks,
                                                SETTINGS.voting_period_blocks, SETTINGS.proposal_threshold,
                                                SETTINGS.quorum_percent])):
        tx = {"from": deployer.address, "data": data, "gas": 10_000_000, "chainId": CHAIN_ID,
              "nonce": g.w3.eth.get_transaction_count(deployer.address),
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
        receipt = g.w3.eth.wait_for_transaction_receipt(
            g.w3.eth.send_raw_transaction(deployer.sign_transaction(tx).raw_transaction))
        assert receipt.status == 1, receipt
    return gopen, timelock, governor


def _lifecycle(gov: Gov, next_block) -> tuple[dict[str, int], float]:
    """Gas of each step, and seconds from the proposal's receipt to the executed grant's."""
    gas = {"wrap": gov.send(0, gov.gopen.functions.deposit(), value=1_000 * OPEN).gasUsed,
           "delegate": gov.send(0, gov.gopen.functions.delegate(gov.accounts[0].address)).gasUsed}
    gov.send(1, to=gov.timelock.address, value=10 * OPEN)
    grantee = gov.accounts[7].address
    action = ([grantee], [OPEN], [b""], "grant 1 OPEN")
    description_hash = keccak(text=action[3])
    receipt = gov.send(0, gov.governor.functions.propose(*action))
    start, gas["propose"] = time.perf_counter(), receipt.gasUsed
    pid = gov.governor.functions.hashProposal(*action[:3], description_hash).call()
    while gov.governor.functions.state(pid).call() != 1:  # active
        next_block(gov)
    gas["vote"] = gov.send(0, gov.governor.functions.castVote(pid, 1)).gasUsed
    while gov.governor.functions.state(pid).call() != 4:  # succeeded
        next_block(gov)
    gas["queue"] = gov.send(0, gov.governor.functions.queue(*action[:3], description_hash)).gasUsed
    eta = gov.governor.functions.proposalEta(pid).call()
    while gov.w3.eth.get_block("latest").timestamp < eta:
        next_block(gov)
    gas["execute"] = gov.send(0, gov.governor.functions.execute(*action[:3], description_hash)).gasUsed
    return gas, time.perf_counter() - start


def _automine(gov: Gov) -> None:
    time.sleep(0.2)
    gov.mine(1)


def _wait_block(gov: Gov) -> None:
    head = gov.w3.eth.block_number
    while gov.w3.eth.block_number == head:
        time.sleep(0.1)


def main(argv: list[str]) -> None:
    if not ANVIL.exists():
        print("anvil not installed: run `npm install`", file=sys.stderr)
        return
    keys = [k for _, k in genesis.dev_accounts()]
    results: dict[str, tuple[dict[str, int], float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, block_time in (("gas", "0"), ("time", "1")):
            ours = devnet_process(pathlib.Path(tmp) / f"ours-{label}", "--block-time", block_time).start()
            anvil = start_anvil(pathlib.Path(tmp), *(["--block-time", "1"] if block_time == "1" else []))
            try:
                pace = _automine if block_time == "0" else _wait_block
                results[f"ours-{label}"] = _lifecycle(Gov(ours.url, keys), pace)
                results[f"anvil-{label}"] = _lifecycle(Gov(anvil.url, keys, _deploy_on_anvil(anvil.url, keys)), pace)
            finally:
                ours.stop()
                anvil.stop()
    table = Table(title="Governance lifecycle: gas per step (same OpenZeppelin 5.7.0 bytecode, same settings)")
    for col in ("step", "ours (gas)", "anvil (gas)", "ours / anvil"):
        table.add_column(col, justify="right")
    for step in STEPS:
        a, b = results["ours-gas"][0][step], results["anvil-gas"][0][step]
        table.add_row(step, f"{a:,}", f"{b:,}", f"{a / b:.3f}x")
    console = Console()
    console.print(table)
    ours_t, anvil_t = results["ours-time"][1], results["anvil-time"][1]
    console.print(f"proposal -> executed grant, 1 s blocks, delay 1 + period 20 blocks + 10 s timelock: "
                  f"ours {ours_t:.1f} s, anvil {anvil_t:.1f} s ({ours_t / anvil_t:.2f}x)")


if __name__ == "__main__":
    main(sys.argv[1:])
