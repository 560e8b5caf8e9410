"""Withdrawals from the user's side (SDK and `openledger bridge`): find the record an L2
withdrawal made, prove it on the L1 against the first posted output root that covers its block
(an eth_getProof storage proof of `sent[hash]` in the L2 bridge account), then finalise it once
the finalization period has passed. Deposits: approve and lock OPEN in the L1 bridge. Forced
transactions: queue a signed raw L2 transaction on the L1 bridge (docs/settlement.md)."""
from __future__ import annotations

import dataclasses

import eth_abi
from eth_utils import keccak, to_checksum_address

from node.sdk import Client
from node.settlement.deployment import Deployment
from node.settlement.l1 import L1, L1Error
from vm.modules.bridge import sent_slot
from vm.modules.system import L2_BRIDGE

INITIATED_TOPIC = keccak(text="WithdrawalInitiated(uint256,address,address,uint256,bytes32)")


@dataclasses.dataclass(frozen=True)
class Withdrawal:
    id: int
    sender: str
    to: str
    amount: int
    hash: bytes
    l2_block: int

    def as_tuple(self) -> tuple:
        """L1Bridge's Withdrawal struct."""
        return self.id, self.sender, self.to, self.amount


def find(l2: Client, tx_hash: str) -> Withdrawal:
    """The withdrawal an L2 transaction made (L1Error naming the transaction if it made none)."""
    receipt = l2.rpc("eth_getTransactionReceipt", tx_hash)
    if receipt is None or receipt["status"] != "0x1":
        raise L1Error(f"L2 transaction {tx_hash} is {'unknown' if receipt is None else 'reverted'}")
    for log in receipt["logs"]:
        topics = [bytes.fromhex(t[2:]) for t in log["topics"]]
        if int(log["address"], 16) == int.from_bytes(L2_BRIDGE, "big") and topics and topics[0] == INITIATED_TOPIC:
            amount, whash = eth_abi.decode(["uint256", "bytes32"], bytes.fromhex(log["data"][2:]))
            (wid,), (sender,), (to,) = (eth_abi.decode([t], topics[i]) for i, t in
                                        ((1, "uint256"), (2, "address"), (3, "address")))
            return Withdrawal(wid, to_checksum_address(sender), to_checksum_address(to), amount, whash,
                              int(receipt["blockNumber"], 16))
    raise L1Error(f"L2 transaction {tx_hash} made no withdrawal")


def covering_output(oracle, l2_block: int) -> tuple[int, int]:
    """(index, L2 block) of the first posted output at or after `l2_block` (binary search)."""
    count = oracle.call("outputCount")
    low, high = 0, count
    while low < high:
        mid = (low + high) // 2
        if oracle.call("getOutput", mid)[1] >= l2_block:
            high = mid
        else:
            low = mid + 1
    if low == count:
        latest = oracle.call("latestBlockNumber")
        raise L1Error(f"no output root covers L2 block {l2_block} yet (the latest is of block {latest}): "
                      "wait for the proposer")
    return low, oracle.call("getOutput", low)[1]


def prove(l1: L1, deployment: Deployment, l2: Client, w: Withdrawal) -> dict:
    _, oracle, _, bridge = deployment.contracts(l1)
    index, number = covering_output(oracle, w.l2_block)
    slot = "0x" + sent_slot(w.hash).to_bytes(32, "big").hex()
    proof = l2.rpc("eth_getProof", to_checksum_address(L2_BRIDGE), [slot], hex(number))
    header = l2.rpc("eth_getBlockByNumber", hex(number), False)
    nodes = [bytes.fromhex(n[2:]) for n in proof["storageProof"][0]["proof"]]
    root_proof = (bytes.fromhex(header["stateRoot"][2:]), bytes.fromhex(proof["storageHash"][2:]),
                  bytes.fromhex(header["hash"][2:]))
    return bridge.transact("proveWithdrawal", w.as_tuple(), index, root_proof, nodes)


def finalize(l1: L1, deployment: Deployment, w: Withdrawal) -> dict:
    return deployment.contracts(l1)[3].transact("finalizeWithdrawal", w.as_tuple())


def deposit(l1: L1, deployment: Deployment, to: str, amount: int) -> dict:
    """Approve (when needed) and lock `amount` L1 OPEN for `to` on the L2; the receipt of the deposit."""
    token, _, _, bridge = deployment.contracts(l1)
    if token.call("allowance", l1.address, bridge.address) < amount:
        token.transact("approve", bridge.address, amount)
    return bridge.transact("deposit", to, amount)




def force(l1: L1, deployment: Deployment, raw: bytes) -> dict:
    """Queue the signed raw L2 transaction `raw` on the L1 for forced inclusion; the L1 receipt.
    Its L2 hash is keccak256(raw); the L2 includes it after the confirmations (as failed, with
    the reason in `ForcedTransactionFailed`, when it cannot execute)."""
    return deployment.contracts(l1)[3].transact("forceTransaction", raw)
