"""The explorer read path: senders recorded at commit, served without ECDSA recovery."""
from eth_account import Account
from eth_utils import to_canonical_address

import genesis
from node.chain import Node
from node.rpc.config import RpcConfig
from node.rpc.eth import Eth
from node.rpc.namespaces import RpcContext
from node.storage import Schema

DEV = genesis.dev_accounts()


def _mine_two(datadir):
    """One block with a legacy and an EIP-1559 transfer from two dev accounts."""
    with Node.init(datadir, genesis.devnet()) as node:
        to = DEV[3][0]
        legacy = {"chainId": node.chain_id, "nonce": 0, "gas": 21_000, "gasPrice": 50 * 10**9, "to": to, "value": 1}
        dynamic = {"chainId": node.chain_id, "nonce": 0, "gas": 21_000, "maxFeePerGas": 100 * 10**9,
                   "maxPriorityFeePerGas": 10**9, "to": to, "value": 2, "type": 2}
        for tx, (_, key) in ((legacy, DEV[0]), (dynamic, DEV[1])):
            node.mempool.add_raw(bytes(Account.sign_transaction(tx, key).raw_transaction))
        return node.produce_block().hash


def test_senders_recorded_at_commit_are_attached_on_read(tmp_path):
    block_hash = _mine_two(tmp_path)
    with Node.open(tmp_path) as node:  # a fresh process: nothing cached from the commit
        block = node.block_by_hash(block_hash)
        assert [tx.__dict__.get("sender") for tx in block.transactions] == [
            to_canonical_address(DEV[0][0]), to_canonical_address(DEV[1][0])]
        eth = Eth(RpcContext(node=node, config=RpcConfig()))
        receipt = eth.get_transaction_receipt(block.transactions[1].hash)
        assert receipt["from"] == DEV[1][0].lower()
        full = eth.get_block_by_number(block.number, True)
        assert [t["from"] for t in full["transactions"]] == [DEV[0][0].lower(), DEV[1][0].lower()]


def test_a_damaged_sender_record_falls_back_to_recovery(tmp_path):
    block_hash = _mine_two(tmp_path)
    with Node.open(tmp_path) as node:
        node.db[Schema.block_senders(block_hash)] = b"\x01" * 21  # not 20 bytes per transaction
        block = node.block_by_hash(block_hash)
        assert all("sender" not in tx.__dict__ for tx in block.transactions)
        assert [tx.sender for tx in block.transactions] == [
            to_canonical_address(DEV[0][0]), to_canonical_address(DEV[1][0])]
