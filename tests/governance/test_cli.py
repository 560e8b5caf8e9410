"""`openledger gov` and `openledger params` as a newcomer uses them on a devnet: wrap, delegate,
propose a parameter change and a treasury grant in words, vote, queue, execute, and see the
new value; every refusal names what is wrong."""
import json
import subprocess
import time

import pytest

from eth_account import Account

from eth_utils import to_checksum_address

from genesis.governance import DEVNET_GOVERNANCE, TIMELOCK_ADDRESS
from node.sdk import Client
from tests.rpc.nodes import ROOT, openledger

OPEN = 10**18


def _cli(url: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(openledger(*args, "--rpc", url), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done


def _mine(client: Client, blocks: int) -> None:
    for _ in range(blocks):
        client.wait(client.rpc("eth_sendRawTransaction", "0x" + bytes(client.account.sign_transaction({
            "type": 2, "chainId": client.chain_id, "to": client.address, "value": 0, "gas": 21_000,
            "nonce": int(client.rpc("eth_getTransactionCount", client.address, "pending"), 16),
            "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}).raw_transaction).hex()))


@pytest.mark.slow  # about a minute; the lifecycle test drives the same Governor over web3.py in the fast suite
def test_parameter_change_and_grant_from_the_cli(devnet_factory, dev_accounts):
    node = devnet_factory(block_time=0).start()
    url, filler = node.url, Client(node.url, dev_accounts[9][1])
    _cli(url, "gov", "wrap", "100OPEN", "--dev-account", "0")
    _cli(url, "gov", "delegate", "--dev-account", "0")
    filler.wait(filler.rpc("eth_sendRawTransaction", "0x" + bytes(filler.account.sign_transaction({
        "type": 2, "chainId": filler.chain_id, "to": to_checksum_address(TIMELOCK_ADDRESS), "value": 20 * OPEN,
        "gas": 100_000, "nonce": 0, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}).raw_transaction).hex()))
    grantee = Account.create().address
    out = _cli(url, "gov", "propose", "set dispute_window_s to 3600", f"pay 3 OPEN to {grantee}",
               "--dev-account", "0").stdout
    pid = out.split("proposal ")[-1].strip()
    shown = json.loads(_cli(url, "gov", "show", pid, "--json").stdout)
    assert shown[0]["state"] == "pending" and shown[0]["actions"] == [
        "set dispute_window_s to 3600", f"pay 3 OPEN to {grantee}"]
    pending = json.loads(_cli(url, "params", "--json").stdout)["pending"]
    assert [p["id"] for p in pending] == [pid]
    _mine(filler, DEVNET_GOVERNANCE.voting_delay_blocks + 1)
    _cli(url, "gov", "vote", pid, "for", "--reason", "shorter waits", "--dev-account", "0")
    refused = _cli(url, "gov", "vote", pid, "for", "--dev-account", "0", ok=False).stderr
    assert "GovernorAlreadyCastVote" in refused
    _mine(filler, DEVNET_GOVERNANCE.voting_period_blocks)
    _cli(url, "gov", "queue", pid, "--dev-account", "1")  # anyone may queue and execute
    early = _cli(url, "gov", "execute", pid, "--dev-account", "1", ok=False).stderr
    assert "TimelockUnexpectedOperationState" in early
    eta = filler.call("Governor", "proposalEta", int(pid))
    while int(filler.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16) < eta:
        time.sleep(0.5)  # automine stamps blocks at least a second apart, so chain time may run ahead
        _mine(filler, 1)
    _cli(url, "gov", "execute", pid, "--dev-account", "1")
    params = json.loads(_cli(url, "params", "--json").stdout)
    assert params["params"]["dispute_window_s"] == 3600 and params["pending"] == []
    assert int(filler.rpc("eth_getBalance", grantee, "latest"), 16) == 3 * OPEN
    assert "executed" in _cli(url, "gov", "show").stdout
    assert "GOPENInsufficientBalance" in _cli(url, "gov", "unwrap", "101OPEN", "--dev-account", "0", ok=False).stderr
    assert "unknown" not in _cli(url, "gov", "unwrap", "1OPEN", "--dev-account", "0").stderr
