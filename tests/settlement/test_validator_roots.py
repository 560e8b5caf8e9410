"""Four validators as real processes on loopback settling on anvil: output roots reach the L1
only with the signatures of more than 2/3 of the stake, gathered over the validator network.

Validators 0 (batcher and proposer) and 1 sign from the start, 2 and 3 run without `--l1`: the
chain goes on, batches are posted, but no root is, and the proposer says why. Validator 2 is
restarted signing: the roots land signed by three or four, and a withdrawal made meanwhile is
proven against one and finalised. The proposer, killed and restarted, goes on posting without
posting anything twice. Starting four processes takes a minute or more on a shared
machine: slow (the in-process tests are in test_output_signatures.py)."""
from __future__ import annotations

import time

import pytest
from eth_account import Account

import genesis
from node.sdk import Client
from node.settlement import L1, Contract, L1Error
from node.settlement.outputs import Output
from node.settlement.withdrawals import finalize, find, prove
from tests.settlement.conftest import USER
from tests.settlement.validator_net import SettlingNetwork

L2_USER_KEY = genesis.dev_accounts()[5][1]
L1_RECEIVER = Account.create().address
K = 4


def until(fn, what: str, timeout: float = 180):
    """Poll `fn` until it returns something true (a wait for background work, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.25)
    return value


def _withdrawal(node, tx_hash: str):
    try:
        return find(Client(node.url), tx_hash)
    except L1Error:
        return None  # not mined yet


def _output_root(node, number: int) -> bytes:
    """Output `number`'s root from a node's JSON-RPC (header and the L2 bridge's storage root)."""
    header = node.rpc("eth_getBlockByNumber", hex(number), False)
    proof = node.rpc("eth_getProof", "0x" + genesis.L2_BRIDGE_ADDRESS.hex(), [], hex(number))
    return Output(number, *(bytes.fromhex(x[2:]) for x in (header["stateRoot"], proof["storageHash"],
                                                          header["hash"]))).root


@pytest.mark.slow  # two to four minutes: four validator processes, one restarted
def test_roots_land_on_the_l1_signed_by_more_than_two_thirds_of_the_validators(anvil, tmp_path):
    net = SettlingNetwork(tmp_path / "net", anvil.url, output_interval=K)
    d = net.deployment
    l1 = L1(anvil.url)
    oracle, inbox = Contract(l1, "OutputOracle", d.oracle), Contract(l1, "BatchInbox", d.inbox)
    try:
        nodes = net.start([True, True, False, False])
        raw, tx_hash = Client(nodes[1].url, L2_USER_KEY).build("L2Bridge", "withdraw", L1_RECEIVER, value=2 * 10**18)
        nodes[1].rpc("eth_sendRawTransaction", "0x" + raw.hex())
        w = until(lambda: _withdrawal(nodes[1], "0x" + tx_hash.hex()), "the withdrawal mined")

        # two of four sign: batches go out, no root does, and the proposer says why
        until(lambda: "waits for validator signatures: 2 of 4 validators signed" in net.log(0), "the proposer's reason")
        assert inbox.call("nextBlock") > K  # the blocks are on the L1: only signatures are missing
        assert oracle.call("outputCount") == 0

        # a third validator signs: the roots land, each with > 2/3 of the stake
        net.restart(2, signing=True)
        until(lambda: oracle.call("latestBlockNumber") >= w.l2_block, "a root covering the withdrawal")
        posted = oracle.events("OutputProposed", d.deploy_block)
        assert [e["args"]["l2BlockNumber"] for e in posted] == [K * (i + 1) for i in range(len(posted))]
        for e in posted:
            tx = l1.rpc("eth_getTransactionByHash", e["transactionHash"])
            number, root, _, signatures = oracle.decode_input("proposeOutput", bytes.fromhex(tx["input"][2:]))
            assert len(signatures) >= 3 and number == e["args"]["l2BlockNumber"]
            assert root == _output_root(nodes[3], number)  # the chain of a validator that did not sign agrees
        assert "signing output roots for the proposer; posting nothing" in net.log(1)

        # the withdrawal proves against a root the validators signed, and is claimed after the window
        claimant = L1(anvil.url, USER)
        prove(claimant, d, Client(nodes[0].url), w)
        anvil.rpc("evm_increaseTime", hex(d.finalization_period))
        anvil.rpc("anvil_mine", "0x1")
        finalize(claimant, d, w)
        assert Contract(l1, "L1OpenToken", d.token).call("balanceOf", L1_RECEIVER) == 2 * 10**18

        # the proposer killed and restarted: roots go on from the L1's record, none posted twice
        nodes[0].kill()
        nodes[0].start()
        before = oracle.call("latestBlockNumber")
        until(lambda: oracle.call("latestBlockNumber") >= before + 2 * K, "roots after the proposer's restart")

        def every_post_landed() -> bool:
            """The batcher's transactions are exactly the batches and roots the L1 holds (a
            repeated post would have reverted and been counted), read between two posts."""
            sent = int(l1.rpc("eth_getTransactionCount", d.batcher, "latest"), 16)
            held = len(inbox.events("BatchAppended", d.deploy_block)) + oracle.call("outputCount")
            return held == sent == int(l1.rpc("eth_getTransactionCount", d.batcher, "latest"), 16)

        until(every_post_landed, "the batcher's transactions to match what the L1 holds", timeout=60)
    except BaseException:
        print(net.report())
        raise
    finally:
        net.stop()
